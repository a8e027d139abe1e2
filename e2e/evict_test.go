package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Eviction across lab hosts: alice's job from h1 runs on h2; the owner of
// h2 types; the job leaves h2 and finishes elsewhere (or waits).

// cpuJob counts to n in the shell (a few seconds of CPU on a lab host),
// then prints its result: output only at the end.
func cpuJob(n int) string {
	return `i=0; while [ $i -lt ` + itoa(n) + ` ]; do i=$((i+1)); done; echo result $i`
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// waitOn waits until alice's job with command cmd runs on host.
func waitOn(t *testing.T, cmd, host string, s ...*Stream) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last []map[string]any
	for time.Now().Before(deadline) {
		last = migJobs(t, "h1", "alice", false)
		for _, j := range last {
			if j["command"] == cmd && j["host"] == host {
				return j
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	var said []string
	for _, st := range s { // what the command said instead
		for len(said) < 20 {
			l, err := st.Next(100*time.Millisecond, func(Line) bool { return true })
			if err != nil {
				break
			}
			said = append(said, l.Text)
		}
	}
	t.Fatalf("no job %q on %s in h1's sprite ps: %v; the command said %q", cmd, host, last, said)
	return nil
}

// evictions is `sprite evictions --json` on host.
func evictions(t *testing.T, host string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	out := lab.MustSh(t, host, "", "sprite evictions --json")
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatalf("sprite evictions --json: %v\n%s", err, out)
	}
	return evs
}

func TestEvictRestartOnOwnerInput(t *testing.T) {
	lab.WaitFS(t, "h1", "h2")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	// The owner of h2 has a process of their own there.
	owner, err := lab.Start("h2", "sleep", "3333")
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Kill("KILL")
	job := cpuJob(3000000)
	s, err := lab.Start("h1", "su", "alice", "-s", "/bin/sh", "-c", "cd "+proj+` && sprite mig -n --hold --host h2 -- sh -c '`+job+`' 2>&1; echo exit $?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h2", "sh -c i=0")
	j := waitOn(t, "sh -c "+job, "h2", s)
	before := len(evictions(t, "h2"))
	if r := lab.Run(t.Context(), "lab", "type", "h2"); r.Code != 0 {
		t.Fatalf("lab type h2: %s", r.Stderr)
	}
	typed := time.Now()
	waitProc(t, "h2", "sh -c i=0", false, 3*time.Second)
	t.Logf("the job left h2 %v after the keystroke", time.Since(typed).Round(time.Millisecond))
	lines := untilExit(t, s, "the evicted job")
	if strings.Join(lines, "\n") != "result 3000000\nexit 0" {
		t.Fatalf("the evicted job's output (want it once, then exit 0): %q", lines)
	}
	evs := evictions(t, "h2")
	if len(evs) <= before {
		t.Fatal("h2 recorded no eviction")
	}
	e := evs[len(evs)-1]
	if e["id"] != j["id"] || e["input_ns"] == nil || e["gone_ns"] == nil {
		t.Fatalf("h2's eviction record: %v", e)
	}
	if !Contains(DaemonLog("h1"), "job restarted") || !Contains(DaemonLog("h2"), "evicted foreign job") {
		t.Fatal("the eviction is not logged at home (h1) and at the target (h2)")
	}
	// The owner's own process was never touched.
	if st := lab.MustSh(t, "h2", "", "ps -o stat= -p $(pgrep -f '^sleep 3333')"); !strings.HasPrefix(st, "S") {
		t.Fatalf("the owner's sleep on h2 is in state %q", st)
	}
}

func TestEvictWaitPolicyResumes(t *testing.T) {
	lab.WaitFS(t, "h1", "h3")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	// Wait for h3 to be idle (an earlier test may have typed there).
	if _, err := lab.WaitHosts("h1", 30*time.Second, func(rows map[string]IdleRow) bool { return rows["h3"].Activity == "idle" }); err != nil {
		t.Fatal(err)
	}
	job := `i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo tick $i; sleep 0.25; done`
	s, err := lab.Start("h1", "su", "alice", "-s", "/bin/sh", "-c", "cd "+proj+` && sprite mig -n --policy wait --host h3 -- sh -c '`+job+`' 2>&1; echo exit $?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h3", "sh -c i=0")
	j := waitOn(t, "sh -c "+job, "h3", s)
	if _, err := s.Next(10*time.Second, func(l Line) bool { return l.Text == "tick 3" }); err != nil {
		t.Fatal(err)
	}
	if r := lab.Run(t.Context(), "lab", "type", "h3"); r.Code != 0 {
		t.Fatalf("lab type h3: %s", r.Stderr)
	}
	frozen := waitOn(t, "sh -c "+job, "h3", s)
	deadline := time.Now().Add(5 * time.Second)
	for frozen["state"] != "frozen" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		frozen = waitOn(t, "sh -c "+job, "h3", s)
	}
	if frozen["state"] != "frozen" || frozen["pid"] != j["pid"] {
		t.Fatalf("after typing on h3 the job is %v (before: %v)", frozen, j)
	}
	// h3 turns idle again after idle_after (5 s): the same process resumes.
	var ticks []string
	for {
		l, err := s.Next(60*time.Second, func(Line) bool { return true })
		if err != nil {
			t.Fatalf("the waiting job did not finish: %v; so far %q", err, ticks)
		}
		if strings.HasPrefix(l.Text, "exit ") {
			if l.Text != "exit 0" {
				t.Fatalf("the resumed job: %s", l.Text)
			}
			break
		}
		ticks = append(ticks, l.Text)
	}
	if len(ticks) != 37 || ticks[0] != "tick 4" || ticks[36] != "tick 40" {
		t.Fatalf("the resumed job did its work again or lost some (want tick 4..40 after tick 3): %q", ticks)
	}
}

func TestEvictCheckpointFallsBackToRestart(t *testing.T) {
	lab.WaitFS(t, "h1", "h4")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	job := cpuJob(2000000)
	s, err := lab.Start("h1", "su", "alice", "-s", "/bin/sh", "-c", "cd "+proj+` && sprite mig -n --hold --policy checkpoint --host h4 -- sh -c '`+job+`' 2>&1; echo exit $?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h4", "sh -c i=0")
	waitOn(t, "sh -c "+job, "h4", s)
	lab.MustSh(t, "h4", "", "sprite evict")
	if l, err := s.Next(60*time.Second, func(l Line) bool { return strings.HasPrefix(l.Text, "result") }); err != nil || l.Text != "result 2000000" {
		t.Fatalf("the job after a checkpoint eviction: %q %v", l.Text, err)
	}
	if !Contains(DaemonLog("h1"), "checkpoint not possible") {
		t.Fatal("h1's log does not say why the checkpoint fell back to a restart")
	}
}

func TestEvictNetworkCutRerunsElsewhere(t *testing.T) {
	lab.WaitFS(t, "h1", "h3")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	job := cpuJob(1500000)
	s, err := lab.Start("h1", "su", "alice", "-s", "/bin/sh", "-c", "cd "+proj+` && sprite mig -n --hold --host h3 -- sh -c '`+job+`' 2>&1; echo exit $?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h3", "sh -c i=0")
	waitOn(t, "sh -c "+job, "h3", s)
	if out, err := runHost("ip", "link", "set", "sprite-h3", "down"); err != nil {
		t.Fatalf("cut h3's link: %v %s", err, out)
	}
	defer runHost("ip", "link", "set", "sprite-h3", "up")
	l, err := s.Next(90*time.Second, func(l Line) bool { return strings.HasPrefix(l.Text, "result") || strings.HasPrefix(l.Text, "exit") })
	if err != nil || l.Text != "result 1500000" {
		t.Fatalf("the job cut off with h3: %q %v", l.Text, err)
	}
	// h3 kills its copy once its stream home is gone.
	waitProc(t, "h3", "sh -c i=0", false, 15*time.Second)
	runHost("ip", "link", "set", "sprite-h3", "up")
	if _, err := lab.WaitState("h1", "h3", "up", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	waitDomain(t, "h3", "h1")
}

// waitDomain waits until host reads server's /home through /sprite again
// (after a cut, the file system follows membership within a heartbeat).
func waitDomain(t *testing.T, host, server string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r := lab.Exec(host, "ls", "/sprite/home/"+server); r.Code == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s cannot read /sprite/home/%s after 20s", host, server)
}

// runHost runs a command on the machine itself (outside every lab host).
func runHost(argv ...string) (string, error) {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

func TestEvictTargetDaemonKilledRerunsElsewhere(t *testing.T) {
	lab.WaitFS(t, "h1", "h3")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	job := cpuJob(1200000)
	s, err := lab.Start("h1", "su", "alice", "-s", "/bin/sh", "-c", "cd "+proj+` && sprite mig -n --hold --host h3 -- sh -c '`+job+`' 2>&1; echo exit $?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h3", "sh -c i=0")
	waitOn(t, "sh -c "+job, "h3", s)
	lab.MustSh(t, "h3", "", "kill -9 $(cat /run/sprite/sprite.pid)")
	l, err := s.Next(60*time.Second, func(l Line) bool { return strings.HasPrefix(l.Text, "result") || strings.HasPrefix(l.Text, "exit") })
	if err != nil || l.Text != "result 1200000" {
		t.Fatalf("the job whose host's daemon died: %q %v", l.Text, err)
	}
	if l, err := s.Next(5*time.Second, func(Line) bool { return true }); err != nil || l.Text != "exit 0" {
		t.Fatalf("after the rerun: %q %v", l.Text, err)
	}
	// The restarted daemon kills what its predecessor left running.
	if r := lab.Run(t.Context(), "lab", "start", "h3"); r.Code != 0 {
		t.Fatalf("lab start h3: %s", r.Stderr)
	}
	waitProc(t, "h3", "sh -c i=0", false, 15*time.Second)
	if _, err := lab.WaitState("h1", "h3", "up", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	waitDomain(t, "h3", "h1")
}

func TestEvictSpriteMigrateMovesAJob(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h4")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	job := cpuJob(1000000)
	s, err := lab.Start("h1", "su", "alice", "-s", "/bin/sh", "-c", "cd "+proj+` && sprite mig -n --host h2 -- sh -c '`+job+`'; echo exit $?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h2", "sh -c i=0")
	j := waitOn(t, "sh -c "+job, "h2", s)
	if r := lab.Sh("h1", "nobody", "sprite migrate "+j["id"].(string)+" h4"); r.Code == 0 {
		t.Fatal("nobody moved alice's job")
	}
	lab.MustSh(t, "h1", "alice", "sprite migrate "+j["id"].(string)+" h4")
	moved := waitOn(t, "sh -c "+job, "h4", s)
	if moved["id"] != j["id"] {
		t.Fatalf("the moved job has id %v, was %v", moved["id"], j["id"])
	}
	waitProc(t, "h2", "sh -c i=0", false, 5*time.Second)
	lines := untilExit(t, s, "the moved job")
	if strings.Join(lines, "\n") != "result 1000000\nexit 0" {
		t.Fatalf("the moved job's output: %q", lines)
	}
}

// untilExit collects a command's lines up to its "exit N" line.
func untilExit(t *testing.T, s *Stream, what string) []string {
	t.Helper()
	var lines []string
	for {
		l, err := s.Next(60*time.Second, func(Line) bool { return true })
		if err != nil {
			t.Fatalf("%s did not finish: %v; so far %q", what, err, lines)
		}
		lines = append(lines, l.Text)
		if strings.HasPrefix(l.Text, "exit ") {
			return lines
		}
	}
}
