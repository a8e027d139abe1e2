package fs

import (
	"maps"
	"slices"

	"golang.org/x/sys/unix"
)

// ops maps each method to its implementation. Every implementation runs
// its system calls through c.as, as the requesting (squashed) user, and
// reaches files only through the export's confined opens.
var ops map[string]func(c *opCtx) (*Resp, error)

func init() {
	ops = map[string]func(c *opCtx) (*Resp, error){
		MethodLookup: opLookup, MethodGetattr: opGetattr, MethodSetattr: opSetattr,
		MethodOpen: opOpen, MethodCreate: opCreate, MethodRead: opRead, MethodWrite: opWrite, MethodWriteV: opWriteV,
		MethodFlush: opFlush, MethodFsync: opFsync, MethodRelease: opRelease,
		MethodMkdir: opMkdir, MethodUnlink: opUnlink, MethodRmdir: opRmdir, MethodRename: opRename,
		MethodLink: opLink, MethodSymlink: opSymlink, MethodReadlink: opReadlink,
		MethodReaddir: opReaddir, MethodStatfs: opStatfs,
		MethodGetxattr: opGetxattr, MethodSetxattr: opSetxattr, MethodListxattr: opListxattr, MethodRmxattr: opRmxattr,
	}
}

// Methods lists every method Server.Serve answers, for a host to serve
// each as a call of its own (bulk reads and writes, and clients without a
// session) besides inside fs.session.
func Methods() []string {
	return slices.Sorted(maps.Keys(ops))
}

func opLookup(c *opCtx) (*Resp, error) {
	c.s.watch.add(c.e, c.req.Path)
	var a *Attr
	err := c.as(func() (err error) {
		a, err = c.e.lstatX(joinPath(c.req.Path, c.req.Name))
		return err
	})
	return &Resp{Attr: a}, err
}

func opGetattr(c *opCtx) (*Resp, error) {
	if c.req.Handle != 0 {
		h, err := c.s.handle(c.client, c.req.Handle)
		if err != nil {
			return nil, err
		}
		var a *Attr
		err = h.use(false, func(fd int) (err error) {
			a, err = fstatAttr(c.e, fd)
			return err
		})
		return &Resp{Attr: a}, err
	}
	var a *Attr
	err := c.as(func() (err error) {
		a, err = c.e.lstatX(c.req.Path)
		return err
	})
	return &Resp{Attr: a}, err
}

func opMkdir(c *opCtx) (*Resp, error) {
	mode := c.req.Mode & 0o7777
	rel := joinPath(c.req.Path, c.req.Name)
	resp, err := c.makeEntry(func(pfd int) error {
		if err := unix.Mkdirat(pfd, c.req.Name, mode); err != nil {
			return err
		}
		fd, err := c.e.openNode(rel)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return c.s.w.created(fd, mode)
	})
	if err != nil {
		return resp, err
	}
	// Watch the new directory before answering, then make sure it is
	// still empty: whatever another host or a local process makes in it
	// from now on reaches this client as an invalidation.
	if c.s.watch.add(c.e, rel) && c.e.isEmptyDir(rel) {
		resp.Flags |= DirWatched
	}
	return resp, nil
}

func opSymlink(c *opCtx) (*Resp, error) {
	t := string(c.req.Data)
	if t == "" || len(t) > MaxPath || containsNUL(t) {
		return nil, unix.EINVAL
	}
	return c.makeEntry(func(pfd int) error { return unix.Symlinkat(t, pfd, c.req.Name) })
}

