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
}

var (
	_ gofs.NodeLookuper      = (*node)(nil)
	_ gofs.NodeGetattrer     = (*node)(nil)
	_ gofs.NodeSetattrer     = (*node)(nil)
	_ gofs.NodeOpener        = (*node)(nil)
	_ gofs.NodeCreater       = (*node)(nil)
	_ gofs.NodeMkdirer       = (*node)(nil)
	_ gofs.NodeUnlinker      = (*node)(nil)
	_ gofs.NodeRmdirer       = (*node)(nil)
	_ gofs.NodeRenamer       = (*node)(nil)
	_ gofs.NodeLinker        = (*node)(nil)
	_ gofs.NodeSymlinker     = (*node)(nil)
	_ gofs.NodeReadlinker    = (*node)(nil)
	_ gofs.NodeReaddirer     = (*node)(nil)
	_ gofs.NodeStatfser      = (*node)(nil)
	_ gofs.NodeGetxattrer    = (*node)(nil)
	_ gofs.NodeSetxattrer    = (*node)(nil)
	_ gofs.NodeListxattrer   = (*node)(nil)
	_ gofs.NodeRemovexattrer = (*node)(nil)
)

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
	e, err := n.m.c.Lookup(ctx, n.m.cred(ctx), n.path(), name)
	if err != nil {
		if e.Kind != fs.RouteDomain {
			// Outside the domains the names come from the prefix table,
			// which changes as hosts come and go: no negative caching.
			out.SetEntryTimeout(time.Nanosecond)
		}
		return nil, errno(err)
	}
	return n.newChild(ctx, &e.Attr, e.Kind, out), 0
}

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var h *fs.Handle
	if fh, ok := f.(*file); ok {
		h = fh.h
	}
	a, err := n.m.c.Getattr(ctx, n.m.cred(ctx), n.path(), h)
	if err != nil {
		return errno(err)
	}
	fillAttr(&a, &out.Attr)
	if uncached(n.kind) {
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
	a, err := n.m.c.Setattr(ctx, n.m.cred(ctx), n.path(), h, set)
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
	a, err := n.m.c.Mkdir(ctx, n.m.cred(ctx), n.path(), name, mode)
	if err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, &a, fs.RouteDomain, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, err := n.m.c.Symlink(ctx, n.m.cred(ctx), n.path(), name, target)
	if err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, &a, fs.RouteDomain, out), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	tp := "/" + target.EmbeddedInode().Path(nil)
	a, err := n.m.c.Link(ctx, n.m.cred(ctx), tp, n.path(), name)
	if err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, &a, fs.RouteDomain, out), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return errno(n.m.c.Unlink(ctx, n.m.cred(ctx), n.path(), name))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errno(n.m.c.Rmdir(ctx, n.m.cred(ctx), n.path(), name))
}

func (n *node) Rename(ctx context.Context, name string, np gofs.InodeEmbedder, nname string, flags uint32) syscall.Errno {
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

func (n *node) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	ents, err := n.m.c.Readdir(ctx, n.m.cred(ctx), n.path())
	if err != nil {
		return nil, errno(err)
	}
	list := make([]fuse.DirEntry, len(ents))
	for i, e := range ents {
		list[i] = fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: uint32(e.Type) << 12}
	}
	return gofs.NewListDirStream(list), 0
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
	data, sz, err := n.m.c.Xattr(ctx, n.m.cred(ctx), fs.MethodGetxattr, n.path(), attr, nil, len(dest), 0)
	if err != nil {
		return 0, errno(err)
	}
	return uint32(max(sz, copy(dest, data))), 0
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	data, sz, err := n.m.c.Xattr(ctx, n.m.cred(ctx), fs.MethodListxattr, n.path(), "", nil, len(dest), 0)
	if err != nil {
		return 0, errno(err)
	}
	return uint32(max(sz, copy(dest, data))), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	_, _, err := n.m.c.Xattr(ctx, n.m.cred(ctx), fs.MethodSetxattr, n.path(), attr, data, 0, flags)
	return errno(err)
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	_, _, err := n.m.c.Xattr(ctx, n.m.cred(ctx), fs.MethodRmxattr, n.path(), attr, nil, 0, 0)
	return errno(err)
}
