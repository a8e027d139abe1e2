package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sender delivers an invalidation to a client host; the daemon wires it to
// a QUIC call of fs.invalidate.
type Sender func(ctx context.Context, host string, inv Invalidate) error

// ServerConfig configures a Server.
type ServerConfig struct {
	Host    string     // this host's name, for logs
	Exports []Exported // Prefix -> local Path
	Send    Sender
	Log     *slog.Logger
	Workers int // file operations running at once (default 16)
}

// Server serves this host's domains to every client host.
type Server struct {
	log     *slog.Logger
	exports map[string]*export // by prefix; fixed after NewServer
	list    []Exported
	w       *workers
	note    *notifier
	watch   *watcher

	mu      sync.Mutex
	handles map[uint64]*handle     // guarded by mu
	next    uint64                 // guarded by mu
	files   map[fileKey]*fileState // guarded by mu; files with opens
	boots   map[string]int64       // guarded by mu; client host -> boot id seen
	// keepBelow: clients may keep handles (OpenWatched) only while this
	// server holds fewer: kept handles are descriptors here, and this
	// process may hold only so many (a quarter of RLIMIT_NOFILE).
	keepBelow int
}

// NewServer opens every export; one that cannot be served (a missing
// directory, a bad prefix) is logged and left out.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	s := &Server{log: cfg.Log, exports: map[string]*export{}, handles: map[uint64]*handle{},
		files: map[fileKey]*fileState{}, boots: map[string]int64{}, keepBelow: 256}
	var nofile unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile) == nil {
		s.keepBelow = max(s.keepBelow, int(min(nofile.Cur/4, 1<<20)))
	}
	for _, x := range cfg.Exports {
		// A bad export is the operator's to fix; the daemon serves the
		// others meanwhile, and says why this one is missing.
		if err := s.addExport(x); err != nil {
			cfg.Log.Error("fs: export not served", "prefix", x.Prefix, "path", x.Path, "err", err)
		}
	}
	sort.Slice(s.list, func(i, j int) bool { return s.list[i].Prefix < s.list[j].Prefix })
	w, err := startWorkers(cfg.Workers)
	if err != nil {
		s.closeExports()
		return nil, err
	}
	s.w = w
	s.note = newNotifier(cfg.Send, cfg.Log)
	s.watch, err = newWatcher(s, cfg.Log)
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) addExport(x Exported) error {
	if err := CheckPrefix(x.Prefix); err != nil {
		return fmt.Errorf("export %s: %w", x.Prefix, err)
	}
	if s.exports[x.Prefix] != nil {
		return fmt.Errorf("export %s: listed twice; keep one [[export]] per prefix", x.Prefix)
	}
	e, err := openExport(x.Prefix, x.Path)
	if err != nil {
		return err
	}
	s.exports[x.Prefix] = e
	s.list = append(s.list, x)
	return nil
}

// Exports lists the domains this host serves.
func (s *Server) Exports() []Exported { return s.list }

// Stop ends the watcher and the notifier and closes every handle and
// export.
func (s *Server) Stop() {
	if s.watch != nil {
		s.watch.stop()
	}
	s.note.stop()
	s.mu.Lock()
	for id, h := range s.handles {
		s.dropLocked(id, h)
	}
	s.mu.Unlock()
	if s.w != nil {
		s.w.stop()
	}
	s.closeExports()
}

func (s *Server) closeExports() {
	for _, e := range s.exports {
		e.close()
	}
}

// unknownMethod is in the error for a method this server does not know,
// so that a newer client can tell and fall back.
const unknownMethod = "unknown method"

// Serve runs one fs.* method for client (the caller's host, from its
// certificate). File system failures come back as Resp.Errno; the error is
// for requests that break the protocol.
func (s *Server) Serve(ctx context.Context, client, method string, req *Req) (*Resp, error) {
	op := ops[method]
	if op == nil {
		return nil, fmt.Errorf("fs: %s %q", unknownMethod, method)
	}
	e := s.exports[req.Prefix]
	if e == nil {
		return &Resp{Errno: uint32(syscall.ENOENT)}, nil
	}
	if err := checkReq(method, req); err != nil {
		s.log.Warn("fs: refused request: bad name", "client", client, "method", method, "prefix", req.Prefix, "err", err)
		return &Resp{Errno: uint32(errnoOf(err))}, nil
	}
	req.Cred = squash(req.Cred)
	// What the reply lets the client cache is recorded before the call
	// runs (a change meanwhile reaches the client) and after (the kernel's
	// timeout counts from the reply).
	seen := seenBy(method, req)
	if len(seen) > 0 {
		s.note.saw(client, seen...)
	}
	if items := changes(method, req); len(items) > 0 {
		s.note.mark(client, items...)
	}
	c := &opCtx{ctx: ctx, s: s, e: e, client: client, req: req}
	resp, err := op(c)
	if len(seen) > 0 {
		s.note.saw(client, seen...)
	}
	if err != nil {
		if errors.Is(err, errEscape) {
			s.log.Warn("fs: refused escape from export", "client", client, "method", method,
				"prefix", req.Prefix, "path", req.Path, "name", req.Name, "uid", req.Cred.UID, "err", err)
		}
		return &Resp{Errno: uint32(errnoOf(err))}, nil
	}
	return resp, nil
}

// changes lists the entries a request changes (before it runs, so the
// local-change events it causes are known to be its own).
func changes(method string, req *Req) []Item {
	it := func(p string) Item { return Item{Prefix: req.Prefix, Path: p} }
	switch method {
	case MethodCreate, MethodMkdir, MethodSymlink, MethodUnlink, MethodRmdir:
		return []Item{it(joinPath(req.Path, req.Name))}
	case MethodRename:
		return []Item{it(joinPath(req.Path, req.Name)), it(joinPath(req.NewPath, req.NewName))}
	case MethodLink:
		return []Item{it(req.Path), it(joinPath(req.NewPath, req.NewName))}
	case MethodSetattr, MethodSetxattr, MethodRmxattr:
		return []Item{it(req.Path)}
	case MethodWriteV:
		if req.Flags&WriteVSetattr != 0 {
			return []Item{it(req.Path)}
		}
	}
	return nil
}

// checkReq validates every name and path in req before any touches a disk.
func checkReq(method string, req *Req) error {
	if err := checkPath(req.Path); err != nil {
		return err
	}
	switch method {
	case MethodLookup, MethodCreate, MethodMkdir, MethodUnlink, MethodRmdir, MethodSymlink:
		if err := checkName(req.Name); err != nil {
			return err
		}
	case MethodRename:
		if err := checkName(req.Name); err != nil {
			return err
		}
		fallthrough
	case MethodLink:
		if err := checkPath(req.NewPath); err != nil {
			return err
		}
		if err := checkName(req.NewName); err != nil {
			return err
		}
	}
	if len(req.Handles) > MaxBatch {
		return fmt.Errorf("%w: %d handles in one request", errBadName, len(req.Handles))
	}
	if len(req.Cred.Groups) > 256 {
		return fmt.Errorf("%w: %d groups", errBadName, len(req.Cred.Groups))
	}
	return nil
}

// errnoOf finds the errno in err; anything else is EIO.
func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &en):
		return en
	case errors.Is(err, errBadName):
		return syscall.EINVAL
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	return syscall.EIO
}

// opCtx is one request being served.
type opCtx struct {
	ctx    context.Context
	s      *Server
	e      *export
	client string
	req    *Req
}

// as runs fn as the requesting user (workers.do).
func (c *opCtx) as(fn func() error) error { return c.s.w.do(c.ctx, c.req.Cred, fn) }
