package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sprite/daemon"
	"sprite/idle"
	"sprite/pki"
	"sprite/rpc"
	"sprite/wire"
)

// drainAfterExit bounds how long the executor waits for a job's output
// pipes to reach EOF once its process has exited (a background child may
// hold them); then whatever is left of the job is killed (like os/exec's
// WaitDelay).
const drainAfterExit = 2 * time.Second

// Executor is the daemon service that runs foreign jobs on this host (the
// target side of remote execution).
type Executor struct {
	idle *idle.Service // SetForeignJobs, Ignore; its detector may be nil
	d    *daemon.Daemon
	log  *slog.Logger
	self string      // the sprite binary, for the job init
	cg   *Cgroups    // nil: no usable cgroups (SIGSTOP/SIGKILL to the group instead)
	opts ExecOptions // from the config

	mu        sync.Mutex
	jobs      map[string]*job // guarded by mu
	stopping  bool            // guarded by mu; set by Stop
	evictions []Eviction      // guarded by mu; the latest maxEvictions

	seq    atomic.Uint64      // numbers job cgroups
	spares chan *spare        // job inits started ahead of need (keepSpares fills it)
	refill chan struct{}      // asks keepSpares for more
	criu   atomic.Value       // string: why checkpoints are unavailable ("" while probing)
	cancel context.CancelFunc // ends watchOwner and the probe
	wg     sync.WaitGroup     // watchOwner, the probe, eviction notices
}

var _ daemon.Service = (*Executor)(nil)

// ExecOptions are the target's rules for foreign jobs.
type ExecOptions struct {
	AllowRoot bool // run jobs of uid 0 (off by default)
	Nice      int  // nice value of foreign jobs (19)
	Idle      bool // SCHED_IDLE for foreign jobs
}

// job is one foreign job running here.
type job struct {
	spec  Spec
	start time.Time
	pid   int
	cg    *JobCgroup // nil without cgroups
	out   *sender    // the job's stream home, once started
	// home is a job of this host itself (its home ran it here after
	// finding no other host): no mounts, normal priority, never evicted.
	home    bool
	frozen  bool // guarded by Executor.mu
	started bool // guarded by Executor.mu; the home has the started event
	// lostWhy is set (under Executor.mu) when the executor ended the job
	// itself: its stream broke or the daemon stops.
	lostWhy string
}

// NewExecutor makes the executor; is is the daemon's idle service.
func NewExecutor(is *idle.Service, opts ExecOptions) *Executor {
	return &Executor{idle: is, opts: opts, jobs: map[string]*job{}, spares: make(chan *spare, spares), refill: make(chan struct{}, 1)}
}

// Name is "migrate".
func (e *Executor) Name() string { return "migrate" }

// Start registers the executor's methods.
func (e *Executor) Start(ctx context.Context, d *daemon.Daemon) error {
	e.d, e.log = d, d.Log().With("part", "migrate")
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("migrate: find the sprite binary for the job init: %w", err)
	}
	e.self = self
	cg, err := NewCgroups(idle.JobsCgroup)
	if err != nil {
		e.log.Warn("foreign jobs run without their own cgroups: eviction stops them with SIGSTOP", "err", err)
	} else {
		e.cg = cg
		// Jobs a killed daemon left running: their homes have rerun them.
		if err := cg.Cleanup(); err != nil {
			e.log.Warn("could not clean up the jobs of the previous daemon", "err", err)
		}
	}
	d.Mux.Handle(MethodExec, e.exec)
	d.Mux.Handle(MethodSignal, rpc.Unary(e.signal))
	d.Mux.Handle(MethodJobs, rpc.Unary(e.list))
	d.Mux.Handle(MethodEvict, rpc.Unary(e.evictRemote))
	d.Local.Handle(MethodLocalEvict, rpc.Unary(e.evictLocal))
	d.Local.Handle(MethodLocalEvictions, rpc.Unary(e.evictionsLocal))
	ctx, e.cancel = context.WithCancel(ctx)
	e.wg.Go(func() { e.criu.Store(probeCheckpoint(ctx)) })
	e.wg.Go(func() { e.keepSpares(ctx.Done()) })
	if e.idle != nil && e.idle.Detector() != nil {
		det := e.idle.Detector()
		det.OnInput(e.onInput)
		e.wg.Go(func() { e.watchOwner(ctx, det) })
	} else {
		e.log.Warn("no idle detection: foreign jobs here are evicted only by `sprite evict`")
	}
	return nil
}

