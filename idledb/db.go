package idledb

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"sprite/pki"
	"sprite/rpc"
	"sprite/wire"
)

// Options configures a DB.
type Options struct {
	// Dir holds the badger files; "" keeps everything in memory.
	Dir string
	// Heartbeat is how often hosts are told to report (default 2s);
	// DownAfter is the silence after which a host is down (default five
	// heartbeats).
	Heartbeat, DownAfter time.Duration
	// Lease is how long a requester keeps its grants without renewing
	// (default 10s).
	Lease time.Duration
	Now   func() time.Time
	Log   *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 2 * time.Second
	}
	if o.DownAfter <= 0 {
		o.DownAfter = 5 * o.Heartbeat
	}
	if o.Lease <= 0 {
		o.Lease = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// maxWant bounds one request.
const maxWant = 1 << 16

// host is one host as the database knows it.
type host struct {
	rec         hostRecord
	up          bool
	activity    string
	since       time.Time // when activity began (database clock)
	load        float64
	foreign     int
	maxForeign  int
	forbid      []string
	seen        time.Time
	holder      *requester
	free        bool // in DB.free
	grantedAt   time.Time
	lastChanged time.Time
}

func (h *host) idle() bool { return h.up && h.activity == ActIdle }

// requester is one holder of grants.
type requester struct {
	id, host, user, arch string
	want                 int
	held                 []*host // in grant order
	expires              time.Time
	subs                 map[*grantSub]struct{}
}

// DB is the idle-host database. All its methods are safe for concurrent
// use; mu guards everything below it and is held for each operation,
// including the (unsynced, buffered) badger writes of a state change.
type DB struct {
	opts   Options
	st     *store
	log    *slog.Logger
	opened time.Time

	mu       sync.Mutex
	hosts    map[string]*host        // guarded by mu
	free     []*host                 // guarded by mu; idle, up, ungranted; longest idle first
	reqs     map[string]*requester   // guarded by mu; by id ("h2/pmake-1")
	hostSubs map[*HostWatch]struct{} // guarded by mu
}

// Open opens the database and restores what it knew: hosts (unknown until
// they report again), their idle history, requesters and their grants (each
// given a fresh lease, so holders have time to renew).
func Open(opts Options) (*DB, error) {
	opts.setDefaults()
	st, err := openStore(opts.Dir, opts.Log)
	if err != nil {
		return nil, err
	}
	db := &DB{opts: opts, st: st, opened: opts.Now(), log: opts.Log, hosts: map[string]*host{}, reqs: map[string]*requester{}, hostSubs: map[*HostWatch]struct{}{}}
	if err := db.restore(); err != nil {
		st.close()
		return nil, fmt.Errorf("restore idle database from %s: %w", opts.Dir, err)
	}
	return db, nil
}

func (db *DB) restore() error {
	now := db.opts.Now()
	err := each(db.st, "h/", func(_ []byte, r hostRecord) {
		db.hosts[r.Name] = &host{rec: r, activity: ActUnknown, since: now}
	})
	if err != nil {
		return err
	}
	return each(db.st, "r/", func(_ []byte, r reqRecord) {
		q := &requester{id: r.ID, host: r.Host, user: r.User, arch: r.Arch, want: r.Want,
			expires: now.Add(db.opts.Lease + db.opts.DownAfter), subs: map[*grantSub]struct{}{}}
		for _, n := range r.Held {
			if h := db.hosts[n]; h != nil && h.holder == nil {
				h.holder, h.grantedAt = q, now
				q.held = append(q.held, h)
			}
		}
		db.reqs[q.id] = q
	})
}

// Close closes the store. Stop Run first.
func (db *DB) Close() error { return db.st.close() }

// Run marks silent hosts down and expires leases until ctx ends.
func (db *DB) Run(ctx context.Context) {
	t := time.NewTicker(min(time.Second, db.opts.Heartbeat))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			db.Sweep()
		}
	}
}

// Sweep marks hosts silent for DownAfter down and drops requesters whose
// lease ran out; Run calls it every second.
func (db *DB) Sweep() {
	db.mu.Lock()
	defer db.mu.Unlock()
	now := db.opts.Now()
	changed := false
	for _, h := range db.hosts {
		if h.activity == ActUnknown && now.Sub(db.opened) > db.opts.DownAfter {
			// Known from before a restart and silent since: down.
			db.setActivityLocked(h, ActDown, now, now)
			db.markLocked(h, now)
			changed = true
		}
		if h.up && now.Sub(h.seen) > db.opts.DownAfter {
			db.log.Warn("idle database: host silent, marking it down", "host", h.rec.Name, "for", now.Sub(h.seen).Round(time.Millisecond))
			h.up = false
			db.setActivityLocked(h, ActDown, h.seen, now)
			db.markLocked(h, now)
			changed = true
		}
	}
	for _, r := range db.reqs {
		if now.After(r.expires) {
			db.log.Info("idle database: lease expired, releasing grants", "requester", r.id, "hosts", len(r.held))
			db.dropLocked(r, "lease expired")
			changed = true
		}
	}
	if changed {
		db.rebalanceLocked()
	}
}

