package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The lab runs with --idle-after 5s and 0.5 CPUs per host; h1 holds the
// idle database.
const labIdleAfter = 5 * time.Second

func allIdle(hs map[string]IdleRow) bool {
	n := 0
	for _, r := range hs {
		if r.Idle && r.Activity == "idle" {
			n++
		}
	}
	return n == 4
}

func waitAllIdle(t *testing.T) {
	t.Helper()
	if _, err := lab.WaitHosts("h1", 40*time.Second, allIdle); err != nil {
		t.Fatal(err)
	}
}

// TestIdleKeystrokeMakesHostActiveOnH1 is the acceptance of idle detection:
// every host idle after the threshold; `sprite lab type h3` shows h3
// active on h1 within 100 ms, over many trials; idle again after the
// threshold.
func TestIdleKeystrokeMakesHostActiveOnH1(t *testing.T) {
	waitAllIdle(t)
	time.Sleep(1500 * time.Millisecond)
	hs, _ := lab.IdleHosts("h1")
	for name, r := range hs {
		if r.IdleFor < 1 || !r.Idle || r.GrantedTo != "" || r.ForeignJobs != 0 {
			t.Errorf("%s on h1: %+v; want idle for some time, no grant, no foreign jobs", name, r)
		}
	}
	w, err := lab.Start("h1", "sprite", "hosts", "--watch", "--json")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Kill("TERM")
	if _, err := w.Next(5*time.Second, func(l Line) bool { return hasRow(l, "h3", "idle") }); err != nil {
		t.Fatalf("the watch's first list: %v", err)
	}
	const trials = 10
	var worst, sum time.Duration
	for i := range trials {
		before := time.Now()
		if r := lab.Run(t.Context(), "lab", "type", "h3"); r.Code != 0 {
			t.Fatalf("lab type h3: %s", r.Stderr)
		}
		typed := time.Now()
		l, err := w.Next(5*time.Second, func(l Line) bool { return hasRow(l, "h3", "active") })
		if err != nil {
			t.Fatalf("trial %d: h1 never saw h3 active: %v\n%s", i, err, DaemonLog("h3"))
		}
		// The keystroke happened between before and typed: l.At-before
		// bounds the delay from above.
		lag := l.At.Sub(before)
		t.Logf("trial %d: h3 active on h1 %v after `lab type` began (which took %v)", i, lag.Round(100*time.Microsecond), typed.Sub(before).Round(100*time.Microsecond))
		worst, sum = max(worst, lag), sum+lag
		if lag > 100*time.Millisecond {
			t.Errorf("trial %d: h3 active on h1 %v after the keystroke; want within 100ms", i, lag)
		}
		back, err := w.Next(labIdleAfter+5*time.Second, func(l Line) bool { return hasRow(l, "h3", "idle") })
		if err != nil {
			t.Fatalf("trial %d: h3 not idle again after the threshold: %v", i, err)
		}
		if d := back.At.Sub(typed); d < labIdleAfter-200*time.Millisecond {
			t.Fatalf("trial %d: h3 idle again %v after the keystroke; before the %v threshold", i, d, labIdleAfter)
		}
	}
	t.Logf("keystroke to active on h1 over %d trials: mean %v, worst %v (upper bounds)", trials, (sum / trials).Round(100*time.Microsecond), worst.Round(100*time.Microsecond))
}

// TestIdleCPUBurnerMakesHostBusyNotFlapping: load on h2 alone makes h2 busy,
// steadily, while the other hosts stay idle; it is idle again once the
// burner stops.
func TestIdleCPUBurnerMakesHostBusyNotFlapping(t *testing.T) {
	waitAllIdle(t)
	r := lab.Exec("h2", "sh", "-c", `timeout 120 sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!`)
	pid := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || pid == "" {
		t.Fatalf("start a burner on h2: %s", r.Stderr)
	}
	defer lab.Exec("h2", "kill", pid)
	start := time.Now()
	if _, err := lab.WaitHosts("h1", 30*time.Second, func(hs map[string]IdleRow) bool { return hs["h2"].Activity == "busy" }); err != nil {
		t.Fatal(err)
	}
	t.Logf("h2 busy on h1 %v after the burner started", time.Since(start).Round(100*time.Millisecond))
	// No flapping: h2 stays busy while the burner runs, and the others
	// (same machine, same /proc/loadavg) stay idle.
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		hs, err := lab.IdleHosts("h1")
		if err != nil {
			t.Fatal(err)
		}
		if hs["h2"].Activity != "busy" || hs["h2"].Idle {
			t.Fatalf("h2 flapped to %+v while the burner runs", hs["h2"])
		}
		for _, h := range []string{"h1", "h3", "h4"} {
			if !hs[h].Idle {
				t.Fatalf("%s is %+v; a burner on h2 must not make it busy", h, hs[h])
			}
		}
	}
	if hs, _ := lab.IdleHosts("h1"); hs["h2"].Load < 0.5 {
		t.Errorf("h2's load is %.2f with a burner; want at least its 0.5 CPUs", hs["h2"].Load)
	}
	lab.Exec("h2", "kill", pid)
	stopped := time.Now()
	if _, err := lab.WaitHosts("h1", 60*time.Second, func(hs map[string]IdleRow) bool { return hs["h2"].Idle }); err != nil {
		t.Fatal(err)
	}
	t.Logf("h2 idle again %v after the burner stopped", time.Since(stopped).Round(100*time.Millisecond))
}

