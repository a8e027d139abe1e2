package fusefs

import (
	"context"
	"slices"
	"sync"
	"syscall"
	"time"

	"sprite/fs"
)

// Kept opens: a read-only handle is kept for a while after its close, and
// the next open of the same file here, by the same user with the same
// flags, takes it instead of asking the server.
//
// Why: a compile opens every header it includes, and each open was a
// round trip to the home host, for a version check (nginx: 71 of the 113
// calls of one compile). Under pmake the next compile on the same host
// opens most of the same headers a second later.
//
// Why it stays consistent: while the handle is kept, the server counts the
// file as open on this host. So every change of the file through the
// server reaches this host before it is acknowledged (fs.invalidate, as for
// any open file), and a change on the server's own disk reaches it by
// inotify, which the server promised for this file (fs.OpenWatched: no
// handle is kept without it); a writer on another host finds the file
// shared and writes through. A kept handle is taken only while its node
// has heard of no change since the close (node.listGen: an invalidation,
// or a change from this host), no other name of the same inode changed
// here (touched), and for at most keepFor. What the server's disk changes
// just before another host's open may be heard a moment after it: the
// home settles before it starts a job elsewhere (fs.Server.Settle), so
// that a job sees every change its home made first.
//
// A kept handle is given back (a lazy fs.release) when keepFor passes,
// when its node hears of a change, when its server restarts or goes down
// (ForgetServer), when more than maxKept are kept, and at unmount. A
// read through a kept handle that the server no longer knows (EBADF: it
// restarted before this host heard) opens the file again and reads.
//
// Locks: node.mu, then keeper.mu (a leaf). The keeper's goroutine, owned
// by the Mount (started by MountAt, ended by Unmount), gives back expired
// and dropped handles with no lock held.
type keeper struct {
	m *Mount

	mu    sync.Mutex
	nodes []keptAt      // guarded by mu; where handles were kept, oldest first
	drop  []*fs.Handle  // guarded by mu; handles to give back now
	count int           // guarded by mu; handles kept in nodes
	wake  chan struct{} // a handle to give back, or a new oldest
	done  chan struct{} // closed by stop
	wg    sync.WaitGroup
}

// keptOpen is one handle kept in its node (node.kept).
type keptOpen struct {
	h       *fs.Handle
	flags   uint32
	gen     uint64 // node.listGen when it was kept
	changes uint64 // Mount.changes when it was kept
	at      time.Time
}

// keptAt is a node that kept a handle at a time, for the keeper's expiry.
type keptAt struct {
	n  *node
	at time.Time
}

// keepFor is how long a closed handle is kept: the kernel's trust in a
// file's attributes, which another host's change reaches the same way. A
// variable only so that tests can shorten it.
var keepFor = CacheTimeout

// maxKept bounds the handles a mount keeps (each a descriptor on its
// server, which also stops granting them, fs.OpenWatched, when it holds
// too many).
const maxKept = 1024

func (k *keeper) start(m *Mount) {
	k.m = m
	k.wake = make(chan struct{}, 1)
	k.done = make(chan struct{})
	k.wg.Go(k.run)
}

// stop ends the goroutine and gives back every handle still kept.
func (k *keeper) stop() {
	close(k.done)
	k.wg.Wait()
	k.mu.Lock()
	nodes := k.nodes
	k.nodes = nil
	k.mu.Unlock()
	var hs []*fs.Handle
	for _, e := range nodes {
		hs = append(hs, e.n.takeAllKept(func(keptOpen) bool { return true })...)
	}
	k.giveBack(append(hs, k.takeDrops()...))
}

func (k *keeper) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

func (k *keeper) run() {
	t := time.NewTimer(keepFor)
	defer t.Stop()
	for {
		select {
		case <-k.done:
			return
		case <-k.wake:
		case <-t.C:
		}
		next := k.expire(time.Now())
		k.giveBack(k.takeDrops())
		t.Reset(next)
	}
}

// expire gives back the handles kept longer than keepFor, and returns
// how long until the next may expire.
func (k *keeper) expire(now time.Time) time.Duration {
	k.mu.Lock()
	i := 0
	for i < len(k.nodes) && now.Sub(k.nodes[i].at) >= keepFor {
		i++
	}
	old := slices.Clone(k.nodes[:i])
	k.nodes = slices.Delete(k.nodes, 0, i)
	next := keepFor
	if len(k.nodes) > 0 {
		next = keepFor - now.Sub(k.nodes[0].at)
	}
	k.mu.Unlock()
	var hs []*fs.Handle
	for _, e := range old {
		hs = append(hs, e.n.takeAllKept(func(o keptOpen) bool { return now.Sub(o.at) >= keepFor })...)
	}
	k.giveBack(hs)
	return max(next, time.Millisecond)
}

