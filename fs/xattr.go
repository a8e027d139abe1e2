package fs

import (
	"golang.org/x/sys/unix"
)

// Extended attributes go through a real descriptor of the file (opened
// read-only, never following a symlink), so they need read permission on
// it; symlinks have none here.
func (c *opCtx) withFile(fn func(fd int) error) error {
	return c.as(func() error {
		fd, err := c.e.open(c.req.Path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return fn(fd)
	})
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
		return nil, err
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
	return &Resp{}, c.withFile(func(fd int) error { return unix.Fsetxattr(fd, name, c.req.Data, int(c.req.Flags)) })
}

func opRmxattr(c *opCtx) (*Resp, error) {
	name, err := xattrName(c)
	if err != nil {
		return nil, err
	}
	return &Resp{}, c.withFile(func(fd int) error { return unix.Fremovexattr(fd, name) })
}

func opListxattr(c *opCtx) (*Resp, error) {
	size := min(max(c.req.Size, 0), MaxXattr)
	buf := make([]byte, size)
	var n int
	err := c.withFile(func(fd int) (err error) {
		n, err = unix.Flistxattr(fd, buf)
		return err
	})
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return &Resp{N: int64(n)}, nil
	}
	return &Resp{Data: buf[:n], N: int64(n)}, nil
}
