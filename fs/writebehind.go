package fs

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Write-behind (client side). A write(2) of less than a chunk through a
// handle is kept in the handle's buffer and acknowledged at once; the
// buffer goes to the server as one fs.writev (its extents in order) when
//
//   - it holds wbMax bytes or wbExtents extents;
//   - the file is closed (the writev carries the flush: one call, not two),
//     synced, truncated, read, asked for its attributes or given new ones
//     (chmod, utimes: the writev carries the change) on this host, or
//     renamed or linked;
//   - another handle of the file on this host writes (so at most one
//     handle of a file holds writes back, and writes through two
//     descriptors reach the server in the order they were made);
//   - Client.WriteBehind (default wbDelay) has passed since the first
//     write it holds;
//   - the server recalls it (Invalidate.Recall: another host opened the
//     file while this one writes it, so it is under concurrent write
//     sharing), after which the handle writes through until it is closed.
//
// Writes through an O_APPEND handle, a handle opened under concurrent
// write sharing (Handle.Direct) or of a chunk or more go straight to the
// server, after what the buffer holds; a small append also tells the
// other hosts, as a close would (writeSynced).
//
// So close-to-open holds everywhere (a close returns after the server has
// the data), concurrent sharing sees every write, and a write that fails on
// the server (a full disk) is reported by the next write, fsync or the
// close, as NFS does, never dropped. What another host sees by stat(2)
// without opening the file may lag by up to wbDelay.
//
// Locks: Handle.wb.mu, then Client.wbMu (never the other way round); a
// buffer's mutex is held across the call that sends it, so writes to that
// handle wait for it.
const (
	wbMax     = MaxIO
	wbExtents = 256
	wbDelay   = 100 * time.Millisecond
	// wbRecallMemory is how long a recall is remembered, for a handle
	// whose open was in flight when the recall came.
	wbRecallMemory = 5 * time.Second
)

// wbuf is a handle's write-behind buffer.
type wbuf struct {
	mu      sync.Mutex
	ext     []Extent // guarded by mu; pending writes, in order
	n       int      // guarded by mu; bytes in ext
	err     error    // guarded by mu; a failed write-behind not yet reported
	through bool     // guarded by mu; write through (recalled)
	closed  bool     // guarded by mu; released
	// synced: the server has told the other clients of every write so
	// far (an fs.writev with WriteVSync), so a close now has nothing to
	// send and needs no call, unless exec.
	synced bool // guarded by mu
	// exec: the file may be executable (or its mode is unknown): its
	// close always reaches the server, which then drops its write
	// descriptor, so that the file can be run at once (ETXTBSY).
	exec  bool        // guarded by mu
	timer *time.Timer // guarded by mu; flushes after wbDelay
	// own: the whole file as written through this handle, while that
	// is known to be all of it (owncopy.go); nil: not known.
	own []byte // guarded by mu
	// stat: the file's attributes at the open, while the copy is good
	// and nothing but writes through this handle changed them since
	// (owncopy.go); nil: only the server can say. wrote: when the last
	// write through the handle was made (unix ns, this host's clock).
	stat  *Attr // guarded by mu
	wrote int64 // guarded by mu
}

// add appends a write, merged with the last extent when it continues it.
func (b *wbuf) add(off int64, data []byte) {
	b.n += len(data)
	if k := len(b.ext) - 1; k >= 0 && b.ext[k].Offset+int64(len(b.ext[k].Data)) == off {
		b.ext[k].Data = append(b.ext[k].Data, data...)
		return
	}
	b.ext = append(b.ext, Extent{Offset: off, Data: append(make([]byte, 0, max(len(data), 4096)), data...)})
}

// take empties the buffer and stops its timer; it returns what it held.
func (b *wbuf) take() []Extent {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	ext := b.ext
	b.ext, b.n = nil, 0
	return ext
}

// takeErr returns and clears the error a write-behind left.
func (b *wbuf) takeErr() error {
	err := b.err
	b.err = nil
	return err
}

