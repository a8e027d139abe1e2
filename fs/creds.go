package fs

import (
	"context"
	"fmt"
	"runtime"
	"sync"
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

// workers run file operations on OS threads of their own: each thread has
// its own fs struct (unshare CLONE_FS) with umask 0, so the mode a client
// asks for is the mode it gets, and takes on the requesting user's fsuid,
// fsgid and groups for each operation, so the kernel checks permissions as
// that user. The threads stay locked to their goroutines for their whole
// lives and die with them.
type workers struct {
	jobs chan job
	wg   sync.WaitGroup
}

type job struct {
	cred Cred
	fn   func() error
	done chan error
}

func startWorkers(n int) (*workers, error) {
	w := &workers{jobs: make(chan job)}
	ready := make(chan error, n)
	for range n {
		w.wg.Add(1)
		go w.loop(ready)
	}
	for range n {
		if err := <-ready; err != nil {
			w.stop()
			return nil, err
		}
	}
	return w, nil
}

func (w *workers) loop(ready chan<- error) {
	defer w.wg.Done()
	runtime.LockOSThread() // never unlocked: the thread's state is ours alone
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		ready <- fmt.Errorf("fs worker: unshare CLONE_FS: %w", err)
		return
	}
	unix.Umask(0)
	ready <- nil
	for j := range w.jobs {
		j.done <- runAs(j.cred, j.fn)
	}
}

func (w *workers) stop() { close(w.jobs); w.wg.Wait() }

// do runs fn as cred on a worker thread.
func (w *workers) do(ctx context.Context, c Cred, fn func() error) error {
	j := job{cred: c, fn: fn, done: make(chan error, 1)}
	select {
	case w.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-j.done
}

// runAs sets this thread's fs credentials, runs fn and restores root's.
func runAs(c Cred, fn func() error) error {
	if err := setgroups(c.Groups); err != nil {
		return fmt.Errorf("set groups: %w", err)
	}
	unix.Setfsgid(int(c.GID))
	unix.Setfsuid(int(c.UID))
	err := fn()
	unix.Setfsuid(0)
	unix.Setfsgid(0)
	setgroups(nil)
	return err
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