// Stop kills every foreign job; their homes are told the host stopped.
func (e *Executor) Stop() {
	e.mu.Lock()
	e.stopping = true
	var all []*job
	for _, j := range e.jobs {
		j.lostWhy = "host " + e.d.Self().Name + "'s sprite daemon stopped"
		all = append(all, j)
	}
	e.mu.Unlock()
	for _, j := range all {
		e.kill(j)
	}
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
}

// validJobID checks a global id: a host name, a dot, a number.
func validJobID(id string) error {
	host, num, ok := strings.Cut(id, ".")
	if !ok || pki.ValidName(host) != nil {
		return fmt.Errorf("bad job id %q: want host.number", id)
	}
	if n, err := strconv.ParseUint(num, 10, 32); err != nil || n == 0 {
		return fmt.Errorf("bad job id %q: want host.number", id)
	}
	return nil
}

// check validates a spec that arrived from another host.
func (e *Executor) check(p rpc.Peer, s *Spec) error {
	if err := validJobID(s.ID); err != nil {
		return rpc.Errorf(wire.CodeBadRequest, "migrate.exec: %v", err)
	}
	if s.Home != p.Host || !strings.HasPrefix(s.ID, p.Host+".") {
		return rpc.Errorf(wire.CodePermission, "migrate.exec: %s may not start job %s of home %s", p.Host, s.ID, s.Home)
	}
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return rpc.Errorf(wire.CodeBadRequest, "migrate.exec: job %s has no command", s.ID)
	}
	if !filepath.IsAbs(s.Dir) {
		return rpc.Errorf(wire.CodeBadRequest, "migrate.exec: job %s: working directory %q is not absolute", s.ID, s.Dir)
	}
	for _, m := range s.Mounts {
		if !cleanAbs(m.Prefix) || !cleanAbs(m.Path) || m.Path == "/" {
			return rpc.Errorf(wire.CodeBadRequest, "migrate.exec: job %s: bad mount %q on %q", s.ID, m.Prefix, m.Path)
		}
	}
	if s.UID == 0 && !e.opts.AllowRoot {
		return rpc.Errorf(wire.CodePermission, "migrate.exec: %s refuses jobs that run as root (set jobs_as_root = true in its config to allow them)", e.d.Self().Name)
	}
	return nil
}

// exec serves MethodExec: it runs one job and carries its stdio.
func (e *Executor) exec(ctx context.Context, c *rpc.Call) error {
	var s Spec
	if err := c.Args(&s); err != nil {
		return err
	}
	if err := e.check(c.Peer, &s); err != nil {
		return err
	}
	j := &job{spec: s, start: time.Now(), home: c.Peer.Host == e.d.Self().Name, out: &sender{c: c}}
	e.mu.Lock()
	switch {
	case e.stopping:
		e.mu.Unlock()
		return rpc.Errorf(wire.CodeUnavailable, "migrate.exec: %s is stopping", e.d.Self().Name)
	case e.jobs[s.ID] != nil:
		e.mu.Unlock()
		return rpc.Errorf(wire.CodeBadRequest, "migrate.exec: job %s already runs here", s.ID)
	}
	e.jobs[s.ID] = j
	e.mu.Unlock()
	e.foreign()
	defer e.forget(j)

	t0 := time.Now()
	r, err := e.startJob(j)
	if err != nil {
		return rpc.Errorf(wire.CodeError, "%v", err)
	}
	defer r.close()
	e.log.Info("foreign job started", "id", s.ID, "home", s.Home, "user", s.User, "pid", j.pid, "argv", strings.Join(s.Argv, " "),
		"setup", time.Since(t0).Round(time.Microsecond))
	out := j.out
	if err := out.send(Event{Kind: EventStarted, ID: s.ID, Host: e.d.Self().Name, PID: j.pid}); err != nil {
		e.lost(j, "its home went away")
	}
	e.mu.Lock()
	j.started = true // eviction may tell the home now
	e.mu.Unlock()
	go r.input(c, func(why string) { e.lost(j, why) }) // ends when the stream is released, after we return
	exit := r.run(out)
	e.mu.Lock()
	why := j.lostWhy
	e.mu.Unlock()
	if why != "" {
		exit = Exit{Code: -1, Lost: why, Host: e.d.Self().Name}
	}
	e.log.Info("foreign job ended", "id", s.ID, "exit", exit.Code, "signal", exit.Signal, "lost", exit.Lost,
		"elapsed", time.Since(j.start).Round(time.Millisecond))
	return c.SetResult(exit)
}

