package fusefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"sprite/fs"
)

// CacheTimeout is how long the kernel trusts names, attributes and
// missing names without asking. Servers end that trust sooner whenever
// something changes (fs.invalidate), for the hosts that asked within it
// (fs/interest.go); the timeout bounds the damage of a lost invalidation.
const CacheTimeout = fs.CacheTimeout

// invalidateWait bounds how long one invalidation waits for the kernel.
const invalidateWait = 200 * time.Millisecond

// Mount is the global namespace mounted at one directory.
type Mount struct {
	dir    string
	c      *fs.Client
	log    *slog.Logger
	server *fuse.Server
	root   *node
	creds  *credCache
	dev    uint64         // the mount's device: its FUSE connection's number
	wg     sync.WaitGroup // pending invalidations
	// invals counts the invalidation batches received, each before it is
	// applied: a directory made here is trusted to hold only what this
	// host made in it while the count stays what it was when its mkdir was
	// sent (node.fresh).
	invals atomic.Uint64
	// changes counts what may make an entry's attributes in a kept
	// listing stale on this host (every node.dropListing: a change from
	// this host, an open or close for writing, an invalidation); touched
	// has the inode numbers each moved it for, and the handles open for
	// writing or under sharing: a listing's attributes of an entry answer
	// a lookup only while neither says it changed since the readdir
	// (listing.go).
	changes atomic.Uint64
	touched touched
	kept    keeper // read-only handles kept after their close (kept.go)
}

// LevelRequests is the log level at which a mount logs every FUSE request
// and its reply (go-fuse's debug output), as sshfs -d does: the daemon's
// log_level "debug-4".
const LevelRequests = slog.LevelDebug - 4

// MountAt mounts c's namespace at dir, creating dir if it is missing and
// detaching a stale mount a killed daemon left there. It returns once the
// kernel has the mount.
func MountAt(dir string, c *fs.Client, log *slog.Logger) (*Mount, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil && !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.EEXIST) {
		return nil, fmt.Errorf("mount %s: create the mount point: %w (create it, or set `mount` in the config)", dir, err)
	}
	// A daemon killed with its mount in place leaves a dead mount
	// ("transport endpoint is not connected"); detach whatever is there.
	if err := unix.Unmount(dir, unix.MNT_DETACH); err == nil {
		log.Info("fs: detached a stale mount", "dir", dir)
	}
	m := &Mount{dir: dir, c: c, log: log, creds: newCredCache()}
	m.root = &node{m: m}
	timeout := CacheTimeout
	opts := &gofs.Options{
		EntryTimeout: &timeout, AttrTimeout: &timeout, NegativeTimeout: &timeout,
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			AllowOther: true, FsName: "sprite", Name: "sprite", DirectMount: true, DirectMountStrict: true,
			MaxWrite: fs.MaxIO, MaxReadAhead: fs.MaxIO, MaxBackground: 64,
			// Security labels and ACLs are answered "not supported" by
			// the node (xattr.go), not "no such attribute" by go-fuse.
			IgnoreSecurityLabels: false,
			// Replies carry bytes, never a file descriptor to splice from.
			DisableSplice: true,
			// READDIRPLUS stays on: an open directory fills its entries
			// from the listing, never with a call each (dirhandle.go).
			// The kernel checks mode bits against its cached attributes
			// as NFS clients do, so a cached path obeys a chmod at once;
			// the server checks again as the (squashed) user.
			Options: []string{"default_permissions"},
		},
	}
	if log.Enabled(context.Background(), LevelRequests) {
		opts.MountOptions.Debug = true
		opts.MountOptions.Logger = slog.NewLogLogger(log.Handler(), LevelRequests)
	}
	srv, err := mountNoLeak(dir, m.root, opts)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w (is /dev/fuse there, and are we root?)", dir, err)
	}
	m.server = srv
	m.kept.start(m)
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		m.kept.stop()
		return nil, fmt.Errorf("mount %s: wait for the kernel: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err == nil {
		m.dev = st.Dev
	}
	if err := raiseReadahead(dir); err != nil {
		log.Warn("fs: read-ahead stays at the kernel's 128 KiB; sequential reads will be slower", "dir", dir, "err", err)
	}
	return m, nil
}

