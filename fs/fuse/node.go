package fusefs

import (
	"context"
	"path"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"sprite/fs"
)

// node is any directory or file of the mount; its global path is where it
// sits in go-fuse's tree.
type node struct {
	gofs.Inode
	m    *Mount
	kind fs.RouteKind // what served it when it was looked up

	mu      sync.Mutex
	version uint64 // guarded by mu; the file's version at its last open here
	opens   int    // guarded by mu; open handles of this file on this host
	direct  int    // guarded by mu; of which write-only ones opened with direct I/O
	// volatile counts the open handles of this file on this host through
	// which it may change unseen: those that write, and those the server
	// opened under concurrent write sharing. While there are any, its
	// attributes are not kept (listing.go).
	volatile int // guarded by mu

	// A directory's attributes as the server sent them after this host
	// made or removed an entry in it (dirAfter, removeEntry): the kernel
	// drops a directory's attributes after each change in it and asks
	// again at the next path walk; the first such Getattr within
	// dirAttrFor is answered from here instead of with a round trip.
	dirAttr   *fs.Attr  // guarded by mu; nil: ask the server
	dirAttrAt time.Time // guarded by mu
	changing  int       // guarded by mu; changes of this node in flight from this host

	// A directory this host made, empty and watched by its server
	// (fs.Made.Watched): until the server says something in it changed,
	// a name this host has not made in it is not there, and Lookup says
	// so without a round trip (as the kernel would from a negative entry).
	fresh    bool            // guarded by mu
	freshAt  time.Time       // guarded by mu
	freshSeq uint64          // guarded by mu; Mount.invals when its mkdir was sent
	made     map[string]bool // guarded by mu; names this host made in it since

	// A directory's entries and attributes as its server last sent them
	// (listing.go).
	listing *listing  // guarded by mu; nil: ask the server
	listGen uint64    // guarded by mu; counts the drops of listing, attr and noXattr
	attr    *fs.Attr  // guarded by mu; nil: ask the server
	attrAt  time.Time // guarded by mu; when attr was asked for
	attrGen uint64    // guarded by mu; listGen when attr was asked for
	// kernelListed: an open let the kernel keep this directory's entries
	// (dirhandle.go) since the server last said it changed.
	kernelListed bool // guarded by mu
	// Listings made to answer lookups (listing.go: wantsListing): the
	// lookups in this directory sent to its server since lookupsAt with
	// no listing kept, how many call for a listing (0: autoListAfter),
	// whether one was made and how many lookups listings answered since,
	// and when one last failed (too large, not readable).
	lookups    int       // guarded by mu
	lookupsAt  time.Time // guarded by mu
	listNeed   int       // guarded by mu
	autoListed bool      // guarded by mu
	listHits   int       // guarded by mu
	refusedAt  time.Time // guarded by mu

	// When the server last said this file has no extended attributes
	// (xattr.go); zero: ask it.
	noXattrAt  time.Time // guarded by mu
	noXattrGen uint64    // guarded by mu; listGen then

	// Read-only handles of this file kept after their close, for the
	// next open (kept.go).
	kept []keptOpen // guarded by mu

	// Until when the kernel may trust the entry a READDIRPLUS last
	// handed it for this node (dirhandle.go).
	handedUntil time.Time // guarded by mu
	handedGen   uint64    // guarded by mu; listGen then
}

// freshFor bounds how long a fresh directory's absent names are trusted
// without word from its server: the kernel's own bound on a negative
// entry.
const freshFor = CacheTimeout

// setFresh marks n, a directory just made empty and watched by a mkdir
// sent when Mount.invals was seq.
func (n *node) setFresh(seq uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fresh, n.freshAt, n.freshSeq, n.made = true, time.Now(), seq, map[string]bool{}
}

// willMake notes that this host is about to make name in directory n.
func (n *node) willMake(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fresh {
		n.made[name] = true
	}
}

// absent reports whether name is known not to be in directory n. Any
// invalidation received since n's mkdir was sent ends that knowledge: one
// that arrived before n had a node here could not reach it.
func (n *node) absent(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.fresh || time.Since(n.freshAt) > freshFor || n.m.invals.Load() != n.freshSeq {
		n.fresh, n.made = false, nil
		return false
	}
	return !n.made[name]
}

// dirAttrFor bounds how long a directory's attributes from a change stay
// good for its next Getattr.
const dirAttrFor = time.Second

// changeStart marks a change of n (in directory n, or of file n's
// attributes or links) about to be sent to its server: what n keeps of
// its attributes and listing is stale from now.
func (n *node) changeStart() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.changing++
	n.dirAttr = nil
	n.dropListing()
}