// writable registers h, a handle that may write, under its path. It
// returns the other handles registered there.
func (c *Client) writable(h *Handle, sent time.Time) (others []*Handle) {
	c.wbMu.Lock()
	defer c.wbMu.Unlock()
	if c.wopen == nil {
		c.wopen = map[string]map[*Handle]bool{}
	}
	if c.wopen[h.path] == nil {
		c.wopen[h.path] = map[*Handle]bool{}
	}
	others = c.othersLocked(h)
	c.wopen[h.path][h] = true
	if t, ok := c.recalled[h.path]; ok && !t.Before(sent) {
		h.wb.through = true // recalled while the open was on its way
	}
	return others
}

// closed unregisters h.
func (c *Client) closed(h *Handle) {
	c.wbMu.Lock()
	defer c.wbMu.Unlock()
	delete(c.wopen[h.path], h)
	if len(c.wopen[h.path]) == 0 {
		delete(c.wopen, h.path)
	}
}

// writers returns the handles open for writing under p.
func (c *Client) writers(p string) []*Handle {
	c.wbMu.Lock()
	defer c.wbMu.Unlock()
	hs := make([]*Handle, 0, len(c.wopen[p]))
	for h := range c.wopen[p] {
		hs = append(hs, h)
	}
	return hs
}

// Write writes data at off; what it reports written is a prefix of data.
// A small write is kept in h's write-behind buffer; others go through,
// after what the buffer holds.
func (c *Client) Write(ctx context.Context, h *Handle, off int64, data []byte) (int, error) {
	// Writes through another descriptor of the file on this host that
	// returned before this one began go to the server first: at most
	// one handle of a file holds writes back, so that they reach the
	// server in the order they were made.
	c.flushOthers(ctx, h)
	b := &h.wb
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.takeErr(); err != nil {
		b.dropOwn()
		return 0, err
	}
	b.synced = false
	delay := c.WriteBehind
	if delay == 0 {
		delay = wbDelay
	}
	if delay > 0 && !h.Append && !h.Direct && !b.through && !b.closed && len(data) < chunk {
		b.add(off, data)
		b.ownWrite(off, data)
		b.wrote = time.Now().UnixNano()
		if b.n >= wbMax || len(b.ext) >= wbExtents {
			if err := c.sendLocked(ctx, h, false); err != nil {
				return 0, err
			}
		} else if b.timer == nil {
			b.timer = time.AfterFunc(delay, func() { c.flushLater(h) })
		}
		return len(data), nil
	}
	if err := c.sendLocked(ctx, h, false); err != nil {
		return 0, err
	}
	var n int
	var err error
	if h.Append && !h.Direct && !b.through && !b.closed && len(data) <= SessionIO {
		n, err = c.writeSynced(ctx, h, off, data)
	} else {
		n, err = c.writeThrough(ctx, h, off, data)
	}
	if err != nil {
		b.dropOwn()
	} else {
		b.ownWrite(off, data[:n])
		b.wrote = time.Now().UnixNano()
	}
	return n, err
}

// writeSynced sends a small O_APPEND write (never held back: it lands
// at the end of the file as the server has it then) in an fs.writev that
// also tells the other hosts, as a close would: a shell's `echo ... >>
// log` then costs its open and this one call, its close none. Not under
// concurrent sharing, where the server tells the others of each write
// anyway and would tell them twice. b.mu is held.
func (c *Client) writeSynced(ctx context.Context, h *Handle, off int64, data []byte) (int, error) {
	req := &Req{Cred: h.Cred, Handle: h.ID, Extents: []Extent{{Offset: off, Data: data}}, Flags: WriteVSync}
	resp, err := c.do(ctx, h.Domain, MethodWriteV, req)
	if c.olderServer(h.Domain, err) {
		return c.writeChunk(ctx, h, off, data)
	}
	if err != nil {
		return 0, err
	}
	h.wb.synced = resp.Flags&WriteVSync != 0 // an older server does not say so
	return len(data), nil
}

