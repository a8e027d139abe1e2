package idledb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"sprite/daemon"
	"sprite/rpc"
	"sprite/wire"
)

// Service runs the database inside the daemon of the host named by the
// config's idledb field, and serves its methods to the other hosts.
type Service struct {
	db     *DB
	cancel context.CancelFunc
	wg     sync.WaitGroup // Run and the stream handlers' relays
}

// NewService makes the service; it does nothing on hosts other than the
// database host.
func NewService() *Service { return &Service{} }

// Name is "idledb".
func (s *Service) Name() string { return "idledb" }

// DB is the running database, or nil on other hosts.
func (s *Service) DB() *DB { return s.db }

// Start opens the database (state dir/idledb) if this is its host. A
// database that cannot open is logged as an error, not fatal to the daemon.
func (s *Service) Start(ctx context.Context, d *daemon.Daemon) error {
	cfg := d.Config()
	if cfg.IdleDB != cfg.Name {
		return nil
	}
	db, err := Open(Options{Dir: filepath.Join(d.StateDir(), "idledb"), Heartbeat: 2 * time.Second,
		Lease: 10 * time.Second, Log: d.Log().With("part", "idledb")})
	if err != nil {
		// The rest of the daemon (files, membership) is worth keeping:
		// say so loudly and serve without the database.
		d.Log().Error("idle database not running; hosts will not be lent until it is fixed and the daemon restarted", "err", err)
		return nil
	}
	s.db = db
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() { db.Run(ctx) })
	Register(d.Mux, db)
	idle, up := db.Idle()
	d.Log().Info("idle database serving", "dir", filepath.Join(d.StateDir(), "idledb"), "hosts_known", len(db.Hosts()), "up", up, "idle", idle)
	return nil
}

// Stop ends the database's goroutines and closes it.
func (s *Service) Stop() {
	if s.db == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		s.db.log.Error("closing the idle database", "err", err)
	}
}

// Register serves db's methods on mux (the daemon's host-to-host mux, or a
// benchmark's).
func Register(mux *rpc.Mux, db *DB) {
	mux.Handle(MethodReport, rpc.Unary(func(_ context.Context, p rpc.Peer, r Report) (ReportReply, error) {
		return db.Report(p.Host, r)
	}))
	mux.Handle(MethodReports, func(ctx context.Context, c *rpc.Call) error {
		return ServeReports(c, db.opts.Heartbeat, func(r Report) error {
			_, err := db.Report(c.Peer.Host, r)
			return err
		})
	})
	mux.Handle(MethodRequest, rpc.Unary(func(_ context.Context, p rpc.Peer, q Request) (Grants, error) {
		return db.Request(p.Host, q)
	}))
	mux.Handle(MethodRenew, rpc.Unary(func(_ context.Context, p rpc.Peer, r Renew) (Grants, error) {
		return db.Renew(p.Host, r.ID)
	}))
	mux.Handle(MethodRelease, rpc.Unary(func(_ context.Context, p rpc.Peer, r Release) (struct{}, error) {
		return struct{}{}, db.Release(p.Host, r)
	}))
	mux.Handle(MethodHosts, rpc.Unary(func(context.Context, rpc.Peer, struct{}) ([]HostFacts, error) {
		return db.Hosts(), nil
	}))
	mux.Handle(MethodHistory, rpc.Unary(func(_ context.Context, _ rpc.Peer, r HistoryRequest) ([]Period, error) {
		return db.History(r.Host)
	}))
	mux.Handle(MethodWatch, func(ctx context.Context, c *rpc.Call) error {
		var r Renew
		if err := c.Args(&r); err != nil {
			return err
		}
		ch, stop, err := db.Watch(c.Peer.Host, r.ID)
		if errors.Is(err, ErrNoRequester) {
			return rpc.Errorf(wire.CodeNotFound, "idle watch: %v", err)
		}
		if err != nil {
			return err
		}
		defer stop()
		return relay(ctx, c, ch)
	})
	mux.Handle(MethodWatchHosts, func(ctx context.Context, c *rpc.Call) error {
		w := db.WatchHosts()
		defer w.Close()
		if err := c.Send(db.Hosts()); err != nil {
			return nil
		}
		return relayHosts(ctx, c, w)
	})
}

// ServeReports serves one report stream: it tells the caller the heartbeat,
// then hands each Report to apply until the caller ends the stream. A
// report that apply refuses ends the stream with that error (the caller
// logs it and opens a new stream).
func ServeReports(c *rpc.Call, heartbeat time.Duration, apply func(Report) error) error {
	if err := c.Send(ReportReply{HeartbeatMs: heartbeat.Milliseconds()}); err != nil {
		return nil
	}
	for {
		f, err := c.Recv()
		if err != nil {
			return nil // the caller ended the stream, or it broke
		}
		if f.Type != wire.FrameMsg {
			return rpc.Errorf(wire.CodeBadRequest, "idle reports: a data frame where a report belongs")
		}
		var r Report
		if err := wire.Unmarshal(f.Payload, &r); err != nil {
			return rpc.Errorf(wire.CodeBadRequest, "idle reports: %v", err)
		}
		if err := apply(r); err != nil {
			return err
		}
	}
}

// relay sends every holding from ch until it closes, the caller goes away
// (its end of the stream: FrameEnd, FIN or reset) or ctx ends.
func relay(ctx context.Context, c *rpc.Call, ch <-chan Grants) error {
	gone := callerGone(c)
	for {
		select {
		case g, ok := <-ch:
			if !ok {
				return nil
			}
			if err := c.Send(g); err != nil {
				return nil
			}
		case <-gone:
			return nil
		case <-ctx.Done():
			return rpc.Errorf(wire.CodeUnavailable, "idle database shutting down")
		}
	}
}

func relayHosts(ctx context.Context, c *rpc.Call, w *HostWatch) error {
	gone := callerGone(c)
	for {
		select {
		case <-w.C():
			if err := c.Send(w.Take()); err != nil {
				return nil
			}
		case <-gone:
			return nil
		case <-ctx.Done():
			return rpc.Errorf(wire.CodeUnavailable, "idle database shutting down")
		}
	}
}

// callerGone is closed when the caller's side of the stream ends. The
// goroutine reading it ends then too: the stream is released when the
// handler returns, which fails the read.
func callerGone(c *rpc.Call) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, err := c.Recv(); err != nil {
				return
			}
		}
	}()
	return gone
}

// ErrNoDatabase means no idle database host is configured.
var ErrNoDatabase = fmt.Errorf("no idle database host is configured: set idledb = \"HOST\" in config.toml (see docs/config.md)")
