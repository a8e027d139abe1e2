package fs

import (
	"golang.org/x/sys/unix"
)

// opSetattr changes mode, owner, size and times, each as the requesting
// user, so the kernel applies its own rules (only the owner may chmod, only
// root may chown, and root is squashed).
func opSetattr(c *opCtx) (*Resp, error) {
	set := c.req.Set
	if set == nil {
		return opGetattr(c)
	}
	if c.req.Handle != 0 {
		h, err := c.s.handle(c.client, c.req.Handle)
		if err != nil {
			return nil, err
		}
		if set.Valid != SetSize {
			return nil, unix.EINVAL // only ftruncate goes through a handle
		}
		var a *Attr
		err = h.use(true, func(fd int) error {
			if err := unix.Ftruncate(fd, set.Size); err != nil {
				return err
			}
			a, err = fstatAttr(c.e, fd)
			return err
		})
		if err != nil {
			return nil, err
		}
		c.s.wroteHandle(c.ctx, h)
		return &Resp{Attr: a}, nil
	}
	err := c.as(func() error {
		if set.Valid&SetSize != 0 {
			if err := c.truncate(set.Size); err != nil {
				return err
			}
		}
		if set.Valid&(SetMode|SetUID|SetGID) != 0 {
			if err := c.chmodChown(set); err != nil {
				return err
			}
		}
		if set.Valid&(SetAtime|SetMtime|SetAtimeNow|SetMtimeNow) != 0 {
			return c.utimens(set)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	a, _, err := c.e.lstat(c.req.Path)
	return &Resp{Attr: a}, err
}

func (c *opCtx) truncate(size int64) error {
	fd, err := c.e.open(c.req.Path, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Ftruncate(fd, size)
}

// chmodChown works on an O_PATH descriptor: chown directly, chmod through
// its /proc/self/fd link (never on a symlink, whose target could lie
// outside the export).
func (c *opCtx) chmodChown(set *SetAttr) error {
	fd, err := c.e.openNode(c.req.Path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if set.Valid&(SetUID|SetGID) != 0 {
		uid, gid := -1, -1
		if set.Valid&SetUID != 0 {
			uid = int(set.UID)
		}
		if set.Valid&SetGID != 0 {
			gid = int(set.GID)
		}
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if set.Valid&SetMode == 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.EOPNOTSUPP
	}
	return unix.Fchmodat(unix.AT_FDCWD, procPath(fd), set.Mode&0o7777, 0)
}

func (c *opCtx) utimens(set *SetAttr) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	switch {
	case set.Valid&SetAtimeNow != 0:
		ts[0].Nsec = unix.UTIME_NOW
	case set.Valid&SetAtime != 0:
		ts[0] = unix.NsecToTimespec(set.Atime)
	}
	switch {
	case set.Valid&SetMtimeNow != 0:
		ts[1].Nsec = unix.UTIME_NOW
	case set.Valid&SetMtime != 0:
		ts[1] = unix.NsecToTimespec(set.Mtime)
	}
	if c.req.Path == "" {
		return unix.UtimesNanoAt(c.e.root, ".", ts, 0)
	}
	dir, name := splitPath(c.req.Path)
	return c.e.inDir(dir, func(pfd int) error {
		return unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
}
