package homenode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"sprite/migrate"
	"sprite/rpc"
	"sprite/wire"
)

// localJobs serves `sprite ps`: this home's jobs of the caller, or with
// All every home's jobs (others' commands hidden).
func (s *Service) localJobs(ctx context.Context, p rpc.Peer, a migrate.JobsArgs) ([]migrate.Job, error) {
	if !a.All {
		return s.list(p.UID, false), nil
	}
	return s.cluster(ctx, p.UID), nil
}

// cluster asks every up host's home for its jobs.
func (s *Service) cluster(ctx context.Context, uid uint32) []migrate.Job {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := s.list(uid, true)
	self := s.d.Self().Name
	for _, h := range s.d.Members.List() {
		if h.Name == self || h.State != "up" {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			var js []migrate.Job
			if err := s.d.Node.Call(cctx, h.Name, h.Addr, migrate.MethodHomeJobs, migrate.JobsArgs{All: true, UID: uid}, &js); err != nil {
				s.log.Debug("ps: host did not answer", "host", h.Name, "err", err)
				return
			}
			mu.Lock()
			out = append(out, js...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// homeJobs serves another home asking for this home's jobs.
func (s *Service) homeJobs(ctx context.Context, p rpc.Peer, a migrate.JobsArgs) ([]migrate.Job, error) {
	return s.list(a.UID, true), nil
}

// localKill serves `sprite kill` and Cmd.Signal.
func (s *Service) localKill(ctx context.Context, p rpc.Peer, a migrate.KillArgs) (struct{}, error) {
	a.UID = p.UID
	return struct{}{}, s.Kill(ctx, a)
}

// homeKill serves another home forwarding a kill for one of this home's
// jobs; the uid is the one the other home's kernel gave it.
func (s *Service) homeKill(ctx context.Context, p rpc.Peer, a migrate.KillArgs) (struct{}, error) {
	home, _, _ := strings.Cut(a.ID, ".")
	if home != s.d.Self().Name {
		return struct{}{}, rpc.Errorf(wire.CodeNotFound, "kill %s: not a job of %s", a.ID, home)
	}
	return struct{}{}, s.Kill(ctx, a)
}

// ErrNoJob means no job has the given id.
var ErrNoJob = errors.New("no such job")

// Kill sends a signal to a job by global id, as user a.UID (root may
// signal anyone's): at its home, which forwards it to the job's target.
func (s *Service) Kill(ctx context.Context, a migrate.KillArgs) error {
	if a.Signal <= 0 || a.Signal > 64 {
		return rpc.Errorf(wire.CodeBadRequest, "kill %s: bad signal %d (want 1 to 64)", a.ID, a.Signal)
	}
	home, _, ok := strings.Cut(a.ID, ".")
	if !ok {
		return rpc.Errorf(wire.CodeBadRequest, "kill %q: a job id is home.number (see `sprite ps`)", a.ID)
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if home != s.d.Self().Name {
		info, up := s.d.Members.Lookup(home)
		if !up {
			return rpc.Errorf(wire.CodeUnavailable, "kill %s: its home %s is not up", a.ID, home)
		}
		return s.d.Node.Call(cctx, home, info.Addr, migrate.MethodHomeKill, a, nil)
	}
	s.mu.Lock()
	j := s.jobs[a.ID]
	var rec migrate.Job
	if j != nil {
		rec = j.rec
	}
	s.mu.Unlock()
	if j == nil || rec.ID == "" {
		return rpc.Errorf(wire.CodeNotFound, "kill %s: %v", a.ID, ErrNoJob)
	}
	if a.UID != 0 && a.UID != rec.UID {
		return rpc.Errorf(wire.CodePermission, "kill %s: operation not permitted (the job belongs to %s)", a.ID, rec.User)
	}
	if err := s.signalOn(ctx, rec.Host, a.ID, syscall.Signal(a.Signal)); err != nil {
		return fmt.Errorf("kill %s on %s: %w", a.ID, rec.Host, err)
	}
	return nil
}
