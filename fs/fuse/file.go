package fusefs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"sprite/fs"
)

// file is an open file: a remote handle, the contents of a synthetic
// file computed at open, or a /proc ctl file.
type file struct {
	m *Mount
	n *node // the file's node, for its open counts (remote files only)
	h *fs.Handle
	// direct: a write-only open with direct I/O (node.opened), counted
	// in n.direct until its release.
	direct bool
	synth  []byte
	ctl    string      // the path below /proc of a ctl file open for writing
	cred   fs.Cred     // who opened the ctl file
	dirty  atomic.Bool // written since the last flush
	// writeOpen: opened for writing (or truncation), so the server holds
	// a write descriptor until a flush after the writes (flushed).
	writeOpen bool
	flushed   atomic.Bool // a flush reached the server since the last write
	flags     uint32      // the open's flags (kept.go)
	// reused: h was kept from an earlier open (kept.go); a read the
	// server answers EBADF opens the file again (reopen), and reads
	// through again from then on.
	reused bool
	mu     sync.Mutex
	again  *fs.Handle // guarded by mu
}

var (
	_ gofs.FileReader   = (*file)(nil)
	_ gofs.FileWriter   = (*file)(nil)
	_ gofs.FileFlusher  = (*file)(nil)
	_ gofs.FileFsyncer  = (*file)(nil)
	_ gofs.FileReleaser = (*file)(nil)
)

// releaseTimeout bounds a release, which the kernel sends without waiting.
const releaseTimeout = 10 * time.Second

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	p := n.path()
	if rel, ok := strings.CutPrefix(p, "/"+fs.SynthHosts+"/"); ok {
		if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
			return nil, 0, syscall.EACCES
		}
		b, err := n.m.c.HostsFile(rel)
		if err != nil {
			return nil, 0, errno(err)
		}
		return &file{m: n.m, synth: b}, fuse.FOPEN_DIRECT_IO, 0
	}
	if rel, ok := strings.CutPrefix(p, "/"+fs.SynthProc+"/"); ok {
		// A status file's text is computed now, for the opener; a
		// ctl file (open for writing) hands each write to the core.
		cr := n.m.cred(ctx)
		b, err := n.m.c.ProcOpen(ctx, cr, rel, flags)
		if err != nil {
			return nil, 0, errno(err)
		}
		f := &file{m: n.m, synth: b}
		if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
			f.ctl, f.cred = rel, cr
		}
		return f, fuse.FOPEN_DIRECT_IO, 0
	}
	cr := n.m.cred(ctx)
	if h := n.takeKept(p, cr, flags); h != nil {
		f := &file{m: n.m, n: n, h: h, flags: flags, reused: true}
		return f, n.opened(f, flags), 0
	}
	gen, at := n.listStart(), time.Now()
	h, a, err := n.m.c.Open(ctx, cr, p, flags)
	if err != nil {
		return nil, 0, errno(err)
	}
	f := &file{m: n.m, n: n, h: h, writeOpen: writes(flags), flags: flags}
	fl := n.opened(f, flags)
	n.keepAttr(a, at, gen)
	return f, fl, 0
}

// opened counts a new open of a remote file and says how the kernel is to
// cache it.
//
// The kernel keeps cached pages only when the server's version says the
// file has not changed since this host last opened it; under concurrent
// write sharing (the server's word) nothing is cached.
//
// A write-only open is direct I/O when it is the file's only open on this
// host, and every other open of the file here is direct I/O while it
// lasts: the kernel's page cache would only split each
// write(2) that starts inside a page it does not hold into two requests,
// each a round trip, and pages written through a write-only descriptor
// are never read back from the cache (the write changes the version, so
// the next open drops them).
func (n *node) opened(f *file, flags uint32) uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.opens++
	if f.writeOpen || f.h.Direct {
		n.volatile++
		n.m.touched.open(n.StableAttr().Ino)
		n.dropListing()
	}
	writeOnly := flags&syscall.O_ACCMODE == syscall.O_WRONLY
	if writeOnly && n.opens == 1 && !f.h.Direct {
		f.direct = true
		n.direct++
	}
	if f.h.Direct || n.direct > 0 {
		// Pages cached before may be stale by the time this open ends:
		// the next cached open drops them, whatever its version.
		n.version = 0
		return fuse.FOPEN_DIRECT_IO
	}
	same := n.version == f.h.Version
	n.version = f.h.Version
	if same {
		return fuse.FOPEN_KEEP_CACHE
	}
	return 0
}

