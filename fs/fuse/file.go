package fusefs

import (
	"context"
	"strings"
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
	m     *Mount
	h     *fs.Handle
	synth []byte
	ctl   string      // the path below /proc of a ctl file open for writing
	cred  fs.Cred     // who opened the ctl file
	dirty atomic.Bool // written since the last flush
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
	h, _, err := n.m.c.Open(ctx, n.m.cred(ctx), p, flags)
	if err != nil {
		return nil, 0, errno(err)
	}
	return &file{m: n.m, h: h}, n.cacheFlags(h), 0
}

// cacheFlags keeps the kernel's cached pages only when the server's
// version says the file has not changed since this host last opened it.
func (n *node) cacheFlags(h *fs.Handle) uint32 {
	if h.Direct {
		return fuse.FOPEN_DIRECT_IO
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	same := n.version == h.Version
	n.version = h.Version
	if same {
		return fuse.FOPEN_KEEP_CACHE
	}
	return 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	h, a, err := n.m.c.Create(ctx, n.m.cred(ctx), n.path(), name, flags, mode)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	ch := n.newChild(ctx, &a, fs.RouteDomain, out)
	return ch, &file{m: n.m, h: h}, ch.Operations().(*node).cacheFlags(h), 0
}

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f.h == nil {
		if off >= int64(len(f.synth)) {
			return fuse.ReadResultData(nil), 0
		}
		return fuse.ReadResultData(f.synth[off:min(int64(len(f.synth)), off+int64(len(dest)))]), 0
	}
	b, err := f.m.c.Read(ctx, f.h, off, len(dest))
	if err != nil {
		return nil, errno(err)
	}
	return fuse.ReadResultData(b), 0
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
	return errno(f.m.c.Flush(ctx, f.h))
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
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	return errno(f.m.c.Release(ctx, f.h))
}
