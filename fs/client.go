package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"syscall"
	"time"
)

// Caller runs one fs.* call on host; the daemon wires it to QUIC (or, for
// this host's own domains, straight to its Server).
type Caller func(ctx context.Context, host, method string, req *Req, resp *Resp) error

// Client is the namespace as one host sees it: paths of the global tree
// ("/home/h1/alice/f") in, attributes, data and errno values out. It knows
// nothing of FUSE; package fs/fuse adapts it to the kernel.
//
// Errors are syscall.Errno values, possibly wrapped: what the server's
// kernel said, EIO when the serving host is down or does not answer within
// Timeout, EROFS/EACCES for the synthetic parts of the tree.
//
// Set the fields before the first call; a Client must not be copied.
type Client struct {
	Table   *Table
	Call    Caller
	Timeout time.Duration // one call's limit (default 10s), also of a call of Procs
	Boot    int64         // this host's daemon boot id, sent with opens
	Hosts   HostsFunc     // the synthetic /hosts tree
	Procs   ProcTable     // the synthetic /proc tree; nil: /proc is empty
	Log     *slog.Logger
	// WriteBehind is how long a small write may wait in its handle's
	// buffer (writebehind.go); 0 means 100ms, a negative value turns
	// write-behind off.
	WriteBehind time.Duration

	procs procCache // the last listing of Procs

	wbMu     sync.Mutex                  // after any Handle.wb.mu (writebehind.go)
	wopen    map[string]map[*Handle]bool // guarded by wbMu; handles open for writing, by path
	recalled map[string]time.Time        // guarded by wbMu; recent recalls, by path
	noWriteV sync.Map                    // server hosts found to predate fs.writev (warned once)
}

// Handle is an open remote file.
type Handle struct {
	Domain  Domain
	ID      uint64
	Cred    Cred
	Direct  bool   // not cached by the kernel (concurrent write sharing)
	Append  bool   // O_APPEND: writes land at the end, so never split
	Version uint64 // the file's version at open
	// Watched: the server watches the file's directory, so it tells this
	// host of every change of the file while the handle is open
	// (OpenWatched).
	Watched bool

	path string // the global path it was opened by
	wb   wbuf   // its write-behind buffer
}

// Path is the global path h was opened by.
func (h *Handle) Path() string { return h.path }

// ErrNotRemote is returned for operations on parts of the tree no host
// serves (the root, /home, /hosts, /proc): they are read-only.
var ErrNotRemote = syscall.EROFS

// do runs method against domain d.
func (c *Client) do(ctx context.Context, d Domain, method string, req *Req) (*Resp, error) {
	var resp Resp
	if err := c.doInto(ctx, d, method, req, &resp); err != nil {
		if resp.Errno != 0 {
			return &resp, err
		}
		return nil, err
	}
	return &resp, nil
}

// doInto is do answering in resp. A read's resp may come with room for its
// data (Data of length 0 and the read's size as capacity): data that
// comes as raw frames is read straight into it (fs/fsd, readData).
func (c *Client) doInto(ctx context.Context, d Domain, method string, req *Req, resp *Resp) error {
	if !d.Up {
		return fmt.Errorf("%s on %s: host %s is down: %w", method, d.Prefix, d.Host, syscall.EIO)
	}
	t := c.Timeout
	if t <= 0 {
		t = 10 * time.Second
	}
	// A signal to the caller (the kernel's FUSE interrupt, which Go
	// programs get all the time from their runtime's preemption) does not
	// cancel the call: the server may already have done the work, and an
	// EINTR would hide that. The timeout bounds every call instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t)
	defer cancel()
	req.Prefix = d.Prefix
	if err := c.Call(ctx, d.Host, method, req, resp); err != nil {
		c.Log.Debug("fs: call failed", "server", d.Host, "method", method, "prefix", d.Prefix, "err", err)
		resp.Errno = 0
		return fmt.Errorf("%s on %s at %s: %v: %w", method, d.Prefix, d.Host, err, syscall.EIO)
	}
	if resp.Errno != 0 {
		return syscall.Errno(resp.Errno)
	}
	if resp.Attr != nil {
		resp.Attr.Ino = mixIno(d.Prefix, resp.Attr.Ino)
	}
	if resp.Dir != nil {
		resp.Dir.Ino = mixIno(d.Prefix, resp.Dir.Ino)
	}
	for i := range resp.Entries {
		resp.Entries[i].Ino = mixIno(d.Prefix, resp.Entries[i].Ino)
		if a := resp.Entries[i].Attr; a != nil {
			a.Ino = mixIno(d.Prefix, a.Ino)
		}
	}
	return nil
}