// changeEnd marks the end of a change of n; a is directory n's attributes
// after it, if the server sent them. They are kept only when no other
// change of n was in flight, whose effect they might not show.
func (n *node) changeEnd(a *fs.Attr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.changing--
	n.dirAttr = nil
	n.dropListing() // a reply asked for during the change may predate it
	if a != nil && n.changing == 0 {
		n.dirAttr, n.dirAttrAt = a, time.Now()
	}
}

// forgetAttr drops the attributes (and listing) n keeps.
func (n *node) forgetAttr() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dirAttr = nil
	n.dropListing()
}

// changedElsewhere drops what this host knows of directory n by itself
// (its attributes, its absent names, its listing): a server said n or an
// entry in it changed, or n moved.
func (n *node) changedElsewhere() (kernelListed bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dirAttr = nil
	n.fresh, n.made = false, nil
	n.dropListing()
	kernelListed, n.kernelListed = n.kernelListed, false
	return kernelListed
}

// takeDirAttr returns n's remembered attributes if they are fresh, once.
func (n *node) takeDirAttr() *fs.Attr {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.dirAttr
	n.dirAttr = nil
	if a == nil || time.Since(n.dirAttrAt) > dirAttrFor {
		return nil
	}
	return a
}

var (
	_ gofs.NodeLookuper       = (*node)(nil)
	_ gofs.NodeGetattrer      = (*node)(nil)
	_ gofs.NodeSetattrer      = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeMkdirer        = (*node)(nil)
	_ gofs.NodeUnlinker       = (*node)(nil)
	_ gofs.NodeRmdirer        = (*node)(nil)
	_ gofs.NodeRenamer        = (*node)(nil)
	_ gofs.NodeLinker         = (*node)(nil)
	_ gofs.NodeSymlinker      = (*node)(nil)
	_ gofs.NodeReadlinker     = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.NodeStatfser       = (*node)(nil)
	_ gofs.NodeGetxattrer     = (*node)(nil)
	_ gofs.NodeSetxattrer     = (*node)(nil)
	_ gofs.NodeListxattrer    = (*node)(nil)
	_ gofs.NodeRemovexattrer  = (*node)(nil)
)

// childNode returns the node of n's child name, if the kernel knows it.
func (n *node) childNode(name string) *node {
	if n == nil {
		return nil
	}
	if ch := n.GetChild(name); ch != nil {
		cn, _ := ch.Operations().(*node)
		return cn
	}
	return nil
}

// nodeOf returns e's node, nil if it is not one.
func nodeOf(e gofs.InodeEmbedder) *node {
	n, _ := e.(*node)
	return n
}

// errno is the one place errors become errno values.
func errno(err error) syscall.Errno { return fs.Errno(err) }

func (n *node) path() string { return "/" + n.Path(nil) }

func (n *node) child(name string) string { return path.Join(n.path(), name) }

func fillAttr(a *fs.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.UID, a.GID
	out.Size = uint64(a.Size)
	out.Blocks = uint64(a.Blocks)
	out.Rdev = a.Rdev
	out.Blksize = a.Blksize
	out.SetTimes(ts(a.Atime), ts(a.Mtime), ts(a.Ctime))
}

func ts(ns int64) *time.Time {
	t := time.Unix(0, ns)
	return &t
}

// uncached says whether the kernel must ask again each time for names and
// attributes of this kind: the synthetic trees change under it (hosts come
// and go, processes start and end) and tell it nothing.
func uncached(kind fs.RouteKind) bool { return kind == fs.RouteHosts || kind == fs.RouteProc }

// noCache is the shortest timeout the kernel honours; go-fuse replaces a
// zero with the mount's CacheTimeout.
const noCache = time.Nanosecond