// writes says whether an open with flags gives the server a write
// descriptor.
func writes(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
}

// released counts the end of an open of a remote file.
func (n *node) released(f *file) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.opens--
	if f.direct {
		n.direct--
	}
	if f.writeOpen || f.h.Direct {
		n.volatile--
		n.m.touched.close(n.StableAttr().Ino)
		n.dropListing()
	}
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	n.changeStart()
	n.willMake(name)
	h, a, dir, err := n.m.c.Create(ctx, n.m.cred(ctx), n.path(), name, flags, mode)
	n.changeEnd(dir)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	ch := n.newChild(ctx, &a, fs.RouteDomain, out)
	cn := ch.Operations().(*node)
	f := &file{m: n.m, n: cn, h: h, writeOpen: writes(flags), flags: flags}
	return ch, f, cn.opened(f, flags), 0
}

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f.h == nil {
		if off >= int64(len(f.synth)) {
			return fuse.ReadResultData(nil), 0
		}
		return fuse.ReadResultData(f.synth[off:min(int64(len(f.synth)), off+int64(len(dest)))]), 0
	}
	h := f.readHandle()
	b, err := f.m.c.Read(ctx, h, off, dest)
	if errors.Is(err, syscall.EBADF) && f.reused {
		if h, err = f.reopen(ctx, h); err == nil {
			b, err = f.m.c.Read(ctx, h, off, dest)
		}
	}
	if err != nil {
		return nil, errno(err)
	}
	return fuse.ReadResultData(b), 0
}

// readHandle is the handle reads go through: h, or the one reopen made.
func (f *file) readHandle() *fs.Handle {
	if !f.reused {
		return f.h
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.again != nil {
		return f.again
	}
	return f.h
}

// reopen opens f's file again, for a read that failed through handle
// failed: f's handle was kept from an earlier open, and its server has
// forgotten it (it restarted before this host heard: ForgetServer). If
// the file changed meanwhile, the kernel drops what it cached of it: from
// a goroutine of the mount's, never from this handler, on whose read
// the kernel may be waiting.
func (f *file) reopen(ctx context.Context, failed *fs.Handle) (*fs.Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.again != nil && f.again != failed {
		return f.again, nil // another read reopened it
	}
	h, _, err := f.m.c.Open(ctx, f.h.Cred, f.h.Path(), f.flags)
	if err != nil {
		return nil, err
	}
	f.m.log.Info("fs: a kept handle was gone from its server (it restarted); opened the file again", "path", f.h.Path())
	f.again = h
	if h.Version != f.h.Version {
		f.n.mu.Lock()
		f.n.version = 0
		f.n.mu.Unlock()
		f.m.wg.Go(func() { f.n.NotifyContent(0, 0) })
	}
	return h, nil
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if f.ctl != "" {
		n, err := f.m.c.ProcWrite(ctx, f.cred, f.ctl, data)
		if err != nil {
			return 0, errno(err)
		}
		return uint32(n), 0
	}
	if f.h == nil {
		return 0, syscall.EBADF
	}
	f.dirty.Store(true)
	f.flushed.Store(false)
	n, err := f.m.c.Write(ctx, f.h, off, data)
	if err != nil {
		return 0, errno(err)
	}
	return uint32(n), 0
}

// Flush tells the server about a close after writes, so that it can
// invalidate the other hosts' caches before close returns; a close after
// reads only costs nothing.
func (f *file) Flush(ctx context.Context) syscall.Errno {
	if f.h == nil || !f.dirty.Swap(false) {
		return 0
	}
	if err := f.m.c.Flush(ctx, f.h); err != nil {
		return errno(err)
	}
	f.flushed.Store(!f.dirty.Load())
	return 0
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if f.h == nil {
		return 0
	}
	return errno(f.m.c.Fsync(ctx, f.h, flags&1 != 0))
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	if f.h == nil {
		return 0
	}
	f.n.released(f)
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if f.reused {
		f.mu.Lock()
		if f.again != nil {
			f.h = f.again // the kept one is gone from its server
		}
		f.mu.Unlock()
	}
	if f.n.keep(f) {
		return 0
	}
	lazy := !f.writeOpen || (f.flushed.Load() && !f.dirty.Load())
	err := f.m.c.Release(ctx, f.h, lazy)
	if f.writeOpen {
		// Writes through a mapping after the last close went with
		// the release: attributes asked for before it may predate them.
		f.n.forgetAttr()
	}
	return errno(err)
}
