package idle

import (
	"context"
	"os/user"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"sprite/api"
	"sprite/daemon"
	"sprite/idledb"
	"sprite/rpc"
	"sprite/wire"
)

// ReportEvery is the heartbeat: a report even when nothing changed.
const ReportEvery = 2 * time.Second

// Service runs the detector in the daemon, reports to the idle database,
// and serves `sprite idle`, `sprite grant`, `sprite hosts --watch` and the
// idle columns of `sprite hosts` on the local socket (it replaces the
// daemon's local.hosts with one that adds the database's facts).
type Service struct {
	dbs    *idledb.Service // this host's database service (running only on its host)
	d      *daemon.Daemon
	det    *Detector
	client *idledb.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup // Run, the reporter, the logind hook
	ready  atomic.Bool    // Start has finished: d, det and client are set
}

// NewService makes the service; dbs is the daemon's idle database service
// (so that the database's own host reaches it in process).
func NewService(dbs *idledb.Service) *Service { return &Service{dbs: dbs} }

// Name is "idle".
func (s *Service) Name() string { return "idle" }

// Detector is the running detector (for the executor: SetForeignJobs,
// Ignore); nil until Start has run, and if detection could not start.
func (s *Service) Detector() *Detector { return s.det }

// Client is this host's way to the idle database (the Go API for the other
// parts: Request, Renew, Release, Watch, Hold); nil until Start has run.
func (s *Service) Client() *idledb.Client { return s.client }

// Start starts detection and reporting and registers the local methods.
func (s *Service) Start(ctx context.Context, d *daemon.Daemon) error {
	cfg := d.Config()
	det, err := New(Config{IdleAfter: cfg.IdleAfter.Duration, CPUs: d.Self().CPUs, StateDir: d.StateDir(), ForeignFilter: InJobsCgroup,
		LoadSource: cfg.IdleLoad, Log: d.Log().With("part", "idle")})
	if err != nil {
		// Without detection the host is never lent; the rest of the
		// daemon still serves.
		d.Log().Error("idle detection not running; this host will not be lent", "err", err)
		return nil
	}
	s.d, s.det = d, det
	s.client = &idledb.Client{Self: cfg.Name, DBHost: cfg.IdleDB, Node: d.Node, Lookup: d.Members.Lookup, Local: s.dbs.DB}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() { det.Run(ctx) })
	s.wg.Go(func() { s.report(ctx) })
	if LogindPresent() {
		s.wg.Go(func() { det.RunHook(ctx, LogindHook) })
	}
	if cfg.IdleDB == "" {
		d.Log().Warn("no idle database configured: this host's idleness is not reported", "fix", idledb.ErrNoDatabase.Error())
	}
	d.Log().Info("idle detection running", "idle_after", cfg.IdleAfter.Duration, "load", cfg.IdleLoad,
		"devices", len(det.Watched()), "activity", det.State().Activity, "idledb", cfg.IdleDB)
	d.Local.Handle(api.MethodHosts, rpc.Unary(s.hosts))
	d.Local.Handle(api.MethodHostsWatch, s.watchHosts)
	d.Local.Handle(api.MethodIdle, rpc.Unary(s.idle))
	d.Local.Handle(api.MethodIdleHistory, rpc.Unary(s.history))
	d.Local.Handle(api.MethodGrant, s.grant)
	s.ready.Store(true)
	return nil
}

// Stop ends detection and reporting.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// ToReport turns a state into the database's report.
func ToReport(host, arch string, st State, now time.Time) idledb.Report {
	return idledb.Report{Host: host, CPUs: st.CPUs, Arch: arch, Activity: st.Activity,
		ForMs: max(0, now.Sub(st.Since).Milliseconds()), Load: st.Load, ForeignJobs: st.ForeignJobs,
		MaxForeign: st.Policy.MaxForeign, Forbid: st.Policy.Forbid}
}

// report sends every change at once and a heartbeat every ReportEvery,
// over one long-lived report stream (a unary call per report to a database
// too old for streams), opening a new stream whenever the old one dies.
func (s *Service) report(ctx context.Context) {
	ch, stop := s.det.Subscribe()
	defer stop()
	t := time.NewTimer(0)
	defer t.Stop()
	r := &reporter{s: s}
	defer r.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
		}
		if s.client.DBHost != "" {
			r.send(ctx, ToReport(s.d.Self().Name, s.d.Self().Arch, s.det.State(), time.Now()))
		}
		t.Reset(ReportEvery)
	}
}