// flushLater is the timer's flush; a failure waits for the next call.
func (c *Client) flushLater(h *Handle) {
	b := &h.wb
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer = nil
	if b.closed || len(b.ext) == 0 {
		return
	}
	if err := c.sendLocked(context.Background(), h, false); err != nil {
		b.err = err
	}
}

// sendLocked sends what h's buffer holds (in fs.writev calls of up to a
// chunk each, in order), the last call also flushing h when flush is set;
// with nothing held and flush set it is a plain fs.flush. b.mu is held.
func (c *Client) sendLocked(ctx context.Context, h *Handle, flush bool) error {
	b := &h.wb
	ext := b.take()
	if len(ext) == 0 {
		if flush {
			_, err := c.do(ctx, h.Domain, MethodFlush, &Req{Cred: h.Cred, Handle: h.ID})
			return err
		}
		return nil
	}
	for len(ext) > 0 {
		k, size := 0, 0
		for k < len(ext) && (k == 0 || size+len(ext[k].Data) <= chunk) {
			size += len(ext[k].Data)
			k++
		}
		batch := ext[:k]
		ext = ext[k:]
		req := &Req{Cred: h.Cred, Handle: h.ID, Extents: batch}
		if flush && len(ext) == 0 {
			req.Flags = WriteVFlush
		}
		_, err := c.do(ctx, h.Domain, MethodWriteV, req)
		if c.olderServer(h.Domain, err) {
			err = c.writeEach(ctx, h, batch, req.Flags&WriteVFlush != 0)
		}
		if err != nil {
			b.dropOwn()
			return err
		}
	}
	return nil
}

// olderServer reports whether err, the answer to an fs.writev, says that
// d's server has no such method; the caller then sends its writes a call
// each. It says so in the log once per server.
func (c *Client) olderServer(d Domain, err error) bool {
	if err == nil || !strings.Contains(err.Error(), unknownMethod) {
		return false
	}
	if _, seen := c.noWriteV.LoadOrStore(d.Host, true); !seen {
		c.Log.Warn("fs: server has no fs.writev (an older sprite?): writes held back go in a call each; upgrade sprite there", "server", d.Host)
	}
	return true
}

// writeEach sends extents as single writes, for a server that predates
// fs.writev.
func (c *Client) writeEach(ctx context.Context, h *Handle, ext []Extent, flush bool) error {
	for _, e := range ext {
		if _, err := c.writeChunk(ctx, h, e.Offset, e.Data); err != nil {
			return err
		}
	}
	if flush {
		_, err := c.do(ctx, h.Domain, MethodFlush, &Req{Cred: h.Cred, Handle: h.ID})
		return err
	}
	return nil
}

// statAfterWrites is fstat(2) through a handle whose buffer holds writes
// (the kernel asks for a file's attributes after writes to it): one
// fs.writev carries them and answers with the attributes. ok is false when
// the buffer holds nothing (or too much for one call).
func (c *Client) statAfterWrites(ctx context.Context, h *Handle) (a Attr, ok bool, err error) {
	return attrOf(c.carry(ctx, h, &Req{Flags: WriteVStat | WriteVSync}))
}

// setattrAfterWrites is a chmod, chown or utimes of p while a handle of
// this host holds writes to it (tar sets a file's times through its
// descriptor before it closes it): one fs.writev carries the writes and
// the change. ok is false when no handle holds writes for p, or the one
// that does was opened by another user.
func (c *Client) setattrAfterWrites(ctx context.Context, cr Cred, p string, set SetAttr) (a Attr, ok bool, err error) {
	r := c.Table.Route(p)
	if r.Kind != RouteDomain {
		return Attr{}, false, nil
	}
	var h *Handle
	for _, o := range c.writers(p) {
		if o.Domain == r.Domain && sameCred(o.Cred, cr) {
			h = o
			break
		}
	}
	if h == nil {
		return Attr{}, false, nil
	}
	return attrOf(c.carry(ctx, h, &Req{Flags: WriteVSetattr | WriteVSync, Path: r.Rel, Set: &set}))
}