// Report records a host's report. from is the caller's certified name; a
// report for another name is refused.
func (db *DB) Report(from string, r Report) (ReportReply, error) {
	if r.Host != from {
		return ReportReply{}, rpc.Errorf(wire.CodePermission, "idle report: your certificate is for %q but the report is for %q", from, r.Host)
	}
	if err := pki.ValidName(r.Host); err != nil {
		return ReportReply{}, rpc.Errorf(wire.CodeBadRequest, "idle report: %v", err)
	}
	switch r.Activity {
	case ActIdle, ActActive, ActBusy, ActNever:
	default:
		return ReportReply{}, rpc.Errorf(wire.CodeBadRequest, "idle report: unknown activity %q (want idle, active, busy or never)", r.Activity)
	}
	if r.ForMs < 0 || r.CPUs < 0 || r.Load < 0 || len(r.Forbid) > 1024 {
		return ReportReply{}, rpc.Errorf(wire.CodeBadRequest, "idle report: negative duration, cpus or load, or too many forbidden users")
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	now := db.opts.Now()
	h := db.hosts[r.Host]
	if h == nil {
		h = &host{rec: hostRecord{Name: r.Host}, activity: ActUnknown}
		db.hosts[r.Host] = h
	}
	if h.rec.CPUs != r.CPUs || h.rec.Arch != r.Arch {
		h.rec.CPUs, h.rec.Arch = r.CPUs, r.Arch
		db.st.putHost(h.rec)
	}
	wasUp := h.up
	h.up, h.seen, h.load = true, now, r.Load
	policy := h.foreign != r.ForeignJobs || h.maxForeign != r.MaxForeign || !slices.Equal(h.forbid, r.Forbid)
	h.foreign, h.maxForeign, h.forbid = r.ForeignJobs, r.MaxForeign, r.Forbid
	since := now.Add(-time.Duration(r.ForMs) * time.Millisecond)
	if since.Before(h.seen.Add(-24 * 365 * time.Hour)) {
		since = now // a nonsense duration; do not let it rank the host
	}
	changed := db.setActivityLocked(h, r.Activity, since, now)
	if h.holder != nil && slices.Contains(h.forbid, h.holder.user) {
		db.revokeLocked(h, "its owner forbids "+h.holder.user)
		changed = true
	}
	if changed || policy || !wasUp {
		db.markLocked(h, now)
	}
	if changed {
		db.rebalanceLocked()
	}
	return ReportReply{HeartbeatMs: db.opts.Heartbeat.Milliseconds()}, nil
}

// setActivityLocked moves h to activity act (begun at since), keeping the
// idle history, the free list and the holder right. It reports whether
// anything changed.
func (db *DB) setActivityLocked(h *host, act string, since, now time.Time) bool {
	if act == h.activity {
		return false
	}
	wasIdle := h.activity == ActIdle
	restored := h.activity == ActUnknown
	h.activity, h.since, h.lastChanged = act, since, now
	switch {
	case act == ActIdle && !wasIdle:
		if h.rec.OpenStart == 0 {
			h.rec.OpenStart = since.UnixMilli()
			db.st.putPeriod(h.rec.Name, Period{Start: h.rec.OpenStart})
			db.st.putHost(h.rec)
		} else {
			// Idle since before the database restarted: the same period.
			h.since = time.UnixMilli(h.rec.OpenStart)
		}
		if h.holder == nil {
			db.addFreeLocked(h)
		}
	case act != ActIdle && (wasIdle || restored && h.rec.OpenStart != 0):
		if h.rec.OpenStart != 0 {
			end := max(since.UnixMilli(), h.rec.OpenStart)
			db.st.putPeriod(h.rec.Name, Period{Start: h.rec.OpenStart, End: end})
			h.rec.OpenStart = 0
			db.st.putHost(h.rec)
			db.st.trim(h.rec.Name)
		}
		db.removeFreeLocked(h)
		if h.holder != nil {
			db.revokeLocked(h, act)
		}
	}
	return true
}

func freeLess(a, b *host) int {
	if c := a.since.Compare(b.since); c != 0 {
		return c
	}
	return strings.Compare(a.rec.Name, b.rec.Name)
}

func (db *DB) addFreeLocked(h *host) {
	if h.free || !h.idle() {
		return
	}
	i, _ := slices.BinarySearchFunc(db.free, h, freeLess)
	db.free = slices.Insert(db.free, i, h)
	h.free = true
}

func (db *DB) removeFreeLocked(h *host) {
	if !h.free {
		return
	}
	if i, ok := slices.BinarySearchFunc(db.free, h, freeLess); ok {
		db.free = slices.Delete(db.free, i, i+1)
	} else if i := slices.Index(db.free, h); i >= 0 {
		db.free = slices.Delete(db.free, i, i+1)
	}
	h.free = false
}

// eligible reports whether r may be granted h.
func eligible(r *requester, h *host) bool {
	return h.idle() && h.rec.Name != r.host && (r.arch == "" || r.arch == h.rec.Arch) &&
		!slices.Contains(h.forbid, r.user)
}

// rebalanceLocked hands free hosts to requesters that want more, fewest
// held first, longest-idle host first; when no host is free it moves hosts
// from a requester holding two or more above a needy one (fairness
// reclaim), until no such pair is left.
func (db *DB) rebalanceLocked() {
	skip := map[*requester]bool{}
	dirty := map[*requester]bool{}
	for {
		r := db.neediestLocked(skip)
		if r == nil {
			break
		}
		if h := db.freeForLocked(r); h != nil {
			db.grantLocked(r, h)
			dirty[r] = true
			continue
		}
		if h := db.reclaimForLocked(r); h != nil {
			dirty[h.holder] = true
			db.revokeLocked(h, "fairness: "+r.id+" holds fewer")
			db.grantLocked(r, h)
			dirty[r] = true
			continue
		}
		skip[r] = true
	}
	for r := range dirty {
		if db.reqs[r.id] == r {
			db.st.putReq(r.record())
		}
	}
}

func (db *DB) neediestLocked(skip map[*requester]bool) *requester {
	var best *requester
	for _, r := range db.reqs {
		if skip[r] || len(r.held) >= r.want {
			continue
		}
		if best == nil || len(r.held) < len(best.held) || len(r.held) == len(best.held) && r.id < best.id {
			best = r
		}
	}
	return best
}

func (db *DB) freeForLocked(r *requester) *host {
	for _, h := range db.free {
		if eligible(r, h) {
			return h
		}
	}
	return nil
}

// reclaimForLocked picks a host to move to r from the requester holding
// the most, if it holds at least two more than r.
func (db *DB) reclaimForLocked(r *requester) *host {
	var from *requester
	for _, x := range db.reqs {
		if x != r && len(x.held) >= len(r.held)+2 && (from == nil || len(x.held) > len(from.held)) {
			if slices.ContainsFunc(x.held, func(h *host) bool { return eligible(r, h) }) {
				from = x
			}
		}
	}
	if from == nil {
		return nil
	}
	// The most recently granted host: the holder has invested least in it.
	for i := len(from.held) - 1; i >= 0; i-- {
		if eligible(r, from.held[i]) {
			return from.held[i]
		}
	}
	return nil
}

func (db *DB) grantLocked(r *requester, h *host) {
	now := db.opts.Now()
	db.removeFreeLocked(h)
	h.holder, h.grantedAt = r, now
	r.held = append(r.held, h)
	db.log.Debug("idle database: granted", "host", h.rec.Name, "to", r.id)
	db.markLocked(h, now)
	db.tellLocked(r, "granted "+h.rec.Name)
}

// revokeLocked takes h from its holder and tells the holder why.
func (db *DB) revokeLocked(h *host, why string) {
	r := h.holder
	if r == nil {
		return
	}
	h.holder = nil
	r.held = slices.DeleteFunc(r.held, func(x *host) bool { return x == h })
	db.log.Info("idle database: grant withdrawn", "host", h.rec.Name, "from", r.id, "why", why)
	db.addFreeLocked(h)
	db.markLocked(h, db.opts.Now())
	db.tellLocked(r, "revoked "+h.rec.Name+": "+why)
	if db.reqs[r.id] == r {
		db.st.putReq(r.record())
	}
}

// dropLocked forgets r and frees its hosts.
func (db *DB) dropLocked(r *requester, why string) {
	for _, h := range slices.Clone(r.held) {
		h.holder = nil
		db.addFreeLocked(h)
		db.markLocked(h, db.opts.Now())
	}
	r.held = nil
	db.tellLocked(r, why)
	for s := range r.subs {
		s.closeLocked()
	}
	delete(db.reqs, r.id)
	db.st.delReq(r.id)
}

func (r *requester) record() reqRecord {
	rec := reqRecord{ID: r.id, Host: r.host, User: r.user, Want: r.want, Arch: r.arch}
	for _, h := range r.held {
		rec.Held = append(rec.Held, h.rec.Name)
	}
	return rec
}

func (db *DB) grantsLocked(r *requester, event string) Grants {
	g := Grants{ID: r.id, Want: r.want, Event: event, Hosts: []Grant{}, LeaseMs: max(0, r.expires.Sub(db.opts.Now()).Milliseconds())}
	for _, h := range r.held {
		g.Hosts = append(g.Hosts, Grant{Host: h.rec.Name, CPUs: h.rec.CPUs, Slots: slots(h)})
	}
	return g
}

// slots is how many jobs a holder may run on h at once.
func slots(h *host) int {
	n := max(1, int(h.rec.CPUs+0.5))
	if h.maxForeign > 0 {
		n = min(n, h.maxForeign)
	}
	return n
}

// requesterID names a requester of host from; ids are per host.
func requesterID(from, id string) (string, error) {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\x00") {
		return "", rpc.Errorf(wire.CodeBadRequest, "idle request: requester id %q: want 1 to 128 characters without '/'", id)
	}
	return from + "/" + id, nil
}

