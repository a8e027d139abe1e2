package homenode

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sprite/daemon"
	"sprite/idle"
	"sprite/migrate"
	"sprite/rpc"
)

// firstSyntheticID numbers jobs whose caller already has a job (a Go
// program running several): above any Linux pid (pid_max <= 2^22).
const firstSyntheticID = 1 << 22

// Service is the home side of remote execution in the daemon.
type Service struct {
	// Settle, when set (before Start), returns once every change on this
	// host's disk so far has reached the given host, where it may cache
	// what changed (package fsd): a job started there then sees what its
	// home wrote first.
	Settle func(ctx context.Context, host string)

	idle *idle.Service
	d    *daemon.Daemon
	log  *slog.Logger

	mu       sync.Mutex
	jobs     map[string]*job     // guarded by mu; by global id
	sessions map[string]*session // guarded by mu; by sessionKey
	next     uint64              // guarded by mu; the next synthetic id
	ready    atomic.Bool         // Start has run (the file system asks earlier)
}

var _ daemon.Service = (*Service)(nil)

// job is one remote process of this home.
type job struct {
	rec     migrate.Job     // guarded by Service.mu once registered
	session *session        // guarded by Service.mu; nil outside a session
	req     migrate.Request // as the caller asked
	in      inputRelay      // the caller's input, to the current target
	// killing is set when the home ended the current attempt itself (an
	// eviction, sprite migrate): its end is not the job's end.
	killing atomic.Bool
	moveTo  string // guarded by Service.mu; sprite migrate's target for the next attempt
}

// New makes the service; is is the daemon's idle service (the way to the
// idle database).
func New(is *idle.Service) *Service {
	return &Service{idle: is, jobs: map[string]*job{}, sessions: map[string]*session{}, next: firstSyntheticID}
}

// Name is "homenode".
func (s *Service) Name() string { return "homenode" }

// Start registers the local and cluster methods.
func (s *Service) Start(ctx context.Context, d *daemon.Daemon) error {
	s.d, s.log = d, d.Log().With("part", "homenode")
	d.Local.Handle(migrate.MethodLocalRun, s.run)
	d.Local.Handle(migrate.MethodLocalSession, s.session)
	d.Local.Handle(migrate.MethodLocalJobs, rpc.Unary(s.localJobs))
	d.Local.Handle(migrate.MethodLocalKill, rpc.Unary(s.localKill))
	d.Local.Handle(migrate.MethodLocalMigrate, rpc.Unary(s.localMigrate))
	d.Mux.Handle(migrate.MethodHomeJobs, rpc.Unary(s.homeJobs))
	d.Mux.Handle(migrate.MethodHomeKill, rpc.Unary(s.homeKill))
	s.ready.Store(true)
	return nil
}

// Stop has nothing to wait for: each job's relay is owned by its call,
// which ends when the daemon's streams do.
func (s *Service) Stop() {}

// allocID gives a job its global id: home.pid of the calling process when
// that is free, else a synthetic number above every pid.
func (s *Service) allocID(pid int32) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	self := s.d.Self().Name
	id := fmt.Sprintf("%s.%d", self, pid)
	if _, used := s.jobs[id]; !used && pid > 0 {
		s.jobs[id] = &job{} // reserved until registered
		return id
	}
	for {
		s.next++
		id = fmt.Sprintf("%s.%d", self, s.next)
		if _, used := s.jobs[id]; !used {
			s.jobs[id] = &job{}
			return id
		}
	}
}

func (s *Service) register(id string, j *job) {
	s.mu.Lock()
	s.jobs[id] = j
	s.mu.Unlock()
}

// host is where the job runs now.
func (j *job) host() string { return j.rec.Host }

func (s *Service) drop(id string) {
	s.mu.Lock()
	delete(s.jobs, id)
	s.mu.Unlock()
}

// mounts lists this home's exports as the job must see them, and whether
// dir is inside one of them (or inside the global namespace itself).
func (s *Service) mounts(dir string) ([]migrate.Mount, bool) {
	cfg := s.d.Config()
	inside := within(dir, cfg.Mount)
	var out []migrate.Mount
	for _, e := range cfg.Exports {
		out = append(out, migrate.Mount{Prefix: e.Prefix, Path: e.Path})
		if within(dir, e.Path) {
			inside = true
		}
	}
	return out, inside
}

func within(p, dir string) bool {
	if dir == "" {
		return false
	}
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+"/") || dir == "/"
}

// exportList names the exported directories for a message.
func (s *Service) exportList() string {
	var ps []string
	for _, e := range s.d.Config().Exports {
		ps = append(ps, e.Path)
	}
	if len(ps) == 0 {
		return "none"
	}
	return strings.Join(ps, ", ")
}

// list returns this home's jobs as the asking uid may see them: all of
// them (details of others' hidden) or only its own.
func (s *Service) list(uid uint32, all bool) []migrate.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []migrate.Job{}
	for _, j := range s.jobs {
		if j.rec.ID == "" {
			continue // reserved, not yet placed
		}
		mine := uid == 0 || j.rec.UID == uid
		if !mine && !all {
			continue
		}
		r := j.rec
		if !mine {
			r.Command = ""
		}
		out = append(out, r)
	}
	return out
}

// callTimeout bounds a control call to another host.
const callTimeout = 5 * time.Second