// attrOf is the attributes a carried fs.writev answered with.
func attrOf(resp *Resp, ok bool, err error) (Attr, bool, error) {
	if !ok || err != nil || resp.Attr == nil {
		return Attr{}, ok && err != nil, err
	}
	return *resp.Attr, true, nil
}

// carry sends h's buffer in one fs.writev that also does what req asks,
// after the buffers of this host's other handles of the file. ok is false
// when it was not sent that way (the buffer is empty or more than a chunk,
// or the server predates fs.writev): the caller then does req's work on
// its own. With an error ok is true: the error is the answer.
func (c *Client) carry(ctx context.Context, h *Handle, req *Req) (resp *Resp, ok bool, err error) {
	c.flushOthers(ctx, h)
	b := &h.wb
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ext) == 0 || b.n > chunk {
		return nil, false, nil
	}
	resp, err = c.sendOne(ctx, h, req)
	if err != nil {
		return nil, true, err
	}
	b.synced = resp != nil && req.Flags&WriteVSync != 0 && resp.Flags&WriteVSync != 0
	return resp, resp != nil, nil
}

// unsync is a change to p's attributes on this host (the mode as given
// when set has one): the handles writing p owe the server a call at their
// close again.
func (c *Client) unsync(p string, set SetAttr) {
	for _, h := range c.writers(p) {
		b := &h.wb
		b.mu.Lock()
		b.synced = false
		b.stat = nil
		if set.Valid&SetSize != 0 {
			b.dropOwn()
		}
		if set.Valid&SetMode != 0 {
			b.exec = set.Mode&0o111 != 0
		}
		b.mu.Unlock()
	}
}

func sameCred(a, b Cred) bool {
	return a.UID == b.UID && a.GID == b.GID && slices.Equal(a.Groups, b.Groups)
}

// flushOthers sends the buffers of the other handles open for writing
// under h's path.
func (c *Client) flushOthers(ctx context.Context, h *Handle) {
	c.wbMu.Lock()
	others := c.othersLocked(h)
	c.wbMu.Unlock()
	for _, o := range others {
		c.flushHandle(ctx, o)
	}
}

// othersLocked returns the handles open for writing under h's path but
// h; none, without allocating, when h writes it alone (every write(2)
// asks). c.wbMu is held.
func (c *Client) othersLocked(h *Handle) (others []*Handle) {
	for o := range c.wopen[h.path] {
		if o != h {
			others = append(others, o)
		}
	}
	return others
}

// sendOne sends h's whole buffer (at most a chunk) in one fs.writev that
// also does what req asks (its Flags, Offset and Size). A nil answer with
// no error means the server predates fs.writev: the writes went as
// fs.write calls and the caller is to do the rest on its own. b.mu is
// held; a failure is kept for the close too.
func (c *Client) sendOne(ctx context.Context, h *Handle, req *Req) (*Resp, error) {
	b := &h.wb
	req.Cred, req.Handle, req.Extents = h.Cred, h.ID, b.take()
	resp, err := c.do(ctx, h.Domain, MethodWriteV, req)
	if c.olderServer(h.Domain, err) {
		resp, err = nil, c.writeEach(ctx, h, req.Extents, false)
	}
	if err != nil {
		b.err = err
	}
	return resp, err
}

// readAfterWrites is a small read through a handle whose buffer holds
// writes: one fs.writev carries them and the read (a program that reads a
// block, changes part of it and writes it back, as the linker does, costs
// one call per block rather than two). ok is false when the read is not
// such a read.
func (c *Client) readAfterWrites(ctx context.Context, h *Handle, off int64, size int) (data []byte, ok bool, err error) {
	if size > SessionIO {
		return nil, false, nil
	}
	resp, ok, err := c.carry(ctx, h, &Req{Offset: off, Size: int64(size)})
	if !ok || err != nil {
		return nil, ok, err
	}
	return resp.Data, true, nil
}

