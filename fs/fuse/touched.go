package fusefs

import (
	"sync"
	"time"
)

// touched is what this host changed lately, by inode number: a kept
// listing's attributes of an entry answer a lookup only while this host
// has not changed that entry since the readdir was sent, and holds no
// handle of it open through which it may change unseen (listing.go).
//
// This host's own changes are not told to it by the server, so the
// listing cannot learn of them. Each goes through the changed file's node
// (node.dropListing: a setattr, a link count, an open or close for
// writing), which notes its inode number here with the mount's change
// count; a listing remembers the count when it was asked for. A file
// reached through two names is one inode, so a change through either
// name counts for both. Changes older than CacheTimeout are forgotten:
// no listing that old answers anything.
//
// touched.mu is taken under node.mu (dropListing, listedAttr) and takes
// nothing else.
type touched struct {
	mu       sync.Mutex
	changed  map[uint64]touch // guarded by mu; the last change of each inode
	sweepAt  int              // guarded by mu; changed's size that calls for a sweep
	volatile map[uint64]int   // guarded by mu; handles open for writing or under sharing, by inode
}

// touch is an inode's last change from this host: Mount.changes after it,
// and when.
type touch struct {
	seq uint64
	at  time.Time
}

// touchedSweep is the size of touched.changed past which changes older
// than CacheTimeout are dropped; the next sweep waits until the map has
// doubled, so that a burst of changes (an rm -rf) costs each a constant
// time.
const touchedSweep = 4096

// change notes a change of inode ino, Mount.changes being seq after it.
func (t *touched) change(ino, seq uint64) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.changed == nil {
		t.changed = map[uint64]touch{}
	}
	if len(t.changed) >= max(t.sweepAt, touchedSweep) {
		for i, c := range t.changed {
			if now.Sub(c.at) >= CacheTimeout {
				delete(t.changed, i)
			}
		}
		t.sweepAt = 2 * len(t.changed)
	}
	t.changed[ino] = touch{seq: seq, at: now}
}

// open and close count a handle of inode ino through which it may change
// unseen.
func (t *touched) open(ino uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.volatile == nil {
		t.volatile = map[uint64]int{}
	}
	t.volatile[ino]++
}

func (t *touched) close(ino uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.volatile[ino]--; t.volatile[ino] <= 0 {
		delete(t.volatile, ino)
	}
}

// since reports whether inode ino changed from this host after the
// mount's change count was seq, or may be changing now.
func (t *touched) since(ino, seq uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.volatile[ino] > 0 {
		return true
	}
	c, ok := t.changed[ino]
	return ok && c.seq > seq
}
