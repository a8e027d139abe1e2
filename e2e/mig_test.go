package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Remote execution across lab hosts: `sprite mig` from h1 as alice, in
// h1's export /home (so the job sees /home/alice on its target too).

const proj = "/home/alice/proj"

// migJobs is `sprite ps --json` on host as user.
func migJobs(t *testing.T, host, user string, all bool) []map[string]any {
	t.Helper()
	cmd := "sprite ps --json"
	if all {
		cmd += " --all"
	}
	var jobs []map[string]any
	out := lab.MustSh(t, host, user, cmd)
	if err := json.Unmarshal([]byte(out), &jobs); err != nil {
		t.Fatalf("sprite ps --json: %v\n%s", err, out)
	}
	return jobs
}

// waitJob waits until alice's job running cmd shows in h1's ps.
func waitJob(t *testing.T, cmd string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, j := range migJobs(t, "h1", "alice", false) {
			if j["command"] == cmd {
				return j
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no job %q in h1's sprite ps", cmd)
	return nil
}

// waitIdleOtherThanH1 waits until h1 sees some other host idle, so that
// the idle database can grant one.
func waitIdleOtherThanH1(t *testing.T) {
	t.Helper()
	_, err := lab.WaitHosts("h1", 30*time.Second, func(rows map[string]IdleRow) bool {
		for name, r := range rows {
			if name != "h1" && r.Activity == "idle" {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigTransparency(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	waitIdleOtherThanH1(t)
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	script := `cd ` + proj + ` && umask 027 && export SPRITE_TEST_VAR='a b'; `
	show := `hostname; id; pwd; umask; echo "$SPRITE_TEST_VAR"`
	local := lab.MustSh(t, "h1", "alice", script+show)
	r := lab.Sh("h1", "alice", script+`sprite mig -- sh -c '`+show+`'`)
	if r.Code != 0 {
		t.Fatalf("sprite mig: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	lines, want := strings.Split(r.Stdout, "\n"), strings.Split(local, "\n")
	if len(lines) != len(want) || !slices.Contains([]string{"h2", "h3", "h4"}, lines[0]) {
		t.Fatalf("the job did not run on another host:\n%s\nstderr: %s", r.Stdout, r.Stderr)
	}
	if !slices.Equal(lines[1:], want[1:]) {
		t.Fatalf("on %s the job saw\n%s\nat home:\n%s", lines[0], strings.Join(lines[1:], "\n"), strings.Join(want[1:], "\n"))
	}
	// The whole environment, but for what the lab sets per host.
	env := lab.MustSh(t, "h1", "alice", script+`env | grep -v '^_=' | sort; echo ---; sprite mig --host h3 -- sh -c 'env | grep -v "^_=" | sort'`)
	here, there, _ := strings.Cut(env, "---\n")
	if here != there {
		t.Fatalf("environment differs:\nat home:\n%s\non h3:\n%s", here, there)
	}
}

func TestMigOutsideTheNamespaceRunsAtHome(t *testing.T) {
	r := lab.Sh("h1", "alice", "cd /tmp && sprite mig --host h2 -- hostname")
	if r.Code != 0 || r.Stdout != "h1\n" || !strings.Contains(r.Stderr, "not in the global namespace") {
		t.Fatalf("a job from /tmp: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestMigRefusesRoot(t *testing.T) {
	r := lab.Sh("h1", "", "cd /home && sprite mig --host h2 -- id")
	if r.Code == 0 || !strings.Contains(r.Stderr, "jobs_as_root") {
		t.Fatalf("root's job on h2: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestMigSharedFilesAndCompile(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj+" && rm -f "+proj+"/from-h3")
	lab.MustSh(t, "h1", "alice", "cd "+proj+" && sprite mig --host h3 -- sh -c 'hostname > from-h3'")
	if got := lab.MustSh(t, "h1", "alice", "cat "+proj+"/from-h3"); got != "h3\n" {
		t.Fatalf("h1 reads %q from the file the job wrote on h3", got)
	}
	src := `#include <stdio.h>
int main(void) { printf("hello from %s\n", __FILE__); return 0; }
`
	lab.MustSh(t, "h1", "alice", "cd "+proj+" && cat > hello.c <<'EOF'\n"+src+"EOF\n"+
		"cc -O2 -c hello.c -o local.o && sprite mig --host h3 -- cc -O2 -c hello.c -o remote.o && cmp local.o remote.o")
	// Linked on h2 and run on h1 at once, and the other way round.
	out := lab.MustSh(t, "h1", "alice", "cd "+proj+" && sprite mig --host h2 -- cc -o hello-h2 hello.c && ./hello-h2 && cc -o hello-h1 hello.c && sprite mig --host h2 -- ./hello-h1")
	if out != "hello from hello.c\nhello from hello.c\n" {
		t.Fatalf("linked on one host, run on the other: %q", out)
	}
}

func TestMigBinaryStdioAndExitStatus(t *testing.T) {
	lab.WaitFS(t, "h1", "h2")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	sums := lab.MustSh(t, "h1", "alice", "cd "+proj+" && head -c 104857600 /dev/urandom > big && sha256sum < big && sprite mig --host h2 -- cat < big | sha256sum")
	if f := strings.Split(sums, "\n"); len(f) < 2 || f[0] != f[1] {
		t.Fatalf("100 MiB through sprite mig -- cat:\n%s", sums)
	}
	lab.MustSh(t, "h1", "alice", "rm -f "+proj+"/big")
	if out := lab.MustSh(t, "h1", "alice", "cd "+proj+" && yes | sprite mig --host h2 -- head -n 3"); out != "y\ny\ny\n" {
		t.Fatalf("yes | head -n 3: %q", out)
	}
	if out := lab.MustSh(t, "h1", "alice", "cd "+proj+" && sprite mig --host h2 -- yes | head -n 2"); out != "y\ny\n" {
		t.Fatalf("sprite mig -- yes | head -n 2: %q", out)
	}
	codes := lab.MustSh(t, "h1", "alice", "cd "+proj+` && for i in $(seq 0 255); do sprite mig --host h2 -- sh -c "exit $i"; echo $?; done`)
	for i, c := range strings.Fields(codes) {
		if c != strconv.Itoa(i) {
			t.Fatalf("exit %d came home as %s", i, c)
		}
	}
	// rusage comes home with the status.
	r := lab.Sh("h1", "alice", "cd "+proj+` && sprite mig --rusage --host h2 -- sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exit 3'`)
	var user, sys, rss string
	if _, err := fmt.Sscanf(r.Stderr, "sprite mig: sh on h2: exit status 3, user %s sys %s maxrss %s KiB", &user, &sys, &rss); err != nil || r.Code != 3 || user == "0s" || rss == "0" {
		t.Fatalf("rusage of a CPU-bound job on h2: exit %d, %q (%v)", r.Code, r.Stderr, err)
	}
	kill := lab.MustSh(t, "h1", "alice", "cd "+proj+` && sh -c 'kill -9 $$'; echo $?; sprite mig --host h2 -- sh -c 'kill -9 $$'; echo $?; sprite mig --host h2 -- sh -c 'kill -SEGV $$'; echo $?`)
	if kill != "137\n137\n139\n" {
		t.Fatalf("death by signal: local, then remote: %q", kill)
	}
}

func TestMigSignalsReachTheJob(t *testing.T) {
	lab.WaitFS(t, "h1", "h3")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	start := time.Now()
	out := lab.MustSh(t, "h1", "alice", "cd "+proj+` && sprite mig --host h3 -- sleep 100 & p=$!; sleep 1; kill -INT $p; wait $p; echo $?`)
	if out != "130\n" || time.Since(start) > 10*time.Second {
		t.Fatalf("SIGINT to sprite mig -- sleep 100: %q after %v", out, time.Since(start))
	}
	// Job control: a stopped sprite mig stops its job; fg resumes it.
	tc := lab.MustSh(t, "h1", "alice", "cd "+proj+` && (sprite mig --host h3 -- sleep 4545 </dev/null >/dev/null 2>&1 & p=$!; sleep 1; kill -TSTP $p; sleep 0.5; echo home $(ps -o stat= -p $p)) && sleep 0.1`)
	if !strings.HasPrefix(tc, "home T") {
		t.Fatalf("sprite mig after SIGTSTP: %q", tc)
	}
	if st := lab.MustSh(t, "h3", "", "ps -o stat= -p $(pgrep -f '^sleep 4545')"); !strings.HasPrefix(st, "T") {
		t.Fatalf("the job on h3 after SIGTSTP at home is in state %q", st)
	}
	lab.MustSh(t, "h1", "", "pkill -CONT -f '^sprite mig --host h3 -- sleep 4545'")
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := lab.MustSh(t, "h3", "", "ps -o stat= -p $(pgrep -f '^sleep 4545')")
		if strings.HasPrefix(st, "S") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job on h3 after SIGCONT at home is in state %q", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	lab.MustSh(t, "h1", "", "pkill -TERM -f '^sprite mig --host h3 -- sleep 4545'")
	// A trap on the target sees each signal sent at home.
	trap := `for s in TERM HUP USR1 USR2 QUIT; do trap "echo got $s" $s; done; echo ready; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done`
	out = lab.MustSh(t, "h1", "alice", "cd "+proj+` && (sprite mig --host h3 -- sh -c '`+trap+`' > sig.out &  p=$!; `+
		`until grep -q ready sig.out 2>/dev/null; do sleep 0.1; done; for s in TERM HUP USR1 USR2 QUIT; do kill -$s $p; sleep 0.3; done; kill -KILL $p) ; sleep 0.5; cat sig.out`)
	for _, s := range []string{"TERM", "HUP", "USR1", "USR2", "QUIT"} {
		if !strings.Contains(out, "got "+s) {
			t.Fatalf("the job on h3 did not see SIG%s:\n%s", s, out)
		}
	}
}

func TestMigTerminal(t *testing.T) {
	lab.WaitFS(t, "h1", "h2")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj+" && printf 'line one\\n' > "+proj+"/doc.txt")
	tm := func(args string) string {
		return lab.MustSh(t, "h1", "alice", "cd "+proj+" && tmux -L spritetest "+args)
	}
	tm(`new-session -d -s mig -x 100 -y 30 "sprite mig --host h2 -- sh -c 'hostname; tty; stty size; read x; echo got \$x; read y; stty size; sleep 30'"`)
	defer lab.Sh("h1", "alice", "tmux -L spritetest kill-server")
	screen := waitPane(t, tm, "30 100")
	if !strings.Contains(screen, "h2") || !strings.Contains(screen, "/dev/pts/") {
		t.Fatalf("the job on h2 has no terminal of home's size:\n%s", screen)
	}
	tm("send-keys -t mig 'hello there' Enter")
	waitPane(t, tm, "got hello there")
	// A new size at home (SIGWINCH) reaches the job's terminal.
	tm("resize-window -t mig -x 120 -y 40")
	tm("send-keys -t mig Enter")
	waitPane(t, tm, "40 120")
	tm("kill-session -t mig")

	// A full-screen editor: edit a file of h1's on h2, save it, quit.
	tm(`new-session -d -s vi -x 80 -y 24 "sprite mig --host h2 -- vi doc.txt"`)
	waitPane(t, tm, "line one")
	tm("send-keys -t vi G o 'line two' Escape ':wq' Enter")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := lab.MustSh(t, "h1", "alice", "cat "+proj+"/doc.txt"); got == "line one\nline two\n" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("vi through sprite mig did not save the file:\n%s", lab.MustSh(t, "h1", "alice", "cat "+proj+"/doc.txt; tmux -L spritetest capture-pane -p -t vi"))
}

// waitPane waits until a tmux pane (the only session's) shows want.
func waitPane(t *testing.T, tm func(string) string, want string) string {
	t.Helper()
	var screen string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		screen = tm("capture-pane -p")
		if strings.Contains(screen, want) {
			return screen
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the pane never showed %q:\n%s", want, screen)
	return ""
}

func TestMigPsKillAndProcFiles(t *testing.T) {
	lab.WaitFS(t, "h1", "h2")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	s, err := lab.Start("h1", "su", "alice", "-s", "/bin/sh", "-c", "cd "+proj+" && sprite mig --host h2 -- sleep 4242; echo exit $?")
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h2", "sleep 4242")
	j := waitJob(t, "sleep 4242")
	id := j["id"].(string)
	if j["host"] != "h2" || j["home"] != "h1" || j["user"] != "alice" || j["state"] != "running" {
		t.Fatalf("sprite ps on h1: %v", j)
	}
	if !strings.HasPrefix(id, "h1.") {
		t.Fatalf("global id %q is not h1.<pid>", id)
	}
	// Every host sees it with --all; another user sees it without its command.
	all := migJobs(t, "h3", "nobody", true)
	i := slices.IndexFunc(all, func(m map[string]any) bool { return m["id"] == id })
	if i < 0 || all[i]["command"] != "" {
		t.Fatalf("sprite ps --all as nobody on h3: %v", all)
	}
	status := lab.MustSh(t, "h3", "alice", "cat /sprite/proc/"+id+"/status")
	if !strings.Contains(status, "h2") || !strings.Contains(status, "sleep 4242") {
		t.Fatalf("/sprite/proc/%s/status on h3:\n%s", id, status)
	}
	if r := lab.Sh("h3", "nobody", "cat /sprite/proc/"+id+"/status"); r.Code == 0 {
		t.Fatalf("nobody read alice's process status:\n%s", r.Stdout)
	}
	if r := lab.Sh("h1", "nobody", "sprite kill "+id); r.Code == 0 || !strings.Contains(r.Stderr, "not permitted") {
		t.Fatalf("nobody's sprite kill: exit %d %q", r.Code, r.Stderr)
	}
	if r := lab.Sh("h3", "nobody", "echo kill > /sprite/proc/"+id+"/ctl"); r.Code == 0 {
		t.Fatal("nobody killed alice's job through /sprite/proc")
	}
	if len(migJobs(t, "h1", "alice", false)) == 0 {
		t.Fatal("the job died of another user's attempts")
	}
	lab.MustSh(t, "h3", "alice", "echo kill > /sprite/proc/"+id+"/ctl")
	l, err := s.Next(10*time.Second, func(l Line) bool { return strings.HasPrefix(l.Text, "exit ") })
	if err != nil || l.Text != "exit 137" {
		t.Fatalf("after echo kill > ctl: %q %v", l.Text, err)
	}
}

func TestMigHomeDeathKillsItsJobs(t *testing.T) {
	lab.WaitFS(t, "h3", "h4")
	lab.MustSh(t, "h4", "alice", "mkdir -p /home/alice")
	s, err := lab.Start("h4", "su", "alice", "-s", "/bin/sh", "-c", "cd /home/alice && sprite mig --host h3 -- sleep 4343")
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h3", "sleep 4343")
	waitProc(t, "h3", "sleep 4343", true, 10*time.Second)
	lab.MustSh(t, "h4", "", "kill -9 $(cat /run/sprite/sprite.pid)")
	killed := time.Now()
	waitProc(t, "h3", "sleep 4343", false, 10*time.Second)
	t.Logf("h4's job on h3 gone %v after h4's daemon died", time.Since(killed).Round(time.Millisecond))
	if r := lab.Run(t.Context(), "lab", "start", "h4"); r.Code != 0 {
		t.Fatalf("lab start h4: %s", r.Stderr)
	}
	if _, err := lab.WaitState("h1", "h4", "up", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// A job that has read input from home cannot be rerun: when its target
// dies it is reported lost (a job that has not is rerun: see evict_test).
func TestMigTargetDeathReportsLost(t *testing.T) {
	lab.WaitFS(t, "h1", "h3")
	lab.MustSh(t, "h1", "alice", "mkdir -p "+proj)
	s, err := lab.Start("h1", "su", "alice", "-s", "/bin/sh", "-c", "cd "+proj+" && echo input | sprite mig --host h3 -- sh -c 'read x; exec sleep 4444' 2>&1; echo exit $?")
	if err != nil {
		t.Fatal(err)
	}
	defer stopJob(s, "h3", "sleep 4444")
	waitProc(t, "h3", "sleep 4444", true, 10*time.Second)
	lab.MustSh(t, "h3", "", "kill -9 $(cat /run/sprite/sprite.pid)")
	lost, err := s.Next(15*time.Second, func(l Line) bool { return strings.Contains(l.Text, "lost") || strings.HasPrefix(l.Text, "exit") })
	if err != nil {
		t.Fatalf("no 'lost' line after h3's daemon died: %v", err)
	}
	if !strings.Contains(lost.Text, "h3") || !strings.Contains(lost.Text, "lost") {
		t.Fatalf("the lost line does not name the host: %q", lost.Text)
	}
	if l, err := s.Next(5*time.Second, func(l Line) bool { return strings.HasPrefix(l.Text, "exit ") }); err != nil || l.Text != "exit 255" {
		t.Fatalf("sprite mig after its target died: %q %v", l.Text, err)
	}
	if r := lab.Run(t.Context(), "lab", "start", "h3"); r.Code != 0 {
		t.Fatalf("lab start h3: %s", r.Stderr)
	}
	if _, err := lab.WaitState("h1", "h3", "up", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitProc waits until a process whose command line contains pat is
// present (or absent) on host.
func waitProc(t *testing.T, host, pat string, present bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r := lab.Exec(host, "pgrep", "-f", "^"+pat)
		if (r.Code == 0) == present {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%q on %s: want present=%v after %v", pat, host, present, timeout)
}

// stopJob ends a test's remote job (if it still runs: on target, or
// wherever it was rerun) and its command.
func stopJob(s *Stream, target, pat string) {
	for _, h := range []string{target, "h1", "h2", "h3", "h4"} {
		lab.Exec(h, "pkill", "-KILL", "-f", "^"+pat)
	}
	s.Kill("KILL")
}
