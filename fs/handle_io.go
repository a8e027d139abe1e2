package fs

import (
	"golang.org/x/sys/unix"
)

// use runs fn with the handle's descriptor. A write through a handle whose
// write descriptor was given up (dropWrite) opens the file for writing
// again first.
func (h *handle) use(write bool, fn func(fd int) error) error {
	h.io.RLock()
	if !write || !h.ro {
		defer h.io.RUnlock()
		return fn(h.fd)
	}
	h.io.RUnlock()
	h.io.Lock()
	defer h.io.Unlock()
	if h.ro {
		// The descriptor in hand is the same file, opened beneath the
		// export by the user; reopening it needs no name.
		fd, err := unix.Open(procPath(h.fd), h.flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		unix.Close(h.fd)
		h.fd, h.ro = fd, false
	}
	return fn(h.fd)
}

// dropWrite trades the write descriptor for a read-only one once the
// client has closed the file (flush): the server then holds nothing open
// for writing, so the program just linked through /sprite can be executed
// on this host at once (no ETXTBSY), though the client's release may come
// later. Best effort: if the file cannot be reopened the handle keeps its
// descriptor.
func (h *handle) dropWrite() {
	h.io.Lock()
	defer h.io.Unlock()
	if h.ro {
		return
	}
	fd, err := unix.Open(procPath(h.fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	unix.Close(h.fd)
	h.fd, h.ro = fd, true
}