func (k *keeper) takeDrops() []*fs.Handle {
	k.mu.Lock()
	defer k.mu.Unlock()
	hs := k.drop
	k.drop = nil
	return hs
}

// giveBack releases hs; no lock may be held.
func (k *keeper) giveBack(hs []*fs.Handle) {
	if len(hs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	for _, h := range hs {
		if err := k.m.c.Release(ctx, h, true); err != nil {
			k.m.log.Debug("fs: kept handle not given back", "domain", h.Domain.Prefix, "err", err)
		}
	}
}

// kept counts a handle kept by n (under n.mu); it reports false when
// maxKept are kept already.
func (k *keeper) kept(n *node, at time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.count >= maxKept {
		return false
	}
	k.count++
	k.nodes = append(k.nodes, keptAt{n, at})
	if len(k.nodes) == 1 {
		k.signal()
	}
	return true
}

// dropped hands the keeper handles a node no longer keeps, taken (true:
// by an open; the rest are given back) or dropped (under n.mu).
func (k *keeper) dropped(hs []*fs.Handle, giveBack bool) {
	if len(hs) == 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.count -= len(hs)
	if giveBack {
		k.drop = append(k.drop, hs...)
		k.signal()
	}
}

// keep keeps f's handle in n after its release, if it may be reused: a
// read-only handle of a file the server watches, cached by the kernel.
func (n *node) keep(f *file) bool {
	h := f.h
	if f.writeOpen || h.Direct || !h.Watched || f.flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return false
	}
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.m.kept.kept(n, now) {
		return false
	}
	n.kept = append(n.kept, keptOpen{h: h, flags: f.flags, gen: n.listGen, changes: n.m.changes.Load(), at: now})
	return true
}

// takeKept returns a handle n keeps for an open of p by cr with flags, if
// one is still good. p must be the path the handle was opened by: a file
// reached by another name now (its directory moved) may have changed
// where the server no longer watches it.
func (n *node) takeKept(p string, cr fs.Cred, flags uint32) *fs.Handle {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.kept) == 0 {
		return nil
	}
	n.dropStaleKept()
	for i, o := range n.kept {
		if o.flags == flags && o.h.Path() == p && sameCred(o.h.Cred, cr) && time.Since(o.at) < keepFor {
			n.kept = slices.Delete(n.kept, i, i+1)
			n.m.kept.dropped([]*fs.Handle{o.h}, false)
			return o.h
		}
	}
	return nil
}

// dropStaleKept gives back the kept handles of n that a change since
// their close makes stale (under n.mu).
func (n *node) dropStaleKept() {
	ino := n.StableAttr().Ino
	var stale []*fs.Handle
	n.kept = slices.DeleteFunc(n.kept, func(o keptOpen) bool {
		if o.gen != n.listGen || n.m.touched.since(ino, o.changes) {
			stale = append(stale, o.h)
			return true
		}
		return false
	})
	n.m.kept.dropped(stale, true)
}

// takeAllKept removes and returns n's kept handles that match.
func (n *node) takeAllKept(match func(keptOpen) bool) []*fs.Handle {
	n.mu.Lock()
	defer n.mu.Unlock()
	var hs []*fs.Handle
	n.kept = slices.DeleteFunc(n.kept, func(o keptOpen) bool {
		if match(o) {
			hs = append(hs, o.h)
			return true
		}
		return false
	})
	n.m.kept.dropped(hs, false)
	return hs
}

// ForgetServer gives back every handle kept of host's domains: host
// restarted (its handles are gone) or went down.
func (m *Mount) ForgetServer(host string) {
	m.kept.mu.Lock()
	nodes := slices.Clone(m.kept.nodes)
	m.kept.mu.Unlock()
	var hs []*fs.Handle
	for _, e := range nodes {
		hs = append(hs, e.n.takeAllKept(func(o keptOpen) bool { return o.h.Domain.Host == host })...)
	}
	m.kept.giveBack(hs)
}

func sameCred(a, b fs.Cred) bool {
	return a.UID == b.UID && a.GID == b.GID && slices.Equal(a.Groups, b.Groups)
}
