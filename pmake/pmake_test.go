package pmake

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the pmake binary with no sprite daemon (every job runs
// at home) beside plain GNU make on the same makefiles: whatever the job
// shell does, make must not be able to tell. The lab tests (e2e) do the
// same across hosts.

var binOnce struct {
	sync.Once
	path string
	err  error
}

func pmakeBin(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("GNU make is not installed")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pmake-test-bin")
		if err != nil {
			binOnce.err = err
			return
		}
		binOnce.path = filepath.Join(dir, "pmake")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", binOnce.path, "./cmd/pmake")
		cmd.Dir = filepath.Dir(filepath.Dir(file))
		if out, err := cmd.CombinedOutput(); err != nil {
			binOnce.err = err
			binOnce.path = string(out)
		}
	})
	if binOnce.err != nil {
		t.Fatalf("build pmake: %v\n%s", binOnce.err, binOnce.path)
	}
	return binOnce.path
}

type result struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal
	files          []string
}

// tree writes files into a fresh directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runIn runs argv in a copy of files and returns how it ended and which
// files the directory holds afterwards.
func runIn(t *testing.T, files map[string]string, argv ...string) result {
	t.Helper()
	dir := tree(t, files)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), EnvSocket+"=/nonexistent/sprite.sock")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Run()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	r := result{stdout: o.String(), stderr: e.String(), code: ws.ExitStatus()}
	if ws.Signaled() {
		r.signal = ws.Signal()
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			r.files = append(r.files, rel)
		}
		return nil
	})
	sort.Strings(r.files)
	return r
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(l, "pmake: ") && l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func TestFailingRecipeAndKeepGoingAsMake(t *testing.T) {
	bin := pmakeBin(t)
	mk := map[string]string{"Makefile": `all: a b bad c
a b c:
	touch $@
bad: a
	@echo building bad; exit 3
after: bad
	touch $@
all2: after c
`}
	for _, args := range [][]string{{"all"}, {"-k", "all"}, {"-k", "all2"}, {"-i", "all2"}} {
		m := runIn(t, mk, append([]string{"make"}, args...)...)
		p := runIn(t, mk, append([]string{bin}, args...)...)
		if m.code != p.code || !equal(m.files, p.files) && args[0] != "all" {
			t.Errorf("%v: make exit %d files %v; pmake exit %d files %v\npmake stderr: %s", args, m.code, m.files, p.code, p.files, p.stderr)
		}
		if m.code != 0 && !strings.Contains(p.stderr, "Error 3") {
			t.Errorf("%v: pmake's make did not report the recipe's status 3: %s", args, p.stderr)
		}
	}
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func TestSignalDeathReportedAsMake(t *testing.T) {
	bin := pmakeBin(t)
	mk := map[string]string{"Makefile": `simple:
	sh -c 'kill -TERM $$$$'
shell:
	true; sh -c 'kill -TERM $$$$'
notfound:
	no-such-command-here x
`}
	for _, target := range []string{"simple", "shell", "notfound"} {
		m := runIn(t, mk, "make", target)
		p := runIn(t, mk, bin, target)
		last := func(s string) string {
			l := lines(s)
			return l[len(l)-1]
		}
		// make says "Terminated" for a command killed by SIGTERM and
		// "Error 143" for a shell that reported it; pmake must say the same.
		if m.code != p.code || last(m.stderr) != last(p.stderr) {
			t.Errorf("%s: make exit %d %q; pmake exit %d %q", target, m.code, m.stderr, p.code, p.stderr)
		}
	}
}

func TestOneShellAndShellVariableAsMake(t *testing.T) {
	bin := pmakeBin(t)
	mk := map[string]string{"Makefile": `.ONESHELL:
all:
	@x=1
	-echo "x is $$x"
	@echo shell: $(notdir $(SHELL))
	$(SHELL) -c 'echo via $$0'
`}
	m := runIn(t, mk, "make", "-s")
	p := runIn(t, mk, bin, "-s")
	if m.code != 0 || p.code != 0 || !strings.Contains(m.stdout, "x is 1") {
		t.Fatalf("make: %d %q %q; pmake: %d %q %q", m.code, m.stdout, m.stderr, p.code, p.stdout, p.stderr)
	}
	// $(SHELL) is pmake's own path under pmake; run as a command it must
	// still be the shell.
	mm := strings.Replace(m.stdout, "shell: sh", "shell: X", 1)
	pp := strings.Replace(p.stdout, "shell: pmake", "shell: X", 1)
	if mm != pp {
		t.Fatalf("make printed %q, pmake %q", m.stdout, p.stdout)
	}
}

func TestRecursiveMakeSharesTheJobserver(t *testing.T) {
	bin := pmakeBin(t)
	mk := map[string]string{
		"Makefile": "all:\n\t$(MAKE) -C sub\n\t+make -C sub two\n",
		"sub/Makefile": "one two: a b\n\techo $@ > $@\na b:\n\techo $@ > $@\n" +
			"flags:\n\t@echo $(MAKEFLAGS)\n",
	}
	p := runIn(t, mk, bin, "-j3", "--stats")
	m := runIn(t, mk, "make", "-j3")
	if p.code != 0 || !equal(p.files, m.files) {
		t.Fatalf("pmake exit %d files %v, make files %v\n%s", p.code, p.files, m.files, p.stderr)
	}
	if strings.Contains(p.stderr, "jobserver unavailable") {
		t.Fatalf("a sub-make lost the jobserver:\n%s", p.stderr)
	}
	// The recursive lines ran as make itself (not as jobs); the sub-makes'
	// lines were jobs, seen in --stats.
	for _, tgt := range []string{"one", "two", "a", "b"} {
		if !strings.Contains(p.stderr, "\n"+tgt+" ") {
			t.Errorf("--stats has no job for %s:\n%s", tgt, p.stderr)
		}
	}
	if strings.Contains(p.stderr, "make -C sub") {
		t.Errorf("--stats lists a recursive make as a job:\n%s", p.stderr)
	}
}

func TestInterruptStopsTheBuildAsMake(t *testing.T) {
	bin := pmakeBin(t)
	mk := map[string]string{"Makefile": "all: a b\na b:\n\tsleep 30 && touch $@\n"}
	for _, argv := range [][]string{{"make", "-j2"}, {bin, "-j2"}} {
		dir := tree(t, mk)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), EnvSocket+"=/nonexistent/sprite.sock")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var e bytes.Buffer
		cmd.Stderr = &e
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // what a terminal's ^C does
		cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		// GNU make dies by the SIGINT; now and then (one run in ten
		// here) it loses a race with its children's deaths instead and
		// exits 2 after "Interrupt" ("wait: No child processes. Stop.").
		// pmake dies by the SIGINT either way.
		stopped := ws.Signaled() && ws.Signal() == syscall.SIGINT ||
			argv[0] == "make" && ws.Exited() && ws.ExitStatus() == 2 && strings.Contains(e.String(), "Interrupt")
		if !stopped || time.Since(start) > 5*time.Second {
			t.Errorf("%s after ^C: %v after %v; want death by SIGINT at once\n%s", argv[0], cmd.ProcessState, time.Since(start), e.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
			t.Errorf("%s: a was made after ^C", argv[0])
		}
	}
}

