package homenode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"sprite/daemon"
	"sprite/migrate"
	"sprite/rpc"
	"sprite/wire"
)

// maxAttempts bounds how often one job is started (evictions, lost hosts).
const maxAttempts = 8

// run serves MethodLocalRun: place the caller's job, start it on the
// target and relay its stdio until it ends, starting it again elsewhere
// when its host is reclaimed or lost (see relay and restart).
func (s *Service) run(ctx context.Context, c *rpc.Call) error {
	if !c.Peer.Local {
		return rpc.Errorf(wire.CodePermission, "%s: only local callers may start jobs", c.Method)
	}
	var req migrate.Request
	if err := c.Args(&req); err != nil {
		return err
	}
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return rpc.Errorf(wire.CodeBadRequest, "sprite mig: no command given")
	}
	if req.Policy == "" {
		req.Policy = s.d.Config().EvictPolicy
	}
	if req.Policy != "restart" && req.Policy != "wait" && req.Policy != "checkpoint" {
		return rpc.Errorf(wire.CodeBadRequest, "sprite mig: eviction policy %q: use restart, wait or checkpoint", req.Policy)
	}
	mounts, inside := s.mounts(req.Dir)
	if !inside {
		return c.Send(migrate.Event{Kind: migrate.EventLocal, Reason: fmt.Sprintf(
			"working directory %s is not in the global namespace (exported here: %s)", req.Dir, s.exportList())})
	}
	spec, err := s.spec(c.Peer, req, mounts)
	if err != nil {
		return err
	}
	defer s.drop(spec.ID)
	pl, err := s.place(ctx, req, spec, nil)
	if err != nil {
		return err
	}
	if pl.host == "" {
		pl.release()
		return c.Send(migrate.Event{Kind: migrate.EventLocal, Reason: pl.why})
	}
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ts, started, err := s.startOn(jctx, pl.host, spec)
	if err != nil {
		pl.release()
		if req.Host == "" && req.Session == "" && rpc.CodeOf(err) != wire.CodePermission {
			return c.Send(migrate.Event{Kind: migrate.EventLocal, Reason: err.Error()})
		}
		return err
	}
	j := &job{session: pl.session, req: req, rec: migrate.Job{ID: spec.ID, Home: spec.Home, Host: pl.host, User: spec.User,
		UID: spec.UID, GID: spec.GID, Command: strings.Join(spec.Argv, " "), State: migrate.StateRunning,
		PID: started.PID, StartMs: time.Now().UnixMilli(), Policy: req.Policy}}
	j.in.ts = ts
	s.register(spec.ID, j)
	if err := c.Send(migrate.Event{Kind: migrate.EventPlaced, ID: spec.ID, Host: pl.host, PID: started.PID}); err != nil {
		cancel() // the caller left already: the target kills the job
		ts.Finish(nil)
		pl.release()
		return nil
	}
	// The caller's input goes to the job's current target until the
	// caller's stream ends; this goroutine ends when the call's stream is
	// released, just after this handler returns. The caller gone means
	// the job is killed.
	go j.in.run(c, cancel)
	for attempt := 1; ; attempt++ {
		end := s.relay(jctx, c, j, ts, pl.host)
		pl.release()
		if end.kind == endExit || jctx.Err() != nil {
			return c.SetResult(end.exit)
		}
		if !j.restartable() || attempt >= maxAttempts {
			if end.kind == endLost {
				end.exit.Lost += restartNote(attempt)
			}
			return c.SetResult(end.exit)
		}
		if pl, ts, err = s.restart(jctx, c, j, spec, pl.host, end.why); err != nil {
			return c.SetResult(migrate.Exit{Code: -1, Lost: err.Error(), Host: j.host()})
		}
	}
}

func restartNote(attempt int) string {
	if attempt >= maxAttempts {
		return fmt.Sprintf(" (started %d times; giving up)", attempt)
	}
	return " (it read input from home, so it could not be run again)"
}

