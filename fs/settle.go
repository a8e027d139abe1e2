package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"sprite/internal/fdctl"
)

// Settling: a barrier between this host's disk and the clients' caches.
//
// A change made on the exporting host's own disk (not through the server)
// reaches the clients by inotify, a moment later: the watcher reads the
// event and queues the item, and the notifier's queue for each client
// sends it. Clients that keep an open handle after the close (package
// fs/fuse, kept.go) trust it until told otherwise, so a job that this
// host starts on another host right after a change here (a header that
// pmake's job at home generated, then a compile elsewhere that includes
// it) must not start before the other host has heard. Settle is that
// wait: the home calls it before it starts a job elsewhere.
//
// The watcher's inotify queue is in the order the kernel saw the changes.
// Settle creates a file in a directory of the server's own (the sentinel,
// 0700 in the temporary directory) and waits for the watcher to read that
// creation: every change made before the call has then been read and
// queued. It then waits for each client's queue to have sent what it
// held at that moment (notifier.flush).
//
// The sentinel's watch is not in the watcher's tables: events() looks for
// its descriptor first. settle.mu is a leaf.
type settle struct {
	dir string // the sentinel directory; "" when it could not be made
	wd  int32  // its inotify watch

	mu      sync.Mutex
	next    uint64                   // guarded by mu; the last number handed out
	waiting map[uint64]chan struct{} // guarded by mu; Settle calls not yet seen by the watcher
}

// startSettle makes the sentinel directory and its watch; without them
// Settle waits for nothing (and says so in the log).
func (w *watcher) startSettle() {
	dir, err := os.MkdirTemp("", "sprite-settle-")
	if err == nil {
		var wd int
		err = fdctl.Control(w.f, func(ifd int) (err error) {
			wd, err = unix.InotifyAddWatch(ifd, dir, unix.IN_CREATE|unix.IN_ONLYDIR)
			return err
		})
		if err != nil {
			os.Remove(dir)
		}
		w.settle.dir, w.settle.wd = dir, int32(wd)
	}
	if err != nil {
		w.settle.dir = ""
		w.log.Warn("fs: no settling directory; jobs started elsewhere may start before the other host has heard of a change on this disk (it still hears within ms)", "err", err)
	}
	w.settle.waiting = map[uint64]chan struct{}{}
}

// stopSettle removes the sentinel directory.
func (w *watcher) stopSettle() {
	if w.settle.dir != "" {
		os.RemoveAll(w.settle.dir)
	}
}

// sawSentinel handles an event of the sentinel directory: the creation
// of file n ends the wait of every Settle call numbered n or less, each of
// which began before file n was made.
func (w *watcher) sawSentinel(name string) {
	n, err := strconv.ParseUint(name, 10, 64)
	if err != nil {
		return
	}
	w.settle.mu.Lock()
	defer w.settle.mu.Unlock()
	for k, ch := range w.settle.waiting {
		if k <= n {
			close(ch)
			delete(w.settle.waiting, k)
		}
	}
}

// Settle returns once every change made on this host's disk before the
// call has been sent to client, where it may cache what changed, and
// client has answered; or with an error when that takes longer than wait.
func (s *Server) Settle(ctx context.Context, client string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w := s.watch
	if w == nil || w.settle.dir == "" {
		return nil
	}
	ch := make(chan struct{})
	w.settle.mu.Lock()
	w.settle.next++
	n := w.settle.next
	w.settle.waiting[n] = ch
	w.settle.mu.Unlock()
	p := filepath.Join(w.settle.dir, strconv.FormatUint(n, 10))
	err := os.WriteFile(p, nil, 0o600)
	if err == nil {
		os.Remove(p)
		select {
		case <-ch:
			err = s.note.flush(ctx, client)
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		w.settle.mu.Lock()
		delete(w.settle.waiting, n)
		w.settle.mu.Unlock()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("fs: settle: this disk's changes not told to every client within %v: %w", wait, err)
		} else {
			err = fmt.Errorf("fs: settle: %w", err)
		}
	}
	return err
}
