package fusefs

import (
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// Files without extended attributes.
//
// Programs that copy or archive files (cp -a, rsync -X, tar --xattrs,
// Python's shutil.copy2) list every file's extended attributes: without
// help, a call to the server per file, answered "none" for nearly every
// file. The server says in a lookup's or getattr's reply whether the file
// has no extended attributes at all (fs.Attr.NoXattr), and a listxattr
// that finds none says the same (the server counts it as asking about the
// file, as it does a lookup); the node keeps
// that for CacheTimeout from the request, as the kernel keeps the
// attributes themselves, and answers getxattr (ENODATA) and listxattr
// (none) itself meanwhile. The server tells this host of a change of the
// file's attributes within that time (it counts the lookup or getattr as
// asking, fs/interest.go): the invalidation drops the knowledge
// (changedElsewhere bumps listGen), as this host's own setxattr and
// removexattr of the file do (changeStart). A reply that may predate
// such a drop is not kept: for a node that existed before the call its
// generation must not have moved; a node the lookup made had no way to
// hear of a change, so then no invalidation at all may have reached this
// mount meanwhile.

// keepNoXattr notes that the server said n has no extended attributes,
// in reply to a request made at at, unless n was invalidated or changed
// since listStart returned gen.
func (n *node) keepNoXattr(at time.Time, gen uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listGen == gen && n.changing == 0 {
		n.noXattrAt, n.noXattrGen = at, gen
	}
}

// knownNoXattr reports whether n is known to have no extended attributes.
func (n *node) knownNoXattr() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.noXattrAt.IsZero() && n.noXattrGen == n.listGen && time.Since(n.noXattrAt) < CacheTimeout
}

// xattrLookup is what a lookup notes before its call, for noXattr.
type xattrLookup struct {
	at     time.Time
	old    *node  // the name's node before the call, if any
	oldGen uint64 // its listGen then
	invals uint64 // the mount's invalidations then
	m      *Mount
}

// xattrStart notes the state before a lookup of name in n.
func (n *node) xattrStart(name string) xattrLookup {
	x := xattrLookup{at: time.Now(), invals: n.m.invals.Load(), m: n.m}
	if cn := n.childNode(name); cn != nil {
		x.old, x.oldGen = cn, cn.listStart()
	}
	return x
}

// noXattr records the lookup's "no extended attributes" on the node the
// kernel will use for it: the one the name had (the node go-fuse keeps
// for a known inode number), or the new one.
func (x xattrLookup) noXattr(ch *gofs.Inode, ino uint64) {
	cn, ok := ch.Operations().(*node)
	if !ok {
		return
	}
	switch {
	case x.old != nil && x.old.StableAttr().Ino == ino:
		x.old.keepNoXattr(x.at, x.oldGen)
	case cn != x.old && x.m.invals.Load() == x.invals:
		cn.keepNoXattr(x.at, cn.listStart())
	}
}

// Names /sprite does not carry (fs.NotCarried: security labels and
// capabilities, POSIX ACLs): getxattr, setxattr and removexattr of them
// answer "not supported" (EOPNOTSUPP) without a call, and listxattr
// leaves them out (fs.DropNotCarried), as a file system without them
// does: getfacl says "Operation not supported", cp -a and tar copy no
// ACLs out of /sprite or into it.
//
// "Not supported", not "no such attribute", also spares ls -l two
// requests through FUSE per file: coreutils' ls asks every file it lists
// for its security label and its ACL, and stops asking on a file system
// once one file answers "not supported". (The kernel turns getxattr off
// for the whole mount only when the daemon answers ENOSYS, never on this.)
