package fs

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// handle is a file a client has open on this server.
type handle struct {
	io     sync.RWMutex // taken shared around each use of fd, alone to swap it
	fd     int          // guarded by io
	ro     bool         // guarded by io; the write descriptor was traded for a read-only one
	flags  int          // how to open the file again for writing
	client string
	key    fileKey
	item   Item
	write  bool
	direct bool // opened during concurrent write sharing: not cached
	dirty  bool // written since the last flush; guarded by Server.mu
}

type fileKey struct{ dev, ino uint64 }

// fileState is the server's record of a file that some client has open:
// Sprite's per-file open table. gen counts writes, so a version check sees
// every change made through this server, even within one timestamp tick.
type fileState struct {
	gen   uint64
	opens map[string]*opens // by client host
}

type opens struct{ all, writers, cached int }

// sharedLocked reports concurrent write sharing: the file is open on two or
// more hosts and at least one of them writes.
func (f *fileState) sharedLocked() bool {
	if len(f.opens) < 2 {
		return false
	}
	for _, o := range f.opens {
		if o.writers > 0 {
			return true
		}
	}
	return false
}

// openFlags are the open(2) flags a client may pass; O_CREAT only through
// fs.create, and nothing that changes how the server resolves the path.
const openFlags = unix.O_ACCMODE | unix.O_APPEND | unix.O_TRUNC | unix.O_EXCL | unix.O_NONBLOCK |
	unix.O_SYNC | unix.O_DSYNC | unix.O_DIRECTORY | unix.O_NOATIME

func opOpen(c *opCtx) (*Resp, error) {
	flags := uint64(c.req.Flags & openFlags &^ unix.O_EXCL)
	return c.openFile(c.req.Path, flags, 0)
}

func opCreate(c *opCtx) (*Resp, error) {
	flags := uint64(c.req.Flags&openFlags) | unix.O_CREAT
	return c.openFile(joinPath(c.req.Path, c.req.Name), flags, c.req.Mode&0o7777)
}

// dirAfter returns the attributes of directory rel after a change in it,
// or nil; run as the user.
func (c *opCtx) dirAfter(rel string) *Attr {
	a, _, err := c.e.lstat(rel)
	if err != nil {
		return nil
	}
	return a
}

