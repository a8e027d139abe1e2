package homenode

import (
	"context"
	"fmt"
	"time"

	"sprite/idledb"
	"sprite/migrate"
	"sprite/rpc"
	"sprite/wire"
)

// placement is where a job goes: host "" means at home, why says why.
type placement struct {
	host    string
	why     string
	session *session
	release func()
}

// place picks the job's target: the host asked for, one of its session's
// hosts, or one granted by the idle database for this job alone; never a
// host in exclude (one the job was just evicted from).
func (s *Service) place(ctx context.Context, req migrate.Request, spec migrate.Spec, exclude map[string]bool) (placement, error) {
	none := func(why string) (placement, error) { return placement{why: why, release: func() {}}, nil }
	self := s.d.Self().Name
	switch {
	case req.Host == self:
		return none(fmt.Sprintf("%s is this host", self))
	case req.Host != "":
		return placement{host: req.Host, release: func() {}}, nil
	case req.Session != "":
		return s.placeInSession(spec.UID, req.Session, exclude)
	}
	db := s.idle.Client()
	if db == nil {
		return none("no idle database")
	}
	rid := fmt.Sprintf("mig-%s-%d", spec.ID, len(exclude))
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	g, err := db.Request(qctx, idledb.Request{ID: rid, User: spec.User, N: 1})
	cancel()
	release := func() {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		db.Release(rctx, rid)
		cancel()
	}
	if err != nil {
		release()
		return none("the idle database did not answer: " + err.Error())
	}
	if len(g.Hosts) == 0 || exclude[g.Hosts[0].Host] {
		release()
		return none("no host is idle")
	}
	return placement{host: g.Hosts[0].Host, release: release}, nil
}

// placeInSession takes a free slot on the session's least loaded host.
func (s *Service) placeInSession(uid uint32, name string, exclude map[string]bool) (placement, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[sessionKey(uid, name)]
	if ss == nil {
		return placement{}, rpc.Errorf(wire.CodeNotFound, "no session %q for this user (is its pmake still running?)", name)
	}
	best, bestLoad := "", 2.0
	for _, g := range ss.hosts {
		used := ss.running[g.Host]
		if used >= max(g.Slots, 1) || exclude[g.Host] {
			continue
		}
		if load := float64(used) / float64(max(g.Slots, 1)); load < bestLoad {
			best, bestLoad = g.Host, load
		}
	}
	if best == "" {
		why := "every host of the session is busy"
		if len(ss.hosts) == 0 {
			why = "the session holds no idle host"
		}
		return placement{why: why, release: func() {}}, nil
	}
	ss.running[best]++
	return placement{host: best, session: ss, release: func() {
		s.mu.Lock()
		ss.running[best]--
		s.mu.Unlock()
	}}, nil
}