// reporter holds the report stream and says once when reporting fails and
// once when it works again.
type reporter struct {
	s       *Service
	stream  *idledb.ReportStream
	unary   bool // the database has no report streams
	failing bool
}

func (r *reporter) send(ctx context.Context, rep idledb.Report) {
	err := r.try(ctx, rep)
	if err != nil && r.stream != nil { // a dead stream: one more try on a new one
		r.close()
		err = r.try(ctx, rep)
	}
	log := r.s.d.Log()
	switch {
	case err != nil && !r.failing && ctx.Err() == nil:
		log.Warn("cannot report idleness to the idle database; retrying every heartbeat", "idledb", r.s.client.DBHost, "err", err)
		r.failing = true
	case err == nil && r.failing:
		log.Info("reporting idleness again", "idledb", r.s.client.DBHost)
		r.failing = false
	}
}

func (r *reporter) try(ctx context.Context, rep idledb.Report) error {
	if r.unary {
		rctx, cancel := context.WithTimeout(ctx, ReportEvery)
		defer cancel()
		_, err := r.s.client.Report(rctx, rep)
		return err
	}
	if r.stream == nil {
		st, err := r.s.client.OpenReports(ctx) // lives as long as the reporter
		if rpc.CodeOf(err) == wire.CodeNoMethod {
			r.unary = true
			return r.try(ctx, rep)
		}
		if err != nil {
			return err
		}
		r.stream = st
	}
	return r.stream.Send(rep)
}

func (r *reporter) close() {
	if r.stream != nil {
		r.stream.Close()
		r.stream = nil
	}
}

// merge adds the database's facts to the membership rows.
func (s *Service) merge(rows []api.HostStatus, facts []idledb.HostFacts) []api.HostStatus {
	byName := map[string]idledb.HostFacts{}
	for _, f := range facts {
		byName[f.Name] = f
	}
	for i := range rows {
		f, ok := byName[rows[i].Name]
		if !ok && rows[i].Self {
			st := s.det.State()
			f = idledb.HostFacts{Activity: st.Activity, Idle: st.Idle, Load: st.Load, ForeignJobs: st.ForeignJobs,
				IdleForMs: st.IdleFor(time.Now()).Milliseconds()}
			ok = true
		}
		if ok {
			setFacts(&rows[i], f)
		}
	}
	return rows
}

func setFacts(r *api.HostStatus, f idledb.HostFacts) {
	r.Activity, r.Idle, r.Load, r.ForeignJobs, r.GrantedTo = f.Activity, f.Idle, f.Load, f.ForeignJobs, f.GrantedTo
	r.IdleFor = float64(f.IdleForMs/100) / 10
}

// Hosts is the membership list with the idle database's facts merged in,
// for the other parts (the file system's /sprite/hosts/<host>/ files: idle,
// idle_for, load, foreign_jobs, granted_to). It waits at most a second for
// the database; nil until Start has run.
func (s *Service) Hosts() []api.HostStatus {
	if !s.ready.Load() {
		return nil
	}
	rows, _ := s.hosts(context.Background(), rpc.Peer{}, struct{}{})
	return rows
}

func (s *Service) hosts(ctx context.Context, _ rpc.Peer, _ struct{}) ([]api.HostStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	facts, _ := s.client.Hosts(ctx) // without the database: membership and this host only
	return s.merge(s.d.Members.List(), facts), nil
}