// mountNoLeak mounts dir without letting the FUSE device leak into a
// child. go-fuse opens /dev/fuse without O_CLOEXEC, and after a direct
// mount never sets it: every process this daemon starts (a spare job init,
// loginctl, a job) would inherit the device. It could serve this host's
// /sprite, and it keeps the connection open after the daemon dies, so
// that its own calls into /sprite never return and it cannot be killed
// (seen: `sprite lab down` failing on a spare job init stuck in chdir).
// Under syscall.ForkLock, so that no fork comes between, the mount marks
// every /dev/fuse descriptor of the process close-on-exec;
// DirectMountStrict keeps go-fuse from running fusermount (a fork) under
// that lock.
func mountNoLeak(dir string, root gofs.InodeEmbedder, opts *gofs.Options) (*fuse.Server, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	srv, err := fuse.NewServer(missingKept{gofs.NewNodeFS(root, opts)}, dir, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	for _, fd := range fuseFDs() {
		unix.CloseOnExec(fd)
	}
	return srv, nil
}

// missingKept lets a node's Lookup give the kernel a missing name for a
// time of its own: a lookup answered from a directory's listing
// (lookupListed) may keep "no such name" only for what is left of the
// listing's time. go-fuse makes a missing name a negative entry only with
// the mount's NegativeTimeout, and only when the node set no timeout;
// with one set it replies ENOENT, which the kernel never keeps, and it
// asks again at every stat: make stats a dozen missing names (RCS, SCCS,
// its targets) in each directory on every run. A node that sets a
// timeout longer than noCache on a missing name now gets an entry with
// no node and that timeout, which the kernel keeps as missing.
type missingKept struct{ fuse.RawFileSystem }

func (r missingKept) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	st := r.RawFileSystem.Lookup(cancel, h, name, out)
	if st == fuse.ENOENT && out.NodeId == 0 && out.EntryTimeout() > noCache {
		return fuse.OK
	}
	return st
}

// fuseFDs lists this process's descriptors of /dev/fuse.
func fuseFDs() []int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && t == "/dev/fuse" {
			fds = append(fds, fd)
		}
	}
	return fds
}

// readaheadKB is the mount's read-ahead window. The kernel caps a FUSE
// mount's at 128 KiB whatever the file system asks for; its bdi's
// read_ahead_kb in sysfs lifts the cap, and with it the size of each read
// request (up to MaxIO), and lets several run at once.
const readaheadKB = 4 * fs.MaxIO / 1024

func raiseReadahead(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(p, []byte(fmt.Sprint(readaheadKB)), 0o644)
}

// Unmount detaches the mount and waits for the serving loops and pending
// invalidations. A busy mount (a shell's working directory in it) is
// detached lazily and its connection aborted, so the daemon never waits
// for its users: they get ENOTCONN.
func (m *Mount) Unmount() {
	if err := m.server.Unmount(); err != nil {
		m.log.Warn("fs: mount busy; detaching it and aborting its connection", "dir", m.dir, "err", err)
		unix.Unmount(m.dir, unix.MNT_DETACH)
		if err := abortConn(m.dev); err != nil {
			m.log.Warn("fs: could not abort the FUSE connection; waiting for the mount's last user", "err", err)
		}
	}
	m.server.Wait()
	m.wg.Wait()
	m.kept.stop()
}

// abortConn aborts the FUSE connection of device dev through fusectl,
// mounting fusectl first where it is missing (a lab host's fresh sysfs).
func abortConn(dev uint64) error {
	const ctl = "/sys/fs/fuse/connections"
	p := fmt.Sprintf("%s/%d/abort", ctl, unix.Minor(dev))
	if _, err := os.Stat(p); err != nil {
		if err := unix.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil {
			return fmt.Errorf("mount fusectl on %s: %w", ctl, err)
		}
	}
	return os.WriteFile(p, []byte("1"), 0o200)
}

// Invalidate drops the kernel's cached names, attributes and data of the
// items. Call it from any goroutine but a FUSE handler's.
func (m *Mount) Invalidate(items []fs.Item) {
	m.invals.Add(1)
	done := make(chan struct{})
	m.wg.Go(func() {
		defer close(done)
		for _, it := range items {
			m.invalidate(it)
		}
	})
	select {
	case <-done:
	case <-time.After(invalidateWait):
		m.log.Debug("fs: kernel slow to invalidate; answering the server anyway", "items", len(items))
	}
}

func (m *Mount) invalidate(it fs.Item) {
	p := strings.TrimPrefix(it.Prefix, "/")
	if it.Path != "" {
		p += "/" + it.Path
	}
	parts := strings.Split(p, "/")
	var parent *gofs.Inode
	cur := m.root.EmbeddedInode()
	for _, name := range parts {
		parent, cur = cur, cur.GetChild(name)
		if cur == nil {
			break
		}
	}
	if cur != nil {
		changedElsewhere(cur)
		cur.NotifyContent(0, 0)
	}
	if parent != nil {
		// The kernel drops its cache of the directory's entries for a
		// change of a name it has an entry for, not for a new one.
		if changedElsewhere(parent) {
			parent.NotifyContent(0, 0)
		}
		parent.NotifyEntry(parts[len(parts)-1])
	}
}

// changedElsewhere drops what this host knows of a directory from its own
// changes (node.dirAttr, node.fresh, node.listing): the server says it
// changed. It reports whether the kernel may keep the directory's entries.
func changedElsewhere(in *gofs.Inode) bool {
	if n, ok := in.Operations().(*node); ok {
		return n.changedElsewhere()
	}
	return false
}