// mixIno makes a server's inode number unique across domains.
func mixIno(prefix string, ino uint64) uint64 {
	return pathIno(prefix) ^ (ino * 0x9E3779B97F4A7C15)
}

// Errno maps any error of this package to the errno a system call returns.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}

// Entry is what a lookup finds.
type Entry struct {
	Attr Attr
	Kind RouteKind
}

// dirAttr is the attributes of a synthetic directory.
func dirAttr(p string) Attr {
	return Attr{Ino: pathIno(p), Mode: syscall.S_IFDIR | 0o555, Nlink: 2}
}

// Lookup finds name in directory dir.
func (c *Client) Lookup(ctx context.Context, cr Cred, dir, name string) (Entry, error) {
	if err := checkName(name); err != nil {
		return Entry{}, syscall.ENOENT
	}
	p := path.Join(dir, name)
	r := c.Table.Route(p)
	switch r.Kind {
	case RouteVirtual:
		return Entry{Attr: dirAttr(p), Kind: RouteVirtual}, nil
	case RouteHosts:
		a, err := c.hostsAttr(r.Rel)
		return Entry{Attr: a, Kind: RouteHosts}, err
	case RouteProc:
		a, err := c.procAttr(ctx, r.Rel)
		return Entry{Attr: a, Kind: RouteProc}, err
	case RouteNone:
		return Entry{Kind: RouteNone}, syscall.ENOENT
	}
	if r.Rel == "" {
		a, err := c.Getattr(ctx, cr, p, nil)
		return Entry{Attr: a, Kind: RouteDomain}, err
	}
	d, n := splitPath(r.Rel)
	resp, err := c.do(ctx, r.Domain, MethodLookup, &Req{Cred: cr, Path: d, Name: n})
	if err != nil {
		return Entry{Kind: RouteDomain}, err
	}
	return Entry{Attr: *resp.Attr, Kind: RouteDomain}, nil
}

// Getattr returns p's attributes (through h when it is open).
func (c *Client) Getattr(ctx context.Context, cr Cred, p string, h *Handle) (Attr, error) {
	if h != nil {
		if a, ok := h.wb.localStat(); ok {
			return a, nil
		}
		if a, ok, err := c.statAfterWrites(ctx, h); ok {
			return a, err
		}
		c.flushPath(ctx, h.path)
		// Through the handle: the file may have no name any more.
		resp, err := c.do(ctx, h.Domain, MethodGetattr, &Req{Cred: cr, Handle: h.ID})
		if err != nil {
			return Attr{}, err
		}
		return *resp.Attr, nil
	}
	r := c.Table.Route(p)
	switch r.Kind {
	case RouteVirtual:
		return dirAttr(p), nil
	case RouteHosts:
		return c.hostsAttr(r.Rel)
	case RouteProc:
		return c.procAttr(ctx, r.Rel)
	case RouteNone:
		return Attr{}, syscall.ENOENT
	}
	c.flushPath(ctx, p)
	resp, err := c.do(ctx, r.Domain, MethodGetattr, &Req{Cred: cr, Path: r.Rel})
	if err != nil {
		return Attr{}, err
	}
	return *resp.Attr, nil
}

