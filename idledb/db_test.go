package idledb

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"sprite/rpc"
	"sprite/wire"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, dir string, c *clock) *DB {
	t.Helper()
	db, err := Open(Options{Dir: dir, Heartbeat: time.Second, Lease: 10 * time.Second, Now: c.now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newDB(t *testing.T) (*DB, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	db := open(t, t.TempDir(), c)
	t.Cleanup(func() { db.Close() })
	return db, c
}

func report(t *testing.T, db *DB, host, act string, forMs int64) {
	t.Helper()
	if _, err := db.Report(host, Report{Host: host, CPUs: 1, Arch: "amd64", Activity: act, ForMs: forMs}); err != nil {
		t.Fatal(err)
	}
}

func names(g Grants) []string {
	var out []string
	for _, h := range g.Hosts {
		out = append(out, h.Host)
	}
	return out
}

func request(t *testing.T, db *DB, from, id string, n int) Grants {
	t.Helper()
	g, err := db.Request(from, Request{ID: id, N: n, User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGrantsLongestIdleFirst(t *testing.T) {
	db, _ := newDB(t)
	report(t, db, "h1", ActIdle, 5_000)
	report(t, db, "h2", ActIdle, 50_000)
	report(t, db, "h3", ActIdle, 500)
	report(t, db, "h4", ActActive, 0)
	g := request(t, db, "h9", "a", 2)
	if fmt.Sprint(names(g)) != "[h2 h1]" {
		t.Fatalf("granted %v, want the two longest idle [h2 h1]", names(g))
	}
	// More than exist: what exists (h4 is not idle).
	g = request(t, db, "h9", "a", 10)
	if fmt.Sprint(names(g)) != "[h2 h1 h3]" {
		t.Fatalf("asked for 10 of 3 idle hosts, got %v", names(g))
	}
}

func TestRequesterNeverGetsItsOwnHostOrAForbiddingOne(t *testing.T) {
	db, _ := newDB(t)
	report(t, db, "h1", ActIdle, 1000)
	if _, err := db.Report("h2", Report{Host: "h2", CPUs: 2, Arch: "amd64", Activity: ActIdle, ForMs: 1000, Forbid: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Report("h3", Report{Host: "h3", CPUs: 8, Arch: "arm64", Activity: ActIdle, ForMs: 1000, MaxForeign: 3}); err != nil {
		t.Fatal(err)
	}
	g := request(t, db, "h1", "a", 5)
	if fmt.Sprint(names(g)) != "[h3]" || g.Hosts[0].Slots != 3 {
		t.Fatalf("h1/a (alice) got %+v; want only h3 with 3 slots (h1 is its own, h2 forbids alice)", g.Hosts)
	}
	g, _ = db.Request("h1", Request{ID: "b", N: 5, User: "bob", Arch: "amd64"})
	if fmt.Sprint(names(g)) != "[h2]" {
		t.Fatalf("bob on amd64 got %v, want [h2]", names(g))
	}
}

func TestReportForAnotherHostRefused(t *testing.T) {
	db, _ := newDB(t)
	_, err := db.Report("h2", Report{Host: "h3", CPUs: 1, Activity: ActIdle})
	if rpc.CodeOf(err) != wire.CodePermission {
		t.Fatalf("h2 reporting for h3: %v, want a permission error", err)
	}
	if _, err := db.Report("h2", Report{Host: "h2", Activity: "asleep"}); rpc.CodeOf(err) != wire.CodeBadRequest {
		t.Fatalf("bad activity: %v", err)
	}
	if len(db.Hosts()) != 0 {
		t.Fatalf("refused reports left hosts behind: %v", db.Hosts())
	}
}

func TestFairSplitBetweenTwoRequesters(t *testing.T) {
	db, _ := newDB(t)
	for _, h := range []string{"h1", "h2", "h3"} {
		report(t, db, h, ActIdle, 1000)
	}
	a := request(t, db, "h4", "a", 3)
	if len(a.Hosts) != 3 {
		t.Fatalf("a got %v", names(a))
	}
	ach, stop, err := db.Watch("h4", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	<-ach // the current holding
	b := request(t, db, "h4", "b", 3)
	if len(b.Hosts) != 1 {
		t.Fatalf("b got %v after a held 3; want 1 (fair split 2/1)", names(b))
	}
	select {
	case g := <-ach:
		if len(g.Hosts) != 2 || g.Event == "" {
			t.Fatalf("a was told %+v; want 2 hosts and why one went", g)
		}
	default:
		t.Fatal("a was not told it lost a host")
	}
	// a lets go: b gets everything it asked for.
	if err := db.Release("h4", Release{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	b, _ = db.Renew("h4", "b")
	if len(b.Hosts) != 3 {
		t.Fatalf("after a released, b holds %v", names(b))
	}
}

func TestBusyHostWithdrawnAndHolderToldAtOnce(t *testing.T) {
	db, _ := newDB(t)
	report(t, db, "h1", ActIdle, 1000)
	report(t, db, "h2", ActIdle, 1000)
	request(t, db, "h9", "a", 2)
	ch, stop, _ := db.Watch("h9", "a")
	defer stop()
	<-ch
	report(t, db, "h2", ActActive, 0)
	select {
	case g := <-ch:
		if fmt.Sprint(names(g)) != "[h1]" || g.Event != "revoked h2: active" {
			t.Fatalf("told %+v", g)
		}
	default:
		t.Fatal("holder not told at once")
	}
	// h2 idle again: granted back to the requester that still wants it.
	report(t, db, "h2", ActIdle, 0)
	if g := <-ch; len(g.Hosts) != 2 {
		t.Fatalf("after h2 idle again: %+v", g)
	}
}

func TestSilentHostDownAndLeaseExpiry(t *testing.T) {
	db, c := newDB(t)
	report(t, db, "h1", ActIdle, 1000)
	report(t, db, "h2", ActIdle, 1000)
	request(t, db, "h9", "a", 2)
	c.add(3 * time.Second)
	report(t, db, "h1", ActIdle, 4000)
	c.add(3 * time.Second) // h2 silent for 6s > 5 heartbeats
	db.Sweep()
	f := db.Hosts()
	if f[1].Activity != ActDown || f[1].GrantedTo != "" || f[0].GrantedTo != "h9/a" {
		t.Fatalf("facts %+v; want h2 down and withdrawn, h1 still granted", f)
	}
	c.add(5 * time.Second) // lease (10s) ran out: no renewal
	report(t, db, "h1", ActIdle, 12000)
	db.Sweep()
	if f := db.Hosts(); f[0].GrantedTo != "" {
		t.Fatalf("expired lease still holds h1: %+v", f[0])
	}
	if _, err := db.Renew("h9", "a"); rpc.CodeOf(err) != wire.CodeNotFound {
		t.Fatalf("renew after expiry: %v, want not found", err)
	}
}

func TestRestartKeepsHistoryAndGrants(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	db := open(t, dir, c)
	report(t, db, "h1", ActIdle, 0)
	report(t, db, "h2", ActIdle, 0)
	c.add(10 * time.Second)
	report(t, db, "h1", ActActive, 0) // h1: one closed period of 10s
	c.add(time.Second)
	report(t, db, "h1", ActIdle, 0) // and an open one
	request(t, db, "h9", "a", 5)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Second)
	db = open(t, dir, c)
	defer db.Close()
	hist, err := db.History("h1")
	if err != nil || len(hist) != 2 || hist[0].End-hist[0].Start != 10_000 || hist[1].End != 0 {
		t.Fatalf("h1's history after restart: %+v %v", hist, err)
	}
	g, err := db.Renew("h9", "a")
	if err != nil || len(g.Hosts) != 2 {
		t.Fatalf("renew after restart: %+v %v; want both grants back", g, err)
	}
	// Hosts re-register; the open period goes on, the grant stays.
	report(t, db, "h1", ActIdle, 12_000)
	report(t, db, "h2", ActIdle, 12_000)
	f := db.Hosts()
	if f[0].GrantedTo != "h9/a" || f[1].GrantedTo != "h9/a" || f[1].IdleForMs != 13_000 {
		t.Fatalf("facts after re-register: %+v", f)
	}
	if h, _ := db.History("h1"); len(h) != 2 {
		t.Fatalf("re-registering opened a new period: %+v", h)
	}
}

func TestUnreportedHostAfterRestartGoesDown(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	db := open(t, dir, c)
	report(t, db, "h1", ActIdle, 0)
	request(t, db, "h9", "a", 1)
	db.Close()
	db = open(t, dir, c)
	defer db.Close()
	if f := db.Hosts(); f[0].Activity != ActUnknown || f[0].Idle {
		t.Fatalf("restored host: %+v; want unknown, not idle", f[0])
	}
	c.add(6 * time.Second)
	db.Request("h9", Request{ID: "a", N: 1})
	db.Sweep()
	if f := db.Hosts(); f[0].Activity != ActDown || f[0].GrantedTo != "" {
		t.Fatalf("never re-registered: %+v; want down and withdrawn", f[0])
	}
}

func TestHostWatchCoalesces(t *testing.T) {
	db, _ := newDB(t)
	w := db.WatchHosts()
	defer w.Close()
	report(t, db, "h1", ActIdle, 0)
	report(t, db, "h1", ActActive, 0)
	report(t, db, "h2", ActBusy, 0)
	<-w.C()
	f := w.Take()
	if len(f) != 2 || f[0].Activity != ActActive || f[1].Activity != ActBusy {
		t.Fatalf("took %+v", f)
	}
}
