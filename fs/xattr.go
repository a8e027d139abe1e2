package fs

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Extended attributes go through a real descriptor of the file (opened
// read-only, never following a symlink), so they need read permission on
// it. A symlink has none here, as a user's symlink has none on a local
// disk (xattr(7): user attributes are refused on symlinks): getting one
// says ENODATA, the list is empty, setting or removing one is EPERM.
// (ls -l asks every file for its security label and reports anything
// else as an error.)
func (c *opCtx) withFile(fn func(fd int) error) error {
	return c.as(func() error {
		fd, err := c.e.open(c.req.Path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if errors.Is(err, unix.ELOOP) && c.isSymlink() {
			return errSymlinkXattr
		}
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return fn(fd)
	})
}

// errSymlinkXattr is withFile's answer for a symlink; each method turns it
// into what a local disk answers.
var errSymlinkXattr = errors.New("symlinks have no extended attributes")

// isSymlink reports whether the request's path is a symlink.
func (c *opCtx) isSymlink() bool {
	a, _, err := c.e.lstat(c.req.Path)
	return err == nil && a.Mode&unix.S_IFMT == unix.S_IFLNK
}

// symlinkErr maps errSymlinkXattr to errno for a method that changes.
func symlinkErr(err error, errno unix.Errno) error {
	if errors.Is(err, errSymlinkXattr) {
		return errno
	}
	return err
}

func xattrName(c *opCtx) (string, error) {
	n := string(c.req.Name)
	if n == "" || len(n) > MaxName || containsNUL(n) {
		return "", unix.EINVAL
	}
	return n, nil
}

func opGetxattr(c *opCtx) (*Resp, error) {
	name, err := xattrName(c)
	if err != nil {
		return nil, err
	}
	size := min(max(c.req.Size, 0), MaxXattr)
	buf := make([]byte, size)
	var n int
	err = c.withFile(func(fd int) (err error) {
		n, err = unix.Fgetxattr(fd, name, buf)
		return err
	})
	if err != nil {
		return nil, symlinkErr(err, unix.ENODATA)
	}
	if size == 0 {
		return &Resp{N: int64(n)}, nil
	}
	return &Resp{Data: buf[:n], N: int64(n)}, nil
}

func opSetxattr(c *opCtx) (*Resp, error) {
	name, err := xattrName(c)
	if err != nil {
		return nil, err
	}
	if len(c.req.Data) > MaxXattr {
		return nil, unix.E2BIG
	}
	return &Resp{}, symlinkErr(c.withFile(func(fd int) error { return unix.Fsetxattr(fd, name, c.req.Data, int(c.req.Flags)) }), unix.EPERM)
}

func opRmxattr(c *opCtx) (*Resp, error) {
	name, err := xattrName(c)
	if err != nil {
		return nil, err
	}
	return &Resp{}, symlinkErr(c.withFile(func(fd int) error { return unix.Fremovexattr(fd, name) }), unix.EPERM)
}

func opListxattr(c *opCtx) (*Resp, error) {
	size := min(max(c.req.Size, 0), MaxXattr)
	buf := make([]byte, size)
	var n int
	err := c.withFile(func(fd int) (err error) {
		n, err = unix.Flistxattr(fd, buf)
		return err
	})
	if errors.Is(err, errSymlinkXattr) {
		return &Resp{N: 0}, nil
	}
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return &Resp{N: int64(n)}, nil
	}
	return &Resp{Data: buf[:n], N: int64(n)}, nil
}

// NotCarried reports whether /sprite leaves out extended attribute name:
// security labels and capabilities (the "security." namespace) and POSIX
// ACLs. They mean something only to the kernel that enforces them. The
// serving host's does: the server runs every request as the requesting
// user, with the labels and ACLs on its disk. A client's kernel takes
// neither, so clients answer "not supported" for them (fs/fuse).
func NotCarried(name string) bool {
	return strings.HasPrefix(name, "security.") ||
		name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

// carriesNone reports whether the file name in directory dirfd (not
// followed if a symlink) has no extended attribute that /sprite carries:
// Attr.NoXattr. On a host that labels every file (SELinux), a file with
// nothing but its label has none. It asks listxattrat(2) (Linux 6.13);
// an older kernel is asked through the directory's magic link, a walk of
// /proc that cost a readdir with attributes more than its stats did (2 us
// an entry against 1 on this machine).
func carriesNone(dirfd int, name string) bool {
	var buf [1024]byte
	n, err := listxattrAt(dirfd, name, buf[:])
	if err == unix.ENOSYS {
		n, err = unix.Llistxattr(procPath(dirfd)+"/"+name, buf[:])
	}
	if err != nil {
		return false // a list too long for buf (ERANGE) has more than labels
	}
	return len(DropNotCarried(buf[:n])) == 0
}

// noListxattrat is set once listxattrat(2) has said ENOSYS.
var noListxattrat atomic.Bool

// listxattrAt is listxattrat(2) of name in dirfd, not following a
// symlink; ENOSYS on a kernel without it.
func listxattrAt(dirfd int, name string, buf []byte) (int, error) {
	if noListxattrat.Load() {
		return 0, unix.ENOSYS
	}
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	n, _, e := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)), 0)
	if e != 0 {
		if e == unix.ENOSYS {
			noListxattrat.Store(true)
		}
		return 0, e
	}
	return int(n), nil
}

// DropNotCarried returns list (listxattr's names, each ending in NUL)
// without the names /sprite does not carry; list itself is not changed.
func DropNotCarried(list []byte) []byte {
	var out []byte
	for len(list) > 0 {
		i := bytes.IndexByte(list, 0)
		if i < 0 {
			i = len(list) - 1 // a last name without its NUL
		}
		if !NotCarried(string(list[:i])) {
			out = append(out, list[:i+1]...)
		}
		list = list[i+1:]
	}
	return out
}