// flushPath sends the write-behind buffers of every handle open under p,
// before an operation that must see their data. A failure stays with its
// handle, for its next write, fsync or close.
func (c *Client) flushPath(ctx context.Context, p string) {
	for _, h := range c.writers(p) {
		c.flushHandle(ctx, h)
	}
}

// flushHandle sends what h's buffer holds; a failure stays with h.
func (c *Client) flushHandle(ctx context.Context, h *Handle) {
	b := &h.wb
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ext) > 0 {
		if err := c.sendLocked(ctx, h, false); err != nil && b.err == nil {
			b.err = err
		}
	}
}

// Flush is close(2) of one descriptor of h: the buffer and the flush go
// in one call. A write-behind failure not yet reported is reported now.
// After an fs.writev that synced (tar's futimens before its close, an
// fstat) and no write since, the server has every byte and the other
// clients have dropped their copies: the close costs no call, and the
// server's write descriptor goes with the (lazy) release.
func (c *Client) Flush(ctx context.Context, h *Handle) error {
	b := &h.wb
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil && len(b.ext) == 0 && b.synced && !b.exec {
		return nil
	}
	err := c.sendLocked(ctx, h, true)
	if e := b.takeErr(); e != nil {
		return e
	}
	return err
}

// Fsync makes h's data durable on the server.
func (c *Client) Fsync(ctx context.Context, h *Handle, dataOnly bool) error {
	b := &h.wb
	b.mu.Lock()
	err := c.sendLocked(ctx, h, false)
	if e := b.takeErr(); e != nil {
		err = e
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	req := &Req{Cred: h.Cred, Handle: h.ID}
	if dataOnly {
		req.Flags = 1
	}
	_, err = c.do(ctx, h.Domain, MethodFsync, req)
	return err
}

// Release closes h, after sending what its buffer still holds (writes
// after the last close, through a mapping). lazy says that the server
// holds no write descriptor for h (it was opened read-only, or its writes
// were flushed): then the release may reach the server a little later,
// with others.
func (c *Client) Release(ctx context.Context, h *Handle, lazy bool) error {
	b := &h.wb
	b.mu.Lock()
	err := c.sendLocked(ctx, h, false)
	if err != nil {
		c.Log.Warn("fs: writes after the last close failed", "path", h.path, "err", err)
	}
	b.closed = true
	b.mu.Unlock()
	c.closed(h)
	_, err = c.do(ctx, h.Domain, MethodRelease, &Req{Cred: h.Cred, Handle: h.ID, Lazy: lazy})
	return err
}

// Recall applies a server's invalidation to the write-behind buffers: the
// handles open for the items send what they hold, and with recall
// (concurrent write sharing) write through until they are closed. The
// daemon calls it before it answers the server.
func (c *Client) Recall(ctx context.Context, items []Item, recall bool) {
	for _, it := range items {
		p := it.Prefix
		if it.Path != "" {
			p += "/" + it.Path
		}
		if recall {
			c.wbMu.Lock()
			if c.recalled == nil {
				c.recalled = map[string]time.Time{}
			}
			now := time.Now()
			for q, t := range c.recalled {
				if now.Sub(t) > wbRecallMemory {
					delete(c.recalled, q)
				}
			}
			c.recalled[p] = now
			c.wbMu.Unlock()
		}
		for _, h := range c.writers(p) {
			b := &h.wb
			b.mu.Lock()
			b.dropOwn() // the file changed, or another host writes it
			if recall {
				b.through = true
			}
			if len(b.ext) > 0 {
				if err := c.sendLocked(ctx, h, false); err != nil && b.err == nil {
					b.err = err
				}
			}
			b.mu.Unlock()
		}
	}
}