func TestNoExportAndLocalCap(t *testing.T) {
	bin := pmakeBin(t)
	mk := map[string]string{"Makefile": `PMAKE_NOEXPORT = inst%
all: install x1 x2 x3
install:
	@echo installing
x1 x2 x3:
	@sleep 0.2; echo $@
`}
	p := runIn(t, mk, bin, "-L1", "--stats")
	if p.code != 0 {
		t.Fatalf("exit %d: %s", p.code, p.stderr)
	}
	recs := p.stderr
	if !regexp.MustCompile(`(?m)^install +home .* PMAKE_NOEXPORT `).MatchString(recs) || !strings.Contains(recs, "4 jobs") {
		t.Fatalf("--stats does not show install kept home by PMAKE_NOEXPORT, or not 4 jobs:\n%s", recs)
	}
	// -L1: three 0.2 s jobs one after the other at home.
	if got := lines(p.stdout); !equal(got, []string{"installing", "x1", "x2", "x3"}) {
		t.Fatalf("output %q", p.stdout)
	}
	if !strings.Contains(recs, "in 0.") && !strings.Contains(recs, "in 1.") {
		t.Fatalf("--stats has no wall time:\n%s", recs)
	}
	var wall float64
	for _, l := range strings.Split(recs, "\n") {
		if strings.HasPrefix(l, "pmake: --stats:") {
			f := strings.Fields(l)
			wall, _ = parseSeconds(f[len(f)-1])
		}
	}
	if wall < 0.6 {
		t.Fatalf("with -L1 three 0.2 s jobs took %.2fs: they ran side by side\n%s", wall, recs)
	}
	// AT(s) says when each job started: one after another, 0.2 s apart.
	var at []float64
	for _, l := range strings.Split(recs, "\n") {
		if f := strings.Fields(l); len(f) > 3 && regexp.MustCompile(`^x[123]$`).MatchString(f[0]) {
			v, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				t.Fatalf("--stats line without a start offset: %q", l)
			}
			at = append(at, v)
		}
	}
	sort.Float64s(at)
	if len(at) != 3 || at[1]-at[0] < 0.15 || at[2]-at[1] < 0.15 || at[2] > wall {
		t.Fatalf("--stats start offsets of x1..x3 %v: want three, 0.2 s apart, within %.2fs\n%s", at, wall, recs)
	}
}

func parseSeconds(s string) (float64, error) {
	d, err := time.ParseDuration(s)
	return d.Seconds(), err
}