// spec builds the job as the target will run it; who runs it comes from
// the socket's credentials.
func (s *Service) spec(p rpc.Peer, req migrate.Request, mounts []migrate.Mount) (migrate.Spec, error) {
	groups, err := migrate.ProcGroups(int(p.PID))
	if err != nil {
		return migrate.Spec{}, rpc.Errorf(wire.CodeError, "sprite mig: %v", err)
	}
	return migrate.Spec{ID: s.allocID(p.PID), Home: s.d.Self().Name, User: daemon.UserName(p.UID), UID: p.UID, GID: p.GID,
		Groups: groups, Argv: req.Argv, Env: req.Env, Dir: req.Dir, Umask: req.Umask, Tty: req.Tty,
		Mounts: mounts, NoStdin: req.NoStdin, Policy: req.Policy}, nil
}

// startOn opens the job's stream to host and waits until the job runs.
// This host itself is reached in process (a job its home runs itself).
func (s *Service) startOn(ctx context.Context, host string, spec migrate.Spec) (*rpc.ClientStream, migrate.Event, error) {
	var ts *rpc.ClientStream
	var err error
	if host == s.d.Self().Name {
		ts, err = s.openSelf(ctx, spec)
	} else {
		info, ok := s.d.Members.Lookup(host)
		if !ok {
			return nil, migrate.Event{}, rpc.Errorf(wire.CodeUnavailable, "host %s is not up (see `sprite hosts`)", host)
		}
		if s.Settle != nil {
			s.Settle(ctx, host)
		}
		ts, err = s.d.Node.Open(ctx, host, info.Addr, migrate.MethodExec, spec)
	}
	if err != nil {
		return nil, migrate.Event{}, fmt.Errorf("start job %s on %s: %w", spec.ID, host, err)
	}
	f, err := ts.Recv()
	if err == io.EOF {
		err = ts.Finish(nil)
		if err == nil {
			err = errors.New("the target ended the call without starting the job")
		}
		return nil, migrate.Event{}, err
	}
	if err != nil {
		ts.Finish(nil)
		return nil, migrate.Event{}, fmt.Errorf("start job %s on %s: %w", spec.ID, host, err)
	}
	var ev migrate.Event
	if err := wire.Unmarshal(f.Payload, &ev); err != nil || ev.Kind != migrate.EventStarted {
		ts.Finish(nil)
		return nil, migrate.Event{}, fmt.Errorf("start job %s on %s: unexpected first message %q", spec.ID, host, ev.Kind)
	}
	return ts, ev, nil
}

// openSelf calls this host's own executor through an in-process stream.
func (s *Service) openSelf(ctx context.Context, spec migrate.Spec) (*rpc.ClientStream, error) {
	return rpc.Start(ctx, s.selfConn(ctx), migrate.MethodExec, spec, wire.DefaultMaxFrame)
}

// selfConn is a stream to this daemon's own cluster methods, without the
// network (a job its home runs itself). The serving goroutine ends when
// the call does.
func (s *Service) selfConn(ctx context.Context) rpc.Conn {
	cl, sv := rpc.Pipe()
	go func() {
		rpc.ServeStream(ctx, sv, rpc.Peer{Host: s.d.Self().Name, Addr: "self"}, s.d.Mux, wire.DefaultMaxFrame)
		sv.Done()
	}()
	return cl
}

// lostExit is the end of a job whose target went away.
func (s *Service) lostExit(id, host string, err error) migrate.Exit {
	why := fmt.Sprintf("host %s went away while running it (%v)", host, err)
	var re *rpc.Error
	if errors.As(err, &re) {
		why = fmt.Sprintf("host %s: %s", host, re.Message)
	}
	s.log.Warn("remote job lost", "id", id, "host", host, "err", err)
	return migrate.Exit{Code: -1, Lost: why, Host: host}
}