func (c *opCtx) openFile(rel string, flags uint64, mode uint32) (*Resp, error) {
	dir, _ := splitPath(rel)
	watched := c.s.watch.add(c.e, dir)
	if flags&unix.O_NOATIME != 0 {
		flags &^= unix.O_NOATIME // only the owner may; not worth an EPERM
	}
	var fd int
	var dirAttr *Attr
	err := c.as(func() (err error) {
		if flags&unix.O_CREAT == 0 {
			fd, err = c.e.open(rel, flags, mode)
			return err
		}
		defer func() {
			if err == nil {
				dirAttr = c.dirAfter(dir)
			}
		}()
		// Create exclusively first, to know whether this call made the
		// file (and owes it its exact mode) or found it.
		fd, err = c.e.open(rel, flags|unix.O_EXCL, mode)
		if err == unix.EEXIST && flags&unix.O_EXCL == 0 {
			fd, err = c.e.open(rel, flags&^unix.O_CREAT, 0)
			return err
		}
		if err == nil {
			if err = c.s.w.created(fd, mode); err != nil {
				unix.Close(fd)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	write := flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0
	it := Item{Prefix: c.e.prefix, Path: rel}
	r, recall := c.s.register(c.client, c.req.Boot, fd, flags, &st, c.e, it, write)
	c.s.note.opened(c.client, it)
	r.Dir = dirAttr
	if watched && c.s.mayKeep() {
		r.Flags |= OpenWatched
	}
	// Other hosts that write the file may hold writes back (write-behind):
	// they send them, and write through from now on, before this open
	// returns, so the opener reads the last write.
	c.s.note.recall(c.ctx, recall, it, syncWait)
	return r, nil
}

// register records an open and decides whether the client may cache it.
// Under concurrent write sharing it also returns the other clients that
// have the file open for writing.
func (s *Server) register(client string, boot int64, fd int, flags uint64, st *unix.Stat_t, e *export, it Item, write bool) (*Resp, []string) {
	key := fileKey{st.Dev, st.Ino}
	s.mu.Lock()
	s.forgetBootLocked(client, boot)
	f := s.files[key]
	if f == nil {
		f = &fileState{opens: map[string]*opens{}}
		s.files[key] = f
	}
	o := f.opens[client]
	if o == nil {
		o = &opens{}
		f.opens[client] = o
	}
	o.all++
	if write {
		o.writers++
		f.gen++
	}
	direct := f.sharedLocked()
	var recall []string
	if !direct {
		o.cached++
	} else {
		for cl, other := range f.opens {
			if cl != client && other.writers > 0 {
				recall = append(recall, cl)
			}
		}
	}
	s.next++
	id := s.next
	s.handles[id] = &handle{fd: fd, client: client, key: key, item: it, write: write, direct: direct,
		flags: int(flags &^ (unix.O_TRUNC | unix.O_CREAT | unix.O_EXCL))}
	gen := f.gen
	s.mu.Unlock()
	r := &Resp{Handle: id, Attr: e.attr(st), Version: version(st, gen)}
	if direct {
		r.Flags |= OpenDirect
	}
	return r, recall
}

// forgetBootLocked drops the handles of an earlier incarnation of client's
// daemon: a restarted client holds none of them.
func (s *Server) forgetBootLocked(client string, boot int64) {
	if boot == 0 || s.boots[client] == boot {
		return
	}
	old := s.boots[client]
	s.boots[client] = boot
	if old == 0 {
		return
	}
	for id, h := range s.handles {
		if h.client == client {
			s.dropLocked(id, h)
		}
	}
}

// version identifies a file's contents: a change through any path (this
// server, the local disk) moves the timestamps or the size or gen.
func version(st *unix.Stat_t, gen uint64) uint64 {
	h := fnv.New64a()
	for _, v := range []uint64{uint64(unix.TimespecToNsec(st.Mtim)), uint64(unix.TimespecToNsec(st.Ctim)), uint64(st.Size), st.Ino, gen} {
		var b [8]byte
		for i := range 8 {
			b[i] = byte(v >> (8 * i))
		}
		h.Write(b[:])
	}
	return h.Sum64()
}

// handle returns client's open handle id.
func (s *Server) handle(client string, id uint64) (*handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.handles[id]
	if h == nil || h.client != client {
		return nil, unix.EBADF
	}
	return h, nil
}

func opRead(c *opCtx) (*Resp, error) {
	h, err := c.s.handle(c.client, c.req.Handle)
	if err != nil {
		return nil, err
	}
	size := min(max(c.req.Size, 0), maxReadBuf)
	buf := GetBuf(int(size))
	n := 0
	err = h.use(false, func(fd int) error {
		for n < len(buf) {
			m, err := unix.Pread(fd, buf[n:], c.req.Offset+int64(n))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if m == 0 {
				break
			}
			n += m
		}
		return nil
	})
	if err != nil {
		PutBuf(buf)
		return nil, err
	}
	return &Resp{Data: buf[:n]}, nil
}

// ioBufs recycles the buffers of large reads' and writes' data: a cold
// sequential read or write moves a MiB at a time, and a fresh buffer each
// time costs the allocation, its zeroing and the garbage collector's work.
var ioBufs = sync.Pool{New: func() any { return new([maxReadBuf]byte) }}

// GetBuf returns a buffer of size bytes (at most 2*MaxIO) for a read's or
// a write's data: from the pool when larger than SessionIO.
func GetBuf(size int) []byte {
	if size <= SessionIO {
		return make([]byte, size)
	}
	return ioBufs.Get().(*[maxReadBuf]byte)[:size]
}

// PutBuf gives back a buffer from GetBuf (the Data of a fs.read Resp, once
// it has been sent); it must not be used after. A buffer not from the pool
// is left to the garbage collector.
func PutBuf(b []byte) {
	if cap(b) == maxReadBuf {
		ioBufs.Put((*[maxReadBuf]byte)(b[:maxReadBuf]))
	}
}

func opWrite(c *opCtx) (*Resp, error) {
	h, err := c.s.handle(c.client, c.req.Handle)
	if err != nil {
		return nil, err
	}
	if len(c.req.Data) > MaxIO {
		return nil, unix.EFBIG
	}
	c.s.note.mark(c.client, h.item)
	n := 0
	err = h.use(true, func(fd int) (err error) {
		n, err = pwriteAll(fd, c.req.Data, c.req.Offset)
		return err
	})
	if err != nil && n == 0 {
		return nil, err
	}
	c.s.wroteHandle(c.ctx, h)
	return &Resp{N: int64(n)}, nil
}

// opWriteV writes a client's write-behind extents in order, then flushes
// the handle when asked (WriteVFlush), or changes Path's attributes
// (WriteVSetattr), or answers with its attributes (WriteVStat), or reads
// Size bytes at Offset. N is the bytes written before the
// first failure; a failure is the answer's errno, so the client reports it
// (at the latest at close) rather than losing it.
func opWriteV(c *opCtx) (*Resp, error) {
	h, err := c.s.handle(c.client, c.req.Handle)
	if err != nil {
		return nil, err
	}
	if extentBytes(c.req.Extents) > MaxIO || len(c.req.Extents) > MaxBatch {
		return nil, unix.EFBIG
	}
	for _, e := range c.req.Extents {
		if e.Offset < 0 {
			return nil, unix.EINVAL
		}
	}
	if c.req.Flags&WriteVSetattr != 0 && c.req.Set == nil {
		return nil, unix.EINVAL // checked before any write
	}
	c.s.note.mark(c.client, h.item)
	total := 0
	err = h.use(true, func(fd int) error {
		for _, e := range c.req.Extents {
			n, err := pwriteAll(fd, e.Data, e.Offset)
			total += n
			if err != nil {
				return err
			}
		}
		return nil
	})
	if total > 0 {
		c.s.wroteHandle(c.ctx, h)
	}
	if err != nil {
		return nil, err
	}
	if c.req.Flags&WriteVFlush != 0 {
		c.s.flushHandle(c.ctx, c.client, h)
	}
	var r *Resp
	switch {
	case c.req.Flags&WriteVSetattr != 0:
		// As fs.setattr of Path, with the caller's credentials.
		c.req.Handle = 0
		r, err = opSetattr(c)
	case c.req.Flags&WriteVStat != 0:
		var a *Attr
		err = h.use(false, func(fd int) (err error) {
			a, err = fstatAttr(c.e, fd)
			return err
		})
		r = &Resp{Attr: a}
	}
	if r != nil || err != nil {
		if err != nil {
			return nil, err
		}
		if c.req.Flags&WriteVSync != 0 && c.req.Flags&WriteVFlush == 0 {
			c.s.syncHandle(c.ctx, c.client, h)
			r.Flags |= WriteVSync
		}
		r.N = int64(total)
		return r, nil
	}
	if c.req.Size > 0 {
		// A read after the writes (a read-modify-write on the client):
		// Offset and Size are the read's.
		r, err := opRead(c)
		if err != nil {
			return nil, err
		}
		r.N = int64(total)
		return r, nil
	}
	r = &Resp{N: int64(total)}
	if c.req.Flags&WriteVSync != 0 && c.req.Flags&WriteVFlush == 0 {
		c.s.syncHandle(c.ctx, c.client, h) // a write sent at once: its close may then make no call
		r.Flags |= WriteVSync
	}
	return r, nil
}

// pwriteAll writes all of b at off, or fails.
func pwriteAll(fd int, b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pwrite(fd, b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// wroteHandle counts a write. During concurrent write sharing the other
// clients that still cache the file (their opens predate the sharing) drop
// their copy before the write is acknowledged, so every read that starts
// after this write returns sees it.
func (s *Server) wroteHandle(ctx context.Context, h *handle) {
	s.mu.Lock()
	h.dirty = true
	f := s.files[h.key]
	var others []string
	if f != nil {
		f.gen++
		if f.sharedLocked() {
			for cl, o := range f.opens {
				if cl != h.client && o.cached > 0 {
					others = append(others, cl)
				}
			}
		}
	}
	s.mu.Unlock()
	if len(others) > 0 {
		s.note.now(ctx, others, h.item, syncWait)
	}
}

// syncWait bounds how long an acknowledgement waits for other clients to
// drop their caches.
const syncWait = time.Second

// opFlush is close(2) on the client: once a writer's close returns, every
// other client that may hold the file's pages or attributes has dropped
// them (sequential write sharing: the next open anywhere sees this data).
func opFlush(c *opCtx) (*Resp, error) {
	h, err := c.s.handle(c.client, c.req.Handle)
	if err != nil {
		return nil, err
	}
	c.s.flushHandle(c.ctx, c.client, h)
	return &Resp{}, nil
}

// flushHandle is the server's side of close(2) after writes.
func (s *Server) flushHandle(ctx context.Context, client string, h *handle) {
	s.syncHandle(ctx, client, h)
	if h.write {
		h.dropWrite()
	}
}

// syncHandle makes every other client that may cache h's file drop what
// it caches of it when h wrote since the last time: the next open or stat
// anywhere sees the writes.
func (s *Server) syncHandle(ctx context.Context, client string, h *handle) {
	s.mu.Lock()
	dirty := h.dirty
	h.dirty = false
	s.mu.Unlock()
	if dirty {
		s.note.allNow(ctx, client, h.item, syncWait)
	}
}

func opFsync(c *opCtx) (*Resp, error) {
	h, err := c.s.handle(c.client, c.req.Handle)
	if err != nil {
		return nil, err
	}
	return &Resp{}, h.use(false, func(fd int) error {
		if c.req.Flags&1 != 0 {
			return unix.Fdatasync(fd)
		}
		return unix.Fsync(fd)
	})
}

// opRelease closes the request's handle and its further Handles (a
// client's batch); EBADF if any was not the client's.
func opRelease(c *opCtx) (*Resp, error) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for i := -1; i < len(c.req.Handles); i++ {
		id := c.req.Handle
		if i >= 0 {
			id = c.req.Handles[i]
		}
		h := s.handles[id]
		if h == nil || h.client != c.client {
			err = unix.EBADF
			continue
		}
		s.dropLocked(id, h)
	}
	if err != nil {
		return nil, err
	}
	return &Resp{}, nil
}

// dropLocked closes a handle and takes it out of its file's open table.
func (s *Server) dropLocked(id uint64, h *handle) {
	delete(s.handles, id)
	s.note.released(h.client, h.item)
	h.io.Lock()
	unix.Close(h.fd)
	h.io.Unlock()
	f := s.files[h.key]
	if f == nil {
		return
	}
	if o := f.opens[h.client]; o != nil {
		o.all--
		if h.write {
			o.writers--
		}
		if !h.direct {
			o.cached--
		}
		if o.all <= 0 {
			delete(f.opens, h.client)
		}
	}
	if len(f.opens) == 0 {
		delete(s.files, h.key)
	}
}

// mayKeep says whether a client may keep another handle after its close
// (OpenWatched): while this server holds at most keepBelow, this one
// included.
func (s *Server) mayKeep() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.handles) <= s.keepBelow
}