// TestIdleOwnerNeverAndPermissions: `sprite idle --never` takes a host out at
// once, only for root (or owners); --auto brings it back.
func TestIdleOwnerNeverAndPermissions(t *testing.T) {
	waitAllIdle(t)
	if r := lab.ExecAs("h3", "alice", "sprite", "idle", "--never"); r.Code == 0 || !strings.Contains(r.Stderr, "only root") {
		t.Fatalf("alice set --never: exit %d %q", r.Code, r.Stderr)
	}
	if r := lab.Exec("h3", "sprite", "idle", "--never", "--max-foreign", "1", "--forbid", "mallory"); r.Code != 0 {
		t.Fatalf("sprite idle --never: %s", r.Stderr)
	}
	defer lab.Exec("h3", "sprite", "idle", "--auto", "--allow", "mallory", "--max-foreign", "-1")
	if _, err := lab.WaitHosts("h1", 5*time.Second, func(hs map[string]IdleRow) bool { return hs["h3"].Activity == "never" }); err != nil {
		t.Fatal(err)
	}
	// The policy survives a daemon restart.
	pidBefore := lab.Exec("h3", "cat", "/run/sprite/sprite.pid").Stdout
	if r := lab.Run(t.Context(), "lab", "stop", "h3"); r.Code != 0 {
		t.Fatalf("lab stop h3: %s", r.Stderr)
	}
	if r := lab.Run(t.Context(), "lab", "start", "h3"); r.Code != 0 {
		t.Fatalf("lab start h3: %s", r.Stderr)
	}
	if pidAfter := lab.Exec("h3", "cat", "/run/sprite/sprite.pid").Stdout; pidAfter == pidBefore || pidAfter == "" {
		t.Fatalf("h3's daemon did not restart: pid %q before, %q after", pidBefore, pidAfter)
	}
	var st struct {
		Activity string `json:"activity"`
		Policy   struct {
			Mode       string   `json:"mode"`
			MaxForeign int      `json:"max_foreign"`
			Forbid     []string `json:"forbid"`
		} `json:"policy"`
	}
	r := lab.Exec("h3", "sprite", "idle", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil || st.Activity != "never" || st.Policy.MaxForeign != 1 || fmt.Sprint(st.Policy.Forbid) != "[mallory]" {
		t.Fatalf("after restart: %+v %v %s", st, err, r.Stderr)
	}
	if r := lab.Exec("h3", "sprite", "idle", "--auto", "--allow", "mallory", "--max-foreign", "-1"); r.Code != 0 {
		t.Fatalf("sprite idle --auto: %s", r.Stderr)
	}
	if _, err := lab.WaitHosts("h1", 5*time.Second, func(hs map[string]IdleRow) bool { return hs["h3"].Idle }); err != nil {
		t.Fatal(err)
	}
}

// TestIdleTwoRequestersSplitFairlyAndTheDeadReleased: a requester asking
// for more hosts than exist gets what exists; two requesters on h4
// competing for the 3 other idle hosts end 2/1; one dying frees its grants
// within the lease (10 s); a requester whose daemon dies loses its grants
// when the lease runs out.
func TestIdleTwoRequestersSplitFairlyAndTheDeadReleased(t *testing.T) {
	waitAllIdle(t)
	// a asks for more hosts than exist: it gets what exists (h4 is its
	// own host, never granted to it).
	a, err := lab.Start("h4", "sprite", "grant", "-n", "10", "--id", "a", "--json")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill("TERM")
	if _, err := a.Next(10*time.Second, func(l Line) bool { return len(grantsOf(l).Hosts) == 3 }); err != nil {
		t.Fatalf("a (asking for 10) never held the 3 idle hosts: %v", err)
	}
	b, err := lab.Start("h4", "sprite", "grant", "-n", "3", "--id", "b", "--json")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Kill("TERM")
	hs, err := lab.WaitHosts("h1", 10*time.Second, func(hs map[string]IdleRow) bool {
		g := grantedTo(hs)
		return g["h4/a"] == 2 && g["h4/b"] == 1
	})
	if err != nil {
		t.Fatalf("no fair split: %v", err)
	}
	if hs["h4"].GrantedTo != "" {
		t.Fatalf("a requester on h4 was granted h4 itself: %+v", hs["h4"])
	}
	if _, err := a.Next(5*time.Second, func(l Line) bool { return strings.Contains(grantsOf(l).Event, "fairness") }); err != nil {
		t.Errorf("a was not told why it lost a host: %v", err)
	}
	// a dies without a word: its hosts go to b within the lease.
	died := time.Now()
	a.Kill("KILL")
	if _, err := lab.WaitHosts("h1", 10*time.Second, func(hs map[string]IdleRow) bool { return grantedTo(hs)["h4/b"] == 3 }); err != nil {
		t.Fatalf("a's grants not freed within the lease: %v", err)
	}
	t.Logf("a's hosts went to b %v after a died", time.Since(died).Round(100*time.Millisecond))
	// b's whole host dies (daemon killed): nobody renews, the lease (10 s)
	// runs out and the hosts are free again.
	if r := lab.Exec("h4", "sh", "-c", "kill -9 $(cat /run/sprite/sprite.pid)"); r.Code != 0 {
		t.Fatalf("kill h4's daemon: %s", r.Stderr)
	}
	died = time.Now()
	defer lab.Run(t.Context(), "lab", "start", "h4")
	if _, err := lab.WaitHosts("h1", 15*time.Second, func(hs map[string]IdleRow) bool { return len(grantedTo(hs)) == 0 }); err != nil {
		t.Fatalf("b's grants outlived its lease: %v", err)
	}
	t.Logf("b's grants freed %v after its daemon died (lease 10s)", time.Since(died).Round(100*time.Millisecond))
	if r := lab.Run(t.Context(), "lab", "start", "h4"); r.Code != 0 {
		t.Fatalf("lab start h4: %s", r.Stderr)
	}
}

type period struct {
	Start int64 `json:"start_ms"`
	End   int64 `json:"end_ms"`
}

func history(t *testing.T, host string) []period {
	t.Helper()
	r := lab.Exec("h1", "sprite", "idle", "history", host, "--json")
	var ps []period
	if err := json.Unmarshal([]byte(r.Stdout), &ps); err != nil {
		t.Fatalf("sprite idle history %s: %v %s%s", host, err, r.Stdout, r.Stderr)
	}
	return ps
}

// TestIdleDatabaseRestartKeepsHistoryAndGrants restarts h1's daemon (the
// database) under a requester on h4.
func TestIdleDatabaseRestartKeepsHistoryAndGrants(t *testing.T) {
	waitAllIdle(t)
	// Make a closed period on h2 for the history.
	if r := lab.Run(t.Context(), "lab", "type", "h2"); r.Code != 0 {
		t.Fatalf("lab type h2: %s", r.Stderr)
	}
	waitAllIdle(t)
	before := history(t, "h2")
	if len(before) < 2 || before[len(before)-2].End == 0 {
		t.Fatalf("h2's history before the restart: %+v; want a closed period and an open one", before)
	}
	g, err := lab.Start("h4", "sprite", "grant", "-n", "2", "--id", "r", "--json")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Kill("TERM")
	first, err := g.Next(10*time.Second, func(l Line) bool { return len(grantsOf(l).Hosts) == 2 })
	if err != nil {
		t.Fatalf("no 2 grants: %v", err)
	}
	held := grantsOf(first).Hosts
	if r := lab.Run(t.Context(), "lab", "stop", "h1"); r.Code != 0 {
		t.Fatalf("lab stop h1: %s", r.Stderr)
	}
	if r := lab.Run(t.Context(), "lab", "start", "h1"); r.Code != 0 {
		t.Fatalf("lab start h1: %s", r.Stderr)
	}
	restarted := time.Now()
	hs, err := lab.WaitHosts("h1", 20*time.Second, func(hs map[string]IdleRow) bool {
		return grantedTo(hs)["h4/r"] == 2 && allIdle(hs)
	})
	if err != nil {
		t.Fatalf("grants not re-established after the database restarted: %v\n%s", err, DaemonLog("h1"))
	}
	t.Logf("hosts re-registered and grants re-established %v after the restart", time.Since(restarted).Round(100*time.Millisecond))
	for _, h := range held {
		if hs[h.Host].GrantedTo != "h4/r" {
			t.Errorf("%s was granted before the restart but is %+v after", h.Host, hs[h.Host])
		}
	}
	after := history(t, "h2")
	if len(after) < len(before) {
		t.Fatalf("h2's history shrank over the restart: before %+v after %+v", before, after)
	}
	for i, p := range before[:len(before)-1] {
		if after[i] != p {
			t.Fatalf("h2's period %d changed over the restart: %+v -> %+v", i, p, after[i])
		}
	}
	if last := after[len(before)-1]; last.Start != before[len(before)-1].Start {
		t.Errorf("h2's open period was not carried over the restart: before %+v after %+v", before[len(before)-1], last)
	}
}
