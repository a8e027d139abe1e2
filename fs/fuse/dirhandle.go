package fusefs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"sprite/fs"
)

// Open directories, and the kernel's READDIRPLUS.
//
// The mount offers the kernel READDIRPLUS, and the kernel then reads
// every directory that way: each entry comes with what a lookup of its
// name would answer, so that the lstat(2) that ls -l, find or make does
// of each listed name finds the kernel's own entry and asks nothing more.
// go-fuse fills each entry by calling the handle's Lookup (dirHandle:
// gofs.FileLookuper), which answers only from the directory's listing
// with attributes (node.lookupListed: the same answer, kept as long, as
// the lookup that would follow). Where the listing cannot answer (it came
// without attributes, this host changed something since, a handle here
// may write unseen, another user's listing), Lookup fails and go-fuse
// sends the entry with no node: the kernel takes the name alone, as from
// a plain readdir, and looks it up when asked, at a call to the server
// then. A READDIRPLUS never costs a call per entry.
//
// An entry that a READDIRPLUS handed the kernel is not handed again while
// the kernel may trust it for more than half of CacheTimeout still
// (node.handedRecently): the kernel holds it, and filling it anew would
// cost each entry of a repeated `ls -l` or of make's rescan of a
// directory the daemon's and the kernel's work for nothing. If the kernel
// dropped it meanwhile, its next use is a Lookup, answered from the
// listing as the READDIRPLUS would have been. Any change of the node (an
// invalidation from its server, a change from this host: its listGen
// moves) ends that.
//
// Entries are read once per open, at the first readdir (node.readdir),
// and served by offset: an entry's offset is its index plus one, so a
// seekdir (telldir's value) and the kernel's retry of a readdir it cut
// short land on the same entry; a rewind reads again (Seekdir).
//
// The kernel keeps a directory's entries itself where an open allows it
// (FOPEN_CACHE_DIR): it fills its cache from the READDIRPLUS replies of
// such an open and reads the next such open from it, with no request
// but the opendir and the releasedir (make lists each directory it
// searches on every run). An open allows it while the node keeps a
// listing for the caller, and then the kernel's cache holds nothing older
// than that listing: the open that does not allow it drops the cache
// (it goes without FOPEN_KEEP_CACHE), as do a change of the directory from
// this host (the kernel's own doing) and an invalidation of the directory
// or of a name in it (Mount.invalidate: NotifyContent of the directory,
// once an open allowed the cache, node.kernelListed; the kernel itself
// drops it only for a name it has an entry for). A rewind reads the
// directory again (Seekdir), so that a handle opened before a change
// fills the cache with what follows it. A READDIRPLUS still on its way
// when an invalidation drops the cache may refill it with the old
// entries; the next open that finds no listing drops them, CacheTimeout
// after the listing at the latest.

// dirHandle is an open directory. go-fuse calls its methods one at a
// time (it holds the handle's own lock around them).
type dirHandle struct {
	n    *node
	ents []fuse.DirEntry // nil until the first readdir; never changed
	read bool
	next int // index of the next entry to hand out
}

var (
	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
	_ gofs.FileLookuper     = (*dirHandle)(nil)
)

// OpendirHandle opens n for reading; nothing is asked of the server until
// the first readdir. While n's listing for the caller is kept, the kernel
// may read the directory from its own cache of it and fill that cache
// (FOPEN_CACHE_DIR, with FOPEN_KEEP_CACHE, which go-fuse adds); otherwise
// it drops that cache and reads through this handle.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	var open uint32
	if n.kind == fs.RouteDomain && n.kernelMayList(n.m.cred(ctx)) {
		open = fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	return &dirHandle{n: n}, open, 0
}

// kernelMayList says whether n keeps a listing for cr, and if so notes
// that the kernel may keep n's entries from now.
func (n *node) kernelMayList(cr fs.Cred) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cachedListingLocked(cr) == nil {
		return false
	}
	n.kernelListed = true
	return true
}

// load reads the entries, once.
func (d *dirHandle) load(ctx context.Context) syscall.Errno {
	if d.read {
		return 0
	}
	ents, errno := d.n.readdir(ctx)
	if errno != 0 {
		return errno
	}
	d.ents, d.read = ents, true
	return 0
}

// Readdirent hands out the next entry, a copy (go-fuse writes its offset,
// and the listing's entries are shared).
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := d.load(ctx); errno != 0 {
		return nil, errno
	}
	if d.next >= len(d.ents) {
		return nil, 0
	}
	e := d.ents[d.next]
	d.next++
	e.Off = uint64(d.next)
	return &e, 0
}

// Seekdir moves to the entry after offset off. A rewind reads the
// directory again at the next readdir, as rewinddir(3) has it (from the
// listing, while kept): the kernel may fill its cache of the directory
// from what follows, which must be no older than the listing.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 {
		d.ents, d.read, d.next = nil, false, 0
		return 0
	}
	if errno := d.load(ctx); errno != 0 {
		return errno
	}
	if off > uint64(len(d.ents)) {
		return syscall.EINVAL
	}
	d.next = int(off)
	return 0
}

// Lookup fills a READDIRPLUS entry for name, the entry Readdirent just
// handed out, from the directory's listing; an error leaves the entry
// without a node, which the kernel ignores (it looks the name up when
// asked).
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	old := d.n.childNode(name)
	if old != nil && old.handedRecently() {
		return nil, syscall.EAGAIN
	}
	ch, errno, ok := d.n.lookupListed(ctx, name, out)
	if !ok {
		return nil, syscall.EAGAIN
	}
	if ch == nil {
		if errno == 0 {
			errno = syscall.ENOENT
		}
		return nil, errno
	}
	// The kernel trusts the entry until then; go-fuse keeps the node it
	// has for a known inode number.
	until := time.Now().Add(out.EntryTimeout())
	if old != nil && old.StableAttr().Ino == ch.StableAttr().Ino {
		old.handed(until)
	} else if cn, ok := ch.Operations().(*node); ok {
		cn.handed(until)
	}
	return ch, errno
}

// handed notes that a READDIRPLUS is handing the kernel n's entry, which
// the kernel may trust until until.
func (n *node) handed(until time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handedUntil, n.handedGen = until, n.listGen
}

// handedRecently reports whether a READDIRPLUS handed the kernel n's
// entry, which it may trust for more than half of CacheTimeout still,
// with nothing changed since.
func (n *node) handedRecently() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.handedGen == n.listGen && time.Until(n.handedUntil) > CacheTimeout/2
}
