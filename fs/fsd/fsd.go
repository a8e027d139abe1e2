// Package fsd is the daemon service of the global namespace: it serves this
// host's exports to the cluster (fs.Server on the daemon's host-to-host
// mux), keeps the prefix table from every host's exports and the
// membership, and mounts the namespace at the configured directory (package
// fs/fuse).
//
// Start order: server, methods, table (first refresh done before the mount
// so /sprite is complete when it appears), mount, refresher. Stop: the
// refresher, then the mount (no new requests), then the server.
//
// Calls to other hosts: reads and writes of more than fs.SessionIO as calls
// of their own, their bytes in raw data frames (fs.readdata, fs.writedata:
// data.go), everything else as messages on one fs.session per server
// (session.go).
//
// Goroutines: the refresher, the lazy releases' sender (release.go) and one
// reader per session (owned by Service,
// ended by Stop, which cancels the context the sessions live in); the
// server's notifier and watcher (owned by fs.Server); go-fuse's loops
// (owned by the mount). Service.mu is a leaf, as are each session's locks.
package fsd

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"sprite/api"
	"sprite/daemon"
	"sprite/fs"
	fusefs "sprite/fs/fuse"
	"sprite/rpc"
	"sprite/wire"
)

// Service is the namespace's part of the daemon.
type Service struct {
	// Procs serves /sprite/proc (package homenode's table); set it before
	// Start. Nil: /proc is empty.
	Procs fs.ProcTable

	d      *daemon.Daemon
	log    *slog.Logger
	server *fs.Server
	table  *fs.Table
	client *fs.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ctx context.Context // the service's; sessions live in it

	mu       sync.Mutex
	mount    *fusefs.Mount       // guarded by mu; nil until mounted
	seen     map[string]seen     // guarded by mu
	sessions map[string]*session // guarded by mu; by server host
	rel      releases            // pending guarded by mu (release.go)
}

// seen is what the refresher last learnt from a host.
type seen struct {
	boot int64
	at   time.Time
}

// New returns the service; add it with daemon.Add.
func New() *Service {
	return &Service{seen: map[string]seen{}, sessions: map[string]*session{},
		rel: releases{wake: make(chan struct{}, 1), pending: map[string][]fs.Req{}}}
}

// Name names the service in logs.
func (s *Service) Name() string { return "fs" }

// refreshEvery is how often the refresher looks at the membership; a host's
// exports are fetched again when its daemon restarts and every exportsTTL.
const (
	refreshEvery = 500 * time.Millisecond
	exportsTTL   = 10 * time.Second
)

// Start serves, mounts and starts the refresher.
func (s *Service) Start(ctx context.Context, d *daemon.Daemon) error {
	s.d, s.log = d, d.Log()
	cfg := d.Config()
	var ex []fs.Exported
	for _, e := range cfg.Exports {
		ex = append(ex, fs.Exported{Prefix: e.Prefix, Path: e.Path})
	}
	srv, err := fs.NewServer(fs.ServerConfig{Host: cfg.Name, Exports: ex, Send: s.send, Log: s.log})
	if err != nil {
		return err
	}
	s.server = srv
	s.table = fs.NewTable(s.log)
	s.client = &fs.Client{Table: s.table, Call: s.call, Timeout: cfg.FSTimeout.Duration, Boot: d.Self().Boot,
		Hosts: (&hostsCache{socket: cfg.Socket, bare: d.Members.List}).list, Procs: s.Procs, Log: s.log}
	s.register()
	ctx, s.cancel = context.WithCancel(ctx)
	s.ctx = ctx
	s.refresh(ctx)
	m, err := fusefs.MountAt(cfg.Mount, s.client, s.log)
	if err != nil {
		s.cancel()
		srv.Stop()
		return err
	}
	s.mu.Lock()
	s.mount = m
	s.mu.Unlock()
	s.log.Info("fs: namespace mounted", "dir", cfg.Mount, "exports", len(ex), "domains", len(s.table.List()))
	s.wg.Go(func() { s.refreshLoop(ctx) })
	s.wg.Go(func() { s.releaseLoop(ctx) })
	return nil
}

// Stop unmounts and stops serving.
func (s *Service) Stop() {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	m := s.mount
	s.mount = nil
	s.mu.Unlock()
	if m != nil {
		m.Unmount()
	}
	s.server.Stop()
}