// newChild makes the inode for an entry the server described. Entries of
// the domains and the virtual directories leading to them ("/home") keep
// CacheTimeout; the synthetic trees' are not cached.
func (n *node) newChild(ctx context.Context, a *fs.Attr, kind fs.RouteKind, out *fuse.EntryOut) *gofs.Inode {
	fillAttr(a, &out.Attr)
	if uncached(kind) {
		out.SetEntryTimeout(noCache)
		out.SetAttrTimeout(noCache)
	}
	return n.NewInode(ctx, &node{m: n.m, kind: kind}, gofs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: a.Ino})
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.absent(name) && n.m.c.InDomain(n.child(name)) {
		return nil, syscall.ENOENT
	}
	if ch, errno, ok := n.lookupListed(ctx, name, out); ok {
		return ch, errno
	}
	if n.wantsListing(n.m.cred(ctx)) && n.listForLookups(ctx) {
		if ch, errno, ok := n.lookupListed(ctx, name, out); ok {
			return ch, errno
		}
	}
	x := n.xattrStart(name)
	e, err := n.m.c.Lookup(ctx, n.m.cred(ctx), n.path(), name)
	if err != nil {
		if e.Kind != fs.RouteDomain {
			// Outside the domains the names come from the prefix table,
			// which changes as hosts come and go: no negative caching.
			out.SetEntryTimeout(time.Nanosecond)
		}
		return nil, errno(err)
	}
	ch := n.newChild(ctx, &e.Attr, e.Kind, out)
	if e.Kind == fs.RouteDomain && e.Attr.NoXattr {
		x.noXattr(ch, e.Attr.Ino)
	}
	return ch, 0
}

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var h *fs.Handle
	if fh, ok := f.(*file); ok {
		h = fh.h
	}
	keep := n.kind == fs.RouteDomain
	if keep {
		if a := n.takeDirAttr(); a != nil {
			fillAttr(a, &out.Attr)
			return 0
		}
		if a, left := n.keptAttr(); a != nil {
			fillAttr(a, &out.Attr)
			out.SetTimeout(left)
			return 0
		}
	}
	gen := n.listStart()
	at := time.Now()
	a, err := n.m.c.Getattr(ctx, n.m.cred(ctx), n.path(), h)
	if err != nil {
		return errno(err)
	}
	if keep && !a.Local {
		n.keepAttr(a, at, gen)
	}
	if h == nil && n.kind == fs.RouteDomain && a.NoXattr {
		n.keepNoXattr(at, gen)
	}
	fillAttr(&a, &out.Attr)
	if uncached(n.kind) || a.Local {
		out.SetTimeout(noCache)
	}
	return 0
}

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var set fs.SetAttr
	if m, ok := in.GetMode(); ok {
		set.Valid |= fs.SetMode
		set.Mode = m
	}
	if u, ok := in.GetUID(); ok {
		set.Valid |= fs.SetUID
		set.UID = u
	}
	if g, ok := in.GetGID(); ok {
		set.Valid |= fs.SetGID
		set.GID = g
	}
	if s, ok := in.GetSize(); ok {
		set.Valid |= fs.SetSize
		set.Size = int64(s)
	}
	if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
		set.Valid |= fs.SetAtimeNow
	} else if t, ok := in.GetATime(); ok {
		set.Valid |= fs.SetAtime
		set.Atime = t.UnixNano()
	}
	if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		set.Valid |= fs.SetMtimeNow
	} else if t, ok := in.GetMTime(); ok {
		set.Valid |= fs.SetMtime
		set.Mtime = t.UnixNano()
	}
	var h *fs.Handle
	if fh, ok := f.(*file); ok {
		h = fh.h
	}
	n.changeStart()
	a, err := n.m.c.Setattr(ctx, n.m.cred(ctx), n.path(), h, set)
	n.changeEnd(nil)
	if err != nil {
		return errno(err)
	}
	fillAttr(&a, &out.Attr)
	if uncached(n.kind) {
		out.SetTimeout(noCache)
	}
	return 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.changeStart()
	n.willMake(name)
	seq := n.m.invals.Load()
	made, err := n.m.c.Mkdir(ctx, n.m.cred(ctx), n.path(), name, mode)
	n.changeEnd(made.Dir)
	if err != nil {
		return nil, errno(err)
	}
	ch := n.newChild(ctx, &made.Attr, fs.RouteDomain, out)
	if cn, ok := ch.Operations().(*node); ok && made.Watched {
		cn.setFresh(seq)
	}
	return ch, 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.changeStart()
	n.willMake(name)
	a, err := n.m.c.Symlink(ctx, n.m.cred(ctx), n.path(), name, target)
	n.changeEnd(nil)
	if err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, &a, fs.RouteDomain, out), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	tp := "/" + target.EmbeddedInode().Path(nil)
	n.changeStart()
	n.willMake(name)
	t := nodeOf(target)
	if t != nil {
		t.changeStart() // its link count
	}
	a, err := n.m.c.Link(ctx, n.m.cred(ctx), tp, n.path(), name)
	if t != nil {
		t.changeEnd(nil)
	}
	n.changeEnd(nil)
	if err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, &a, fs.RouteDomain, out), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	n.changeStart()
	var dir *fs.Attr
	defer func() { n.changeEnd(dir) }()
	if cn := n.childNode(name); cn != nil {
		cn.changeStart() // its link count
		defer cn.changeEnd(nil)
	}
	dir, err := n.m.c.Unlink(ctx, n.m.cred(ctx), n.path(), name)
	return errno(err)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	n.changeStart()
	var dir *fs.Attr
	defer func() { n.changeEnd(dir) }()
	dir, err := n.m.c.Rmdir(ctx, n.m.cred(ctx), n.path(), name)
	return errno(err)
}