// Setattr changes p's attributes.
func (c *Client) Setattr(ctx context.Context, cr Cred, p string, h *Handle, set SetAttr) (Attr, error) {
	c.unsync(p, set)
	if h != nil && h.path != p {
		c.unsync(h.path, set)
	}
	if set.Valid&SetSize == 0 {
		if a, ok, err := c.setattrAfterWrites(ctx, cr, p, set); ok {
			return a, err
		}
	}
	c.flushPath(ctx, p)
	if h != nil && h.path != p {
		c.flushPath(ctx, h.path)
	}
	if h != nil && set.Valid == SetSize {
		// ftruncate: through the handle, named or not.
		resp, err := c.do(ctx, h.Domain, MethodSetattr, &Req{Cred: cr, Handle: h.ID, Set: &set})
		if err != nil {
			return Attr{}, err
		}
		return *resp.Attr, nil
	}
	r := c.Table.Route(p)
	if r.Kind == RouteProc {
		return c.procSetattr(ctx, cr, r.Rel, set) // a shell's `> ctl`
	}
	if err := routeErr(r); err != nil {
		return Attr{}, err
	}
	req := &Req{Cred: cr, Path: r.Rel, Set: &set}
	if h != nil {
		req.Handle = h.ID
	}
	resp, err := c.do(ctx, r.Domain, MethodSetattr, req)
	if err != nil {
		return Attr{}, err
	}
	return *resp.Attr, nil
}

// remote routes p, which must lie in a domain.
func (c *Client) remote(p string) (Route, error) {
	r := c.Table.Route(p)
	return r, routeErr(r)
}

// routeErr is the error of an operation that needs a domain on route r.
func routeErr(r Route) error {
	switch r.Kind {
	case RouteDomain:
		return nil
	case RouteNone:
		return syscall.ENOENT
	}
	return ErrNotRemote
}

// remoteChild routes the directory of a new entry.
func (c *Client) remoteChild(dir, name string) (Route, error) {
	if err := checkName(name); err != nil {
		return Route{}, syscall.EINVAL
	}
	r := c.Table.Route(path.Join(dir, name))
	if r.Kind != RouteDomain || r.Rel == "" {
		if r.Kind == RouteNone || r.Kind == RouteProc {
			return Route{}, syscall.EACCES // a new name outside every domain; anything in /proc
		}
		return Route{}, syscall.EEXIST
	}
	return r, nil
}

// Open opens p.
func (c *Client) Open(ctx context.Context, cr Cred, p string, flags uint32) (*Handle, Attr, error) {
	r, err := c.remote(p)
	if err != nil {
		return nil, Attr{}, err
	}
	sent := time.Now()
	resp, err := c.do(ctx, r.Domain, MethodOpen, &Req{Cred: cr, Path: r.Rel, Flags: flags, Boot: c.Boot})
	if err != nil {
		return nil, Attr{}, err
	}
	return c.handle(r.Domain, cr, resp, p, flags, sent), *resp.Attr, nil
}

func (c *Client) handle(d Domain, cr Cred, resp *Resp, p string, flags uint32, sent time.Time) *Handle {
	h := &Handle{Domain: d, ID: resp.Handle, Cred: cr, Direct: resp.Flags&OpenDirect != 0, Version: resp.Version,
		Watched: resp.Flags&OpenWatched != 0, Append: flags&syscall.O_APPEND != 0, path: p}
	h.wb.exec = resp.Attr == nil || resp.Attr.Mode&0o111 != 0
	if ownable(resp, flags) {
		h.wb.own = make([]byte, 0, 4096)
		a := *resp.Attr
		h.wb.stat = &a
	}
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if others := c.writable(h, sent); len(others) > 0 {
			dropOwnOf(append(others, h))
		}
	}
	return h
}

