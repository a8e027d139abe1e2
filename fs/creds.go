package fs

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Nobody is the uid and gid a squashed root becomes.
const Nobody = 65534

// squash maps root to nobody, as NFS does: a host's root is not every
// host's root.
func squash(c Cred) Cred {
	if c.UID == 0 {
		c.UID = Nobody
	}
	if c.GID == 0 {
		c.GID = Nobody
	}
	groups := make([]uint32, 0, len(c.Groups))
	for _, g := range c.Groups {
		if g != 0 && len(groups) < 64 {
			groups = append(groups, g)
		}
	}
	c.Groups = groups
	return c
}

// workers run file operations as the requesting user: the calling
// goroutine locks itself to its OS thread, gives that thread the user's
// fsuid, fsgid and groups (setfsuid, setfsgid and the raw per-thread
// setgroups; Go's own wrappers change every thread), runs the operation,
// so the kernel checks permissions as that user, and gives the thread the
// daemon's own credentials back before unlocking it. (Go starts new
// threads from a clean template thread, never from a locked one, so
// nothing inherits the user's credentials.) A thread whose credentials
// cannot be restored stays locked and dies with its goroutine.
//
// A semaphore bounds how many operations run at once. Handing each
// operation to a dedicated thread instead costs two thread wake-ups, about
// as much as the operation itself.
//
// The process's umask still applies to creations: created (below) undoes
// it, so the mode the client's kernel computed is the mode a file gets.
type workers struct {
	sem    chan struct{}
	uid    int // the daemon's own fsuid, fsgid and groups
	gid    int
	groups []uint32
	umask  uint32
}

func startWorkers(n int) (*workers, error) {
	gs, err := unix.Getgroups()
	if err != nil {
		return nil, fmt.Errorf("fs: getgroups: %w", err)
	}
	w := &workers{sem: make(chan struct{}, n), uid: os.Geteuid(), gid: os.Getegid(), umask: readUmask()}
	for _, g := range gs {
		w.groups = append(w.groups, uint32(g))
	}
	return w, nil
}

func (w *workers) stop() {}

// do runs fn as c.
func (w *workers) do(ctx context.Context, c Cred, fn func() error) error {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.sem }()
	runtime.LockOSThread()
	err := setCred(c.Groups, int(c.GID), int(c.UID))
	if err == nil {
		err = fn()
	}
	if rerr := setCred(w.groups, w.gid, w.uid); rerr != nil {
		return fmt.Errorf("fs: restore the daemon's credentials: %w", rerr) // the thread stays locked
	}
	runtime.UnlockOSThread()
	return err
}

// setCred gives the calling thread fs credentials.
func setCred(groups []uint32, gid, uid int) error {
	if err := setgroups(groups); err != nil {
		return fmt.Errorf("set groups: %w", err)
	}
	unix.Setfsgid(gid)
	unix.Setfsuid(uid)
	if cur, _ := unix.SetfsuidRetUid(-1); cur != uid {
		return fmt.Errorf("setfsuid %d: still %d", uid, cur)
	}
	return nil
}

// setgroups changes the calling thread's groups only (the raw system call;
// the libc and Go wrappers change every thread's).
func setgroups(gs []uint32) error {
	var p unsafe.Pointer
	if len(gs) > 0 {
		p = unsafe.Pointer(&gs[0])
	}
	_, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gs)), uintptr(p), 0)
	if e != 0 {
		return e
	}
	return nil
}

// readUmask reads the process's umask without changing it.
func readUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(m)
				}
			}
		}
	}
	return 0o022
}

// created gives a file this server just created (fd, any kind of
// descriptor) the mode the client asked for, which the process's umask
// may have narrowed. Run as the user, who owns the file.
func (w *workers) created(fd int, mode uint32) error {
	if mode&w.umask == 0 {
		return nil
	}
	return unix.Fchmodat(unix.AT_FDCWD, procPath(fd), mode&0o7777, 0)
}