// watchHosts streams rows: all of them first, then those that changed.
// It follows the database across its restarts until the caller goes.
func (s *Service) watchHosts(ctx context.Context, c *rpc.Call) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends when the caller's side of the stream does
		for {
			if _, err := c.Recv(); err != nil {
				cancel()
				return
			}
		}
	}()
	first := true
	for ctx.Err() == nil {
		ch, err := s.client.WatchHosts(ctx)
		if err != nil {
			if first {
				rows, _ := s.hosts(ctx, c.Peer, struct{}{})
				if c.Send(rows) != nil {
					return nil
				}
				first = false
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for facts := range ch {
			rows := s.d.Members.List()
			if !first {
				rows = slices.DeleteFunc(rows, func(r api.HostStatus) bool {
					return !slices.ContainsFunc(facts, func(f idledb.HostFacts) bool { return f.Name == r.Name })
				})
			}
			first = false
			if c.Send(s.merge(rows, facts)) != nil {
				return nil
			}
		}
	}
	return nil
}

// SetArgs changes the owner's policy; zero fields leave it as it is.
type SetArgs struct {
	Mode       string   `cbor:"1,keyasint,omitempty"`
	MaxForeign int      `cbor:"2,keyasint,omitempty"` // -1 clears the cap
	Forbid     []string `cbor:"3,keyasint,omitempty"`
	Allow      []string `cbor:"4,keyasint,omitempty"`
}

func (a SetArgs) empty() bool {
	return a.Mode == "" && a.MaxForeign == 0 && len(a.Forbid) == 0 && len(a.Allow) == 0
}

// Status is `sprite idle`'s answer.
type Status struct {
	Activity    string   `cbor:"1,keyasint" json:"activity"`
	Idle        bool     `cbor:"2,keyasint" json:"idle"`
	IdleFor     float64  `cbor:"3,keyasint" json:"idle_for_s"`
	InputAgo    float64  `cbor:"4,keyasint" json:"input_ago_s"` // -1: no input seen
	Load        float64  `cbor:"5,keyasint" json:"load"`
	CPUs        float64  `cbor:"6,keyasint" json:"cpus"`
	ForeignJobs int      `cbor:"7,keyasint" json:"foreign_jobs"`
	Policy      Policy   `cbor:"8,keyasint" json:"policy"`
	Devices     int      `cbor:"9,keyasint" json:"devices"`
	IdleDB      string   `cbor:"10,keyasint" json:"idledb"`
	IdleAfter   float64  `cbor:"11,keyasint" json:"idle_after_s"`
	Owners      []string `cbor:"12,keyasint,omitempty" json:"owners,omitempty"`
}

func (s *Service) idle(_ context.Context, p rpc.Peer, a SetArgs) (Status, error) {
	if !a.empty() {
		if err := s.mayChange(p); err != nil {
			return Status{}, err
		}
		pol := s.det.State().Policy
		if a.Mode != "" {
			pol.Mode = a.Mode
		}
		switch {
		case a.MaxForeign > 0:
			pol.MaxForeign = a.MaxForeign
		case a.MaxForeign < 0:
			pol.MaxForeign = 0
		}
		for _, u := range a.Forbid {
			if !slices.Contains(pol.Forbid, u) {
				pol.Forbid = append(pol.Forbid, u)
			}
		}
		pol.Forbid = slices.DeleteFunc(pol.Forbid, func(u string) bool { return slices.Contains(a.Allow, u) })
		if err := s.det.SetPolicy(pol); err != nil {
			return Status{}, rpc.Errorf(wire.CodeBadRequest, "%v", err)
		}
		s.d.Log().Info("idle policy changed", "uid", p.UID, "mode", pol.Mode, "max_foreign", pol.MaxForeign, "forbid", pol.Forbid)
	}
	st, now := s.det.State(), time.Now()
	out := Status{Activity: st.Activity, Idle: st.Idle, IdleFor: st.IdleFor(now).Seconds(), InputAgo: -1, Load: st.Load,
		CPUs: st.CPUs, ForeignJobs: st.ForeignJobs, Policy: st.Policy, Devices: len(s.det.Watched()),
		IdleDB: s.client.DBHost, IdleAfter: s.det.cfg.IdleAfter.Seconds(), Owners: s.d.Config().Owners}
	if !st.LastInput.IsZero() {
		out.InputAgo = now.Sub(st.LastInput).Seconds()
	}
	return out, nil
}

// mayChange allows root and the configured owners.
func (s *Service) mayChange(p rpc.Peer) error {
	if s.d.Config().IsOwner(p.UID) {
		return nil
	}
	return rpc.Errorf(wire.CodePermission, "only root or this host's owners (config owners = [...]) may change its idle policy")
}

func (s *Service) history(ctx context.Context, _ rpc.Peer, r idledb.HistoryRequest) ([]idledb.Period, error) {
	if r.Host == "" {
		r.Host = s.d.Self().Name
	}
	return s.client.History(ctx, r.Host)
}

// grant holds a request for the caller for as long as its connection
// lives, streaming every change of its holding; when the caller goes, the
// hosts are released at once.
func (s *Service) grant(ctx context.Context, c *rpc.Call) error {
	var q idledb.Request
	if err := c.Args(&q); err != nil {
		return err
	}
	if q.ID == "" {
		q.ID = "cli-" + strconv.Itoa(int(c.Peer.PID))
	}
	q.User = strconv.Itoa(int(c.Peer.UID))
	if u, err := user.LookupId(q.User); err == nil {
		q.User = u.Username
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends when the caller's side does
		for {
			if _, err := c.Recv(); err != nil {
				cancel()
				return
			}
		}
	}()
	sess := s.client.Hold(ctx, q)
	for g := range sess.C {
		if c.Send(g) != nil {
			cancel()
		}
	}
	return nil
}