// Create makes and opens name in dir. It also returns dir's attributes
// after the change when the server sent them (nil otherwise).
func (c *Client) Create(ctx context.Context, cr Cred, dir, name string, flags, mode uint32) (*Handle, Attr, *Attr, error) {
	r, err := c.remoteChild(dir, name)
	if err != nil {
		return nil, Attr{}, nil, err
	}
	d, n := splitPath(r.Rel)
	sent := time.Now()
	resp, err := c.do(ctx, r.Domain, MethodCreate, &Req{Cred: cr, Path: d, Name: n, Flags: flags, Mode: mode, Boot: c.Boot})
	if err != nil {
		return nil, Attr{}, nil, err
	}
	return c.handle(r.Domain, cr, resp, path.Join(dir, name), flags, sent), *resp.Attr, resp.Dir, nil
}

// chunk is the most one fs.read or fs.write call carries: a QUIC stream
// starts with a 1 MiB flow-control window, and a reply that fits in it
// never waits for a window update. A larger kernel request becomes
// parallel calls of a chunk each.
const chunk = 256 << 10

// Read reads up to len(dest) bytes at off. Data that comes from the
// server in a call of its own is read into dest (the kernel's buffer for
// the request: no buffer of its own to allocate, zero and collect); what
// comes otherwise (this host's copy or write-behind buffer, a small read's
// message) may be in another slice.
func (c *Client) Read(ctx context.Context, h *Handle, off int64, dest []byte) ([]byte, error) {
	size := len(dest)
	if b, ok := h.wb.readOwn(off, size); ok {
		return b, nil
	}
	if b, ok, err := c.readAfterWrites(ctx, h, off, size); ok {
		return b, err
	}
	c.flushPath(ctx, h.path)
	if size <= chunk {
		return c.readChunk(ctx, h, off, dest)
	}
	n := (size + chunk - 1) / chunk
	parts := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Each part's room ends where the next begins.
			parts[i], errs[i] = c.readChunk(ctx, h, off+int64(i*chunk), dest[i*chunk:min(size, (i+1)*chunk):min(size, (i+1)*chunk)])
		})
	}
	wg.Wait()
	got := 0
	for i := range n {
		if errs[i] != nil {
			if got > 0 {
				return dest[:got], nil // a short read; the caller asks again
			}
			return nil, errs[i]
		}
		if len(parts[i]) > 0 && &parts[i][0] != &dest[got] {
			copy(dest[got:], parts[i])
		}
		got += len(parts[i])
		if len(parts[i]) < min(chunk, size-i*chunk) {
			break // end of file
		}
	}
	return dest[:got], nil
}

// readChunk reads len(room) bytes at off, into room when they come as raw
// frames.
func (c *Client) readChunk(ctx context.Context, h *Handle, off int64, room []byte) ([]byte, error) {
	resp := Resp{Data: room[:0:len(room)]} // never past the room, whatever the server sends
	if err := c.doInto(ctx, h.Domain, MethodRead, &Req{Cred: h.Cred, Handle: h.ID, Offset: off, Size: int64(len(room))}, &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}

// writeThrough sends a write now, in parallel chunks when it is large.
func (c *Client) writeThrough(ctx context.Context, h *Handle, off int64, data []byte) (int, error) {
	if len(data) <= chunk || h.Append {
		return c.writeChunk(ctx, h, off, data)
	}
	n := (len(data) + chunk - 1) / chunk
	counts := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := data[i*chunk : min(len(data), (i+1)*chunk)]
			counts[i], errs[i] = c.writeChunk(ctx, h, off+int64(i*chunk), p)
		})
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			if total > 0 {
				return total, nil
			}
			return 0, errs[i]
		}
		total += counts[i]
		if counts[i] < min(chunk, len(data)-i*chunk) {
			break
		}
	}
	return total, nil
}

func (c *Client) writeChunk(ctx context.Context, h *Handle, off int64, data []byte) (int, error) {
	resp, err := c.do(ctx, h.Domain, MethodWrite, &Req{Cred: h.Cred, Handle: h.ID, Offset: off, Data: data})
	if err != nil {
		return 0, err
	}
	return int(resp.N), nil
}