func (s *Service) register() {
	// Every method the server has, so that none is served only inside
	// fs.session (fs.writev of more than fs.SessionIO was, until
	// 2026-12-03: such writes fell back to an fs.write per extent).
	for _, m := range fs.Methods() {
		s.d.Mux.Handle(m, rpc.Unary(func(ctx context.Context, p rpc.Peer, req fs.Req) (*fs.Resp, error) {
			resp, err := s.server.Serve(ctx, p.Host, m, &req)
			if err != nil {
				return nil, rpc.Errorf(wire.CodeBadRequest, "%v", err)
			}
			return resp, nil
		}))
	}
	s.d.Mux.Handle(fs.MethodReadData, s.serveRead)
	s.d.Mux.Handle(fs.MethodWriteData, s.serveWrite)
	s.d.Mux.Handle(fs.MethodExports, rpc.Unary(func(context.Context, rpc.Peer, struct{}) ([]fs.Exported, error) {
		return s.server.Exports(), nil
	}))
	s.d.Mux.Handle(fs.MethodInvalidate, rpc.Unary(s.handleInvalidate))
	s.d.Mux.Handle(fs.MethodSession, s.serveSession)
	s.d.Local.Handle(api.MethodExports, rpc.Unary(func(context.Context, rpc.Peer, struct{}) ([]fs.Domain, error) {
		return s.table.List(), nil
	}))
}

// settleWait bounds Settle: a client that does not answer for this long
// is left behind (and forgotten by the server's notifier).
const settleWait = 3 * time.Second

// Settle returns once every change made on this host's disk so far has
// reached host, where it may cache what changed (fs.Server.Settle): the
// home calls it before it starts a job on host. A failure is logged, and
// the job starts anyway.
func (s *Service) Settle(ctx context.Context, host string) {
	if s.server == nil {
		return
	}
	if err := s.server.Settle(ctx, host, settleWait); err != nil {
		s.log.Warn("fs: starting a job before its host heard of this disk's last changes", "host", host, "err", err)
	}
}

// handleInvalidate applies a server's invalidations, only for the domains
// that host serves.
func (s *Service) handleInvalidate(ctx context.Context, p rpc.Peer, inv fs.Invalidate) (struct{}, error) {
	items := inv.Items[:0]
	for _, it := range inv.Items {
		if r := s.table.Route(it.Prefix); r.Kind == fs.RouteDomain && r.Domain.Prefix == it.Prefix && r.Domain.Host == p.Host {
			items = append(items, it)
		}
	}
	s.invalidate(ctx, items, inv.Recall)
	return struct{}{}, nil
}

// invalidate hands the items to the client's write-behind buffers (which
// send what they hold for them) and then drops the kernel's caches.
func (s *Service) invalidate(ctx context.Context, items []fs.Item, recall bool) {
	if len(items) > 0 {
		s.client.Recall(ctx, items, recall)
	}
	s.mu.Lock()
	m := s.mount
	s.mu.Unlock()
	if m != nil && len(items) > 0 {
		m.Invalidate(items)
	}
}

// send delivers a server's invalidation to a client host.
func (s *Service) send(ctx context.Context, host string, inv fs.Invalidate) error {
	if host == s.d.Self().Name {
		s.invalidate(ctx, inv.Items, inv.Recall)
		return nil
	}
	info, ok := s.d.Members.Lookup(host)
	if !ok {
		return fmt.Errorf("invalidate on %s: host is down", host)
	}
	return s.d.Node.Call(ctx, host, info.Addr, fs.MethodInvalidate, inv, nil)
}

// call runs an fs.* call: this host's own domains in process, others over
// QUIC.
func (s *Service) call(ctx context.Context, host, method string, req *fs.Req, resp *fs.Resp) error {
	if host == s.d.Self().Name {
		r, err := s.server.Serve(ctx, host, method, req)
		if err != nil {
			return err
		}
		*resp = *r
		return nil
	}
	if req.Lazy && method == fs.MethodRelease {
		s.queueRelease(host, req)
		return nil
	}
	info, ok := s.d.Members.Lookup(host)
	if !ok {
		return fmt.Errorf("%s: host %s is down", method, host)
	}
	if fs.ViaSession(method, req) {
		ss, err := s.sessionTo(host, info.Addr)
		if err == nil {
			return ss.call(ctx, method, req, resp)
		}
		s.log.Debug("fs: no session; one call on its own stream", "server", host, "err", err)
	}
	if method == fs.MethodRead || method == fs.MethodWrite {
		return s.bulkCall(ctx, host, info.Addr, method, req, resp)
	}
	return s.d.Node.Call(ctx, host, info.Addr, method, req, resp)
}
