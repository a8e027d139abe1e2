package pmake

import (
	"bytes"
	"os"
	"sync"
	"syscall"
)

// held keeps a job's stdout and stderr until the job has ended, so that a
// job run a second time (its host was lost) prints its output once. When
// stdout and stderr are the same file (make's -O hands a job one temporary
// file for both, and a terminal is one file too) one buffer keeps the two
// streams' order.
type held struct {
	mu       sync.Mutex
	out, err bytes.Buffer
	same     bool
}

// heldWriter is one stream of a held.
type heldWriter struct {
	h      *held
	stderr bool
}

func (w heldWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	if w.stderr && !w.h.same {
		return w.h.err.Write(p)
	}
	return w.h.out.Write(p)
}

func newHeld() *held { return &held{same: sameFile(1, 2)} }

func (h *held) stdout() heldWriter { return heldWriter{h, false} }
func (h *held) stderr() heldWriter { return heldWriter{h, true} }

// reset drops what a lost run printed.
func (h *held) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out.Reset()
	h.err.Reset()
}

// flush writes everything out (stdout first when the streams are apart).
func (h *held) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.same {
		os.Stdout.Write(h.out.Bytes())
	} else {
		os.Stdout.Write(h.out.Bytes())
		os.Stderr.Write(h.err.Bytes())
	}
	h.out.Reset()
	h.err.Reset()
}

// sameFile reports whether two descriptors are the same open file.
func sameFile(a, b int) bool {
	var sa, sb syscall.Stat_t
	if syscall.Fstat(a, &sa) != nil || syscall.Fstat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