// makeEntry runs mk in the request's directory and returns the new entry's
// attributes and the directory's.
func (c *opCtx) makeEntry(mk func(pfd int) error) (*Resp, error) {
	var a, d *Attr
	err := c.as(func() error {
		return c.e.inDir(c.req.Path, func(pfd int) error {
			if err := mk(pfd); err != nil {
				return err
			}
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, c.req.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			a = c.e.attr(&st)
			d, _ = fstatAttr(c.e, pfd) // nil if it fails: the client asks
			return nil
		})
	})
	return &Resp{Attr: a, Dir: d}, err
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func opUnlink(c *opCtx) (*Resp, error) { return c.removeEntry(0) }

func opRmdir(c *opCtx) (*Resp, error) { return c.removeEntry(unix.AT_REMOVEDIR) }

// removeEntry removes the request's name from its directory and answers
// with the directory's attributes after the change (the kernel asks for
// them at the next path walk through it: a configure script's
// `rm -f conftest*` would cost a call more per file).
func (c *opCtx) removeEntry(flags int) (*Resp, error) {
	var d *Attr
	err := c.as(func() error {
		return c.e.inDir(c.req.Path, func(pfd int) error {
			if err := unix.Unlinkat(pfd, c.req.Name, flags); err != nil {
				return err
			}
			d, _ = fstatAttr(c.e, pfd) // nil if it fails: the client asks
			return nil
		})
	})
	return &Resp{Dir: d}, err
}

func opRename(c *opCtx) (*Resp, error) {
	flags := c.req.Flags & (unix.RENAME_NOREPLACE | unix.RENAME_EXCHANGE)
	return &Resp{}, c.as(func() error {
		return c.e.inDir(c.req.Path, func(pfd int) error {
			return c.e.inDir(c.req.NewPath, func(npfd int) error {
				return unix.Renameat2(pfd, c.req.Name, npfd, c.req.NewName, uint(flags))
			})
		})
	})
}

func opLink(c *opCtx) (*Resp, error) {
	if c.req.Path == "" {
		return nil, unix.EPERM
	}
	dir, name := splitPath(c.req.Path)
	var a *Attr
	err := c.as(func() error {
		return c.e.inDir(dir, func(pfd int) error {
			return c.e.inDir(c.req.NewPath, func(npfd int) error {
				if err := unix.Linkat(pfd, name, npfd, c.req.NewName, 0); err != nil {
					return err
				}
				var st unix.Stat_t
				if err := unix.Fstatat(npfd, c.req.NewName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return err
				}
				a = c.e.attr(&st)
				return nil
			})
		})
	})
	return &Resp{Attr: a}, err
}

func opReadlink(c *opCtx) (*Resp, error) {
	if c.req.Path == "" {
		return nil, unix.EINVAL
	}
	dir, name := splitPath(c.req.Path)
	buf := make([]byte, MaxPath)
	var n int
	err := c.as(func() error {
		return c.e.inDir(dir, func(pfd int) (err error) {
			n, err = unix.Readlinkat(pfd, name, buf)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return &Resp{Data: buf[:n]}, nil
}

func opReaddir(c *opCtx) (*Resp, error) {
	c.s.watch.add(c.e, c.req.Path)
	var ents []Dirent
	err := c.as(func() (err error) {
		ents, err = c.e.readDir(c.req.Path)
		return err
	})
	if err != nil {
		return nil, err
	}
	if c.req.Flags&ReaddirSmall != 0 && len(ents) > SmallDir {
		return &Resp{Errno: uint32(unix.E2BIG)}, nil
	}
	off := min(max(c.req.Offset, 0), int64(len(ents)))
	end := min(off+DirPage, int64(len(ents)))
	page := ents[off:end]
	if c.req.Flags&ReaddirAttrs != 0 && len(page) > 0 {
		// Asked about before the stats (a change meanwhile reaches the
		// client) and after (its time counts from the reply).
		items := make([]Item, len(page))
		for i, d := range page {
			items[i] = Item{Prefix: c.req.Prefix, Path: joinPath(c.req.Path, d.Name)}
		}
		c.s.note.saw(c.client, items...)
		c.as(func() error { c.e.statEntries(c.req.Path, page); return nil })
		c.s.note.saw(c.client, items...)
	}
	r := &Resp{Entries: page, N: int64(len(ents))}
	if end < int64(len(ents)) {
		r.Flags = DirMore
	}
	return r, nil
}

func opStatfs(c *opCtx) (*Resp, error) {
	st, err := c.e.statfs()
	return &Resp{Statfs: st}, err
}