// Request sets the demand of requester q.ID of host from, renews its lease
// and grants what it can at once. Asking for more hosts than exist gets
// what exists; the rest follow as hosts turn idle.
func (db *DB) Request(from string, q Request) (Grants, error) {
	id, err := requesterID(from, q.ID)
	if err != nil {
		return Grants{}, err
	}
	if q.N < 0 || q.N > maxWant {
		return Grants{}, rpc.Errorf(wire.CodeBadRequest, "idle request: %d hosts: want 0 to %d", q.N, maxWant)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r := db.reqs[id]
	if r == nil {
		r = &requester{id: id, host: from, subs: map[*grantSub]struct{}{}}
		db.reqs[id] = r
	}
	r.user, r.arch, r.want = q.User, q.Arch, q.N
	r.expires = db.opts.Now().Add(db.opts.Lease)
	for len(r.held) > r.want { // a smaller demand gives hosts back
		db.revokeLocked(r.held[len(r.held)-1], "released")
	}
	db.rebalanceLocked()
	db.st.putReq(r.record())
	return db.grantsLocked(r, ""), nil
}

// Renew extends a requester's lease and returns its grants. An unknown
// requester (its lease ran out) gets CodeNotFound: request again.
func (db *DB) Renew(from, id string) (Grants, error) {
	rid, err := requesterID(from, id)
	if err != nil {
		return Grants{}, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r := db.reqs[rid]
	if r == nil {
		return Grants{}, rpc.Errorf(wire.CodeNotFound, "idle renew: no requester %q (its lease ran out or it released everything); request again", rid)
	}
	r.expires = db.opts.Now().Add(db.opts.Lease)
	return db.grantsLocked(r, ""), nil
}

// Release gives back the named hosts (lowering the demand by as many), or
// everything (and the requester is forgotten).
func (db *DB) Release(from string, rel Release) error {
	rid, err := requesterID(from, rel.ID)
	if err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r := db.reqs[rid]
	if r == nil {
		return nil
	}
	if len(rel.Hosts) == 0 {
		db.dropLocked(r, "released")
	} else {
		for _, n := range rel.Hosts {
			if h := db.hosts[n]; h != nil && h.holder == r {
				db.revokeLocked(h, "released")
				r.want = max(0, r.want-1)
			}
		}
		db.st.putReq(r.record())
	}
	db.rebalanceLocked()
	return nil
}

// Hosts returns every host's facts, by name.
func (db *DB) Hosts() []HostFacts {
	db.mu.Lock()
	defer db.mu.Unlock()
	now := db.opts.Now()
	out := make([]HostFacts, 0, len(db.hosts))
	for _, h := range db.hosts {
		out = append(out, factsLocked(h, now))
	}
	sortFacts(out)
	return out
}

func factsLocked(h *host, now time.Time) HostFacts {
	f := HostFacts{Name: h.rec.Name, Activity: h.activity, Idle: h.idle(), Load: h.load, CPUs: h.rec.CPUs,
		Arch: h.rec.Arch, ForeignJobs: h.foreign, MaxForeign: h.maxForeign}
	if !h.up && h.activity != ActUnknown {
		f.Activity = ActDown
	}
	if f.Idle {
		f.IdleForMs = now.Sub(h.since).Milliseconds()
	}
	if h.holder != nil {
		f.GrantedTo = h.holder.id
	}
	if !h.seen.IsZero() {
		f.SeenMs = h.seen.UnixMilli()
	}
	return f
}

// History returns host's idle periods, oldest first.
func (db *DB) History(name string) ([]Period, error) {
	return db.st.history(name)
}

// Idle counts the hosts that are up and idle, and those up.
func (db *DB) Idle() (idle, up int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, h := range db.hosts {
		if h.up {
			up++
		}
		if h.idle() {
			idle++
		}
	}
	return idle, up
}

func sortFacts(f []HostFacts) {
	slices.SortFunc(f, func(a, b HostFacts) int { return cmp.Compare(a.Name, b.Name) })
}