func (n *node) Rename(ctx context.Context, name string, np gofs.InodeEmbedder, nname string, flags uint32) syscall.Errno {
	n.changeStart()
	defer n.changeEnd(nil)
	if nn := nodeOf(np); nn != nil {
		nn.willMake(nname)
		if nn != n {
			nn.changeStart()
			defer nn.changeEnd(nil)
		}
	}
	if ch := n.GetChild(name); ch != nil {
		// A directory moved changes too (".."), and its server's watch
		// stays under the old name: trust nothing of its own.
		changedElsewhere(ch)
	}
	for _, cn := range []*node{n.childNode(name), nodeOf(np).childNode(nname)} {
		if cn != nil {
			cn.changeStart() // a moved file's ctime, a replaced one's link count
			defer cn.changeEnd(nil)
		}
	}
	ndir := "/" + np.EmbeddedInode().Path(nil)
	return errno(n.m.c.Rename(ctx, n.m.cred(ctx), n.path(), name, ndir, nname, flags))
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.m.c.Readlink(ctx, n.m.cred(ctx), n.path())
	if err != nil {
		return nil, errno(err)
	}
	return []byte(t), 0
}

// readdir reads n's entries: the listing kept from the last readdir, if
// still good (listing.go), or the server's.
func (n *node) readdir(ctx context.Context) ([]fuse.DirEntry, syscall.Errno) {
	cr := n.m.cred(ctx)
	keep := n.kind == fs.RouteDomain && n.m.c.ListingNotified(n.path())
	if keep {
		if list := n.cachedListing(cr); list != nil {
			return list, 0
		}
	}
	l, _, err := n.fetchListing(ctx, cr, false, keep)
	if err != nil {
		return nil, errno(err)
	}
	return l.ents, 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	s, err := n.m.c.Statfs(ctx, n.m.cred(ctx), n.path())
	if err != nil {
		return errno(err)
	}
	*out = fuse.StatfsOut{Blocks: s.Blocks, Bfree: s.Bfree, Bavail: s.Bavail, Files: s.Files, Ffree: s.Ffree,
		Bsize: s.Bsize, NameLen: s.NameLen, Frsize: s.Frsize}
	return 0
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if fs.NotCarried(attr) {
		return 0, syscall.EOPNOTSUPP
	}
	if n.knownNoXattr() {
		return 0, syscall.ENODATA
	}
	data, sz, err := n.m.c.Xattr(ctx, n.m.cred(ctx), fs.MethodGetxattr, n.path(), attr, nil, len(dest), 0)
	if err != nil {
		return 0, errno(err)
	}
	return uint32(max(sz, copy(dest, data))), 0
}

// Listxattr asks the server for the whole list, even when the kernel asks
// only for its size, to leave out the names /sprite does not carry. A
// list with nothing else says the file has no extended attributes, as a
// lookup's reply does (xattr.go).
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if n.knownNoXattr() {
		return 0, 0
	}
	gen := n.listStart()
	at := time.Now()
	data, _, err := n.m.c.Xattr(ctx, n.m.cred(ctx), fs.MethodListxattr, n.path(), "", nil, fs.MaxXattr, 0)
	if err != nil {
		return 0, errno(err)
	}
	list := fs.DropNotCarried(data)
	if len(list) == 0 && n.kind == fs.RouteDomain {
		n.keepNoXattr(at, gen)
	}
	if len(dest) > 0 && len(list) > len(dest) {
		return uint32(len(list)), syscall.ERANGE
	}
	return uint32(max(len(list), copy(dest, list))), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if fs.NotCarried(attr) {
		return syscall.EOPNOTSUPP
	}
	n.changeStart()
	defer n.changeEnd(nil)
	_, _, err := n.m.c.Xattr(ctx, n.m.cred(ctx), fs.MethodSetxattr, n.path(), attr, data, 0, flags)
	return errno(err)
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if fs.NotCarried(attr) {
		return syscall.EOPNOTSUPP
	}
	n.changeStart()
	defer n.changeEnd(nil)
	_, _, err := n.m.c.Xattr(ctx, n.m.cred(ctx), fs.MethodRmxattr, n.path(), attr, nil, 0, 0)
	return errno(err)
}