// lost ends a job whose home cannot be reached (or that the executor ends).
func (e *Executor) lost(j *job, why string) {
	e.mu.Lock()
	if j.lostWhy == "" {
		j.lostWhy = why
	}
	e.mu.Unlock()
	e.log.Warn("killing foreign job", "id", j.spec.ID, "why", why)
	e.kill(j)
}

// kill kills every process of the job.
func (e *Executor) kill(j *job) {
	if j.cg != nil {
		if err := j.cg.Kill(); err == nil {
			return
		}
	}
	if j.pid > 0 {
		syscall.Kill(-j.pid, syscall.SIGKILL)
	}
}

func (e *Executor) forget(j *job) {
	e.mu.Lock()
	delete(e.jobs, j.spec.ID)
	e.mu.Unlock()
	e.foreign()
	e.gone(j.spec.ID)
	if j.cg != nil {
		// Off the job's reply path: the home has its exit already.
		e.wg.Go(func() {
			if pids, _ := j.cg.Pids(); len(pids) > 0 {
				j.cg.Kill()
			}
			if err := j.cg.Remove(); err != nil {
				e.log.Warn("remove job cgroup", "id", j.spec.ID, "err", err)
			}
		})
	}
}

// foreign tells the idle detector how many foreign jobs run here. It
// counts and tells under mu, so that two jobs ending at once cannot leave
// an older count behind (lock order: Executor.mu, then the detector's).
func (e *Executor) foreign() {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, j := range e.jobs {
		if !j.home {
			n++
		}
	}
	if e.idle != nil && e.idle.Detector() != nil {
		e.idle.Detector().SetForeignJobs(n)
	}
}

// signal serves MethodSignal: only the job's home may signal it.
func (e *Executor) signal(ctx context.Context, p rpc.Peer, a SignalArgs) (struct{}, error) {
	if a.Signal <= 0 || a.Signal > 64 {
		return struct{}{}, rpc.Errorf(wire.CodeBadRequest, "migrate.signal: bad signal %d", a.Signal)
	}
	e.mu.Lock()
	j := e.jobs[a.ID]
	e.mu.Unlock()
	if j == nil || j.pid == 0 {
		return struct{}{}, rpc.Errorf(wire.CodeNotFound, "migrate.signal: no job %s on %s", a.ID, e.d.Self().Name)
	}
	if j.spec.Home != p.Host {
		return struct{}{}, rpc.Errorf(wire.CodePermission, "migrate.signal: %s is not the home of job %s", p.Host, a.ID)
	}
	sig := syscall.Signal(a.Signal)
	if sig == syscall.SIGKILL {
		e.kill(j)
		return struct{}{}, nil
	}
	if err := syscall.Kill(-j.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return struct{}{}, fmt.Errorf("migrate.signal: job %s: %w", a.ID, err)
	}
	return struct{}{}, nil
}

// list serves MethodJobs: the foreign jobs running here.
func (e *Executor) list(ctx context.Context, p rpc.Peer, _ struct{}) ([]Job, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Job, 0, len(e.jobs))
	for _, j := range e.jobs {
		out = append(out, Job{ID: j.spec.ID, Home: j.spec.Home, Host: e.d.Self().Name, User: j.spec.User, UID: j.spec.UID,
			State: StateRunning, PID: j.pid, StartMs: j.start.UnixMilli()})
	}
	return out, nil
}

// sender serialises the events of one job on its stream.
type sender struct {
	mu sync.Mutex
	c  *rpc.Call
}

func (s *sender) send(ev Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.Send(ev)
}

// startErr is a job that could not start, said for the user at home.
func startErr(s Spec, host string, err error) error {
	return fmt.Errorf("start job %s on %s: %w", s.ID, host, err)
}
