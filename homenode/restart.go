package homenode

import (
	"context"
	"fmt"
	"strings"

	"sprite/migrate"
	"sprite/rpc"
	"sprite/wire"
)

// restart starts job j again after its attempt on old ended (evicted,
// moved, or lost with its host): on the host sprite migrate named, else
// on another idle host (its session's, or one the idle database grants),
// else here at home. The caller is told in one line, unless the job holds
// its output (then the restart is invisible but for where it ran).
func (s *Service) restart(ctx context.Context, c *rpc.Call, j *job, spec migrate.Spec, old, why string) (placement, *rpc.ClientStream, error) {
	self := s.d.Self().Name
	s.mu.Lock()
	moveTo := j.moveTo
	j.moveTo = ""
	s.mu.Unlock()
	home := placement{host: self, release: func() {}}
	pl := placement{host: moveTo, release: func() {}}
	if moveTo == "" {
		req := j.req
		req.Host = ""
		p, err := s.place(ctx, req, spec, map[string]bool{old: true})
		if err != nil || p.host == "" {
			p = home
		}
		pl = p
	}
	ts, started, err := s.startOn(ctx, pl.host, spec)
	if err != nil && pl.host != self {
		s.log.Warn("restart elsewhere failed: running the job at home", "id", spec.ID, "host", pl.host, "err", err)
		pl.release()
		pl = home
		ts, started, err = s.startOn(ctx, self, spec)
	}
	if err != nil {
		pl.release()
		return pl, nil, fmt.Errorf("job %s was %s, and starting it again failed: %v", spec.ID, why, err)
	}
	j.in.switchTo(ts)
	s.mu.Lock()
	j.rec.Host, j.rec.PID, j.rec.State, j.session = pl.host, started.PID, migrate.StateRunning, pl.session
	s.mu.Unlock()
	where := pl.host
	if where == self {
		where += " (home)"
	}
	s.log.Info("job restarted", "id", spec.ID, "why", why, "from", old, "on", pl.host)
	if !j.req.HoldOutput {
		c.Send(migrate.Event{Kind: migrate.EventNotice, Host: pl.host,
			Reason: fmt.Sprintf("job %s %s; restarted from the start on %s", spec.ID, why, where)})
	}
	c.Send(migrate.Event{Kind: migrate.EventStarted, ID: spec.ID, Host: pl.host, PID: started.PID})
	return pl, ts, nil
}

// localMigrate serves `sprite migrate ID HOST`: the job's owner (or root)
// moves it by the restart mechanism.
func (s *Service) localMigrate(ctx context.Context, p rpc.Peer, a migrate.MigrateArgs) (struct{}, error) {
	home, _, _ := strings.Cut(a.ID, ".")
	if home != s.d.Self().Name {
		return struct{}{}, rpc.Errorf(wire.CodeBadRequest, "sprite migrate %s: run it on the job's home, %s", a.ID, home)
	}
	if a.Host != s.d.Self().Name {
		if _, up := s.d.Members.Lookup(a.Host); !up {
			return struct{}{}, rpc.Errorf(wire.CodeUnavailable, "sprite migrate %s: host %s is not up", a.ID, a.Host)
		}
	}
	s.mu.Lock()
	j := s.jobs[a.ID]
	if j == nil || j.rec.ID == "" {
		s.mu.Unlock()
		return struct{}{}, rpc.Errorf(wire.CodeNotFound, "sprite migrate %s: %v", a.ID, ErrNoJob)
	}
	if p.UID != 0 && p.UID != j.rec.UID {
		s.mu.Unlock()
		return struct{}{}, rpc.Errorf(wire.CodePermission, "sprite migrate %s: operation not permitted (the job belongs to %s)", a.ID, j.rec.User)
	}
	host := j.rec.Host
	if host == a.Host {
		s.mu.Unlock()
		return struct{}{}, nil
	}
	j.moveTo = a.Host
	s.mu.Unlock()
	if !j.restartable() {
		s.mu.Lock()
		j.moveTo = ""
		s.mu.Unlock()
		return struct{}{}, rpc.Errorf(wire.CodeBadRequest, "sprite migrate %s: the job has read input from home, so it cannot be moved by restarting it", a.ID)
	}
	s.endAttempt(ctx, j, host)
	return struct{}{}, nil
}
