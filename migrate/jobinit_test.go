package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sprite/internal/term"
)

// TestMain makes the test binary its own job init: StartJobInit runs
// `os.Args[0] _jobinit`, like `sprite _jobinit`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == JobInitCommand {
		_ = RunJobInit()
		os.Exit(ExitSetupFailed)
	}
	os.Exit(m.Run())
}

const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// publicDir makes a temporary directory that uid nobody can enter.
func publicDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sprite-jobinit-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type jobResult struct {
	stdout, stderr string
	exit           error // from Wait
}

// viaSpare makes runJob start its jobs through a spare job init (started
// ahead of the job, given its config and stdio over a socket).
var viaSpare bool

// TestSpareJobInit runs the identity and error cases through spares.
func TestSpareJobInit(t *testing.T) {
	viaSpare = true
	defer func() { viaSpare = false }()
	t.Run("identity", TestJobInitIdentity)
	t.Run("errors", TestJobInitErrors)
}

// runJob starts ji with pipes and waits for it; a setup error is returned.
func runJob(t *testing.T, ji JobInit) (jobResult, error) {
	t.Helper()
	if ji.Spec.ID == "" {
		ji.Spec.ID = "h1.1"
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	defer outR.Close()
	defer errR.Close()
	var cmd *exec.Cmd
	if viaSpare {
		sp, serr := startSpare(os.Args[0])
		if serr != nil {
			t.Fatal(serr)
		}
		cmd, err = sp.run(ji, devnull, outW, errW)
	} else {
		cmd, err = StartJobInit(os.Args[0], ji, devnull, outW, errW)
	}
	outW.Close()
	errW.Close()
	if err != nil {
		if cmd != nil {
			t.Errorf("StartJobInit returned a command with error %v", err)
		}
		return jobResult{}, err
	}
	var out, serr bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&serr, errR); close(done) }()
	io.Copy(&out, outR)
	<-done
	return jobResult{out.String(), serr.String(), cmd.Wait()}, nil
}

func TestJobInitIdentity(t *testing.T) {
	needRoot(t)
	dir := publicDir(t)
	ji := JobInit{
		Spec: Spec{
			UID: nobody, GID: nobody, Groups: []uint32{nobody, 100},
			Argv: []string{"sh", "-c", `id -u; id -g; id -G; umask; pwd; echo "$FOO"; cut -d' ' -f19,41 /proc/$$/stat; env | grep -c .`},
			Env:  []string{"PATH=/usr/bin:/bin", "FOO=b a r"},
			Dir:  dir, Umask: 0o027,
		},
		Nice: 19, Idle: true,
	}
	r, err := runJob(t, ji)
	if err != nil {
		t.Fatal(err)
	}
	if r.exit != nil {
		t.Fatalf("job: %v; stderr %s", r.exit, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := []string{"65534", "65534", "65534 100", "0027", dir, "b a r", "19 5"}
	if len(lines) < len(want) {
		t.Fatalf("job printed %q", r.stdout)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d: %q, want %q (all: %q)", i, lines[i], w, r.stdout)
		}
	}
	// Only the given environment (sh adds PWD, and maybe SHLVL and _).
	if n, err := strconv.Atoi(lines[len(want)]); err != nil || n > 5 {
		t.Errorf("the job has %s environment variables, want 2 and what sh adds", lines[len(want)])
	}
}

func TestJobInitMounts(t *testing.T) {
	needRoot(t)
	root := publicDir(t) // stands in for /sprite
	if err := os.MkdirAll(filepath.Join(root, "home", "h1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "home", "h1", "marker"), []byte("from home\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := publicDir(t) // the directory's path at home, empty here
	ji := JobInit{
		Spec: Spec{
			UID: nobody, GID: nobody,
			Argv: []string{"cat", "marker"},
			Env:  []string{"PATH=/usr/bin:/bin"},
			Dir:  target,
			// Given deeper first: the helper orders them.
			Mounts: []Mount{{Prefix: "/home/h1", Path: filepath.Join(target, "sub")}, {Prefix: "/home", Path: target}},
		},
		MountRoot: root,
	}
	// The deeper mount's path exists only once /home is bound.
	if err := os.Mkdir(filepath.Join(root, "home", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	ji.Spec.Argv = []string{"cat", "h1/marker", "sub/marker"}
	r, err := runJob(t, ji)
	if err != nil {
		t.Fatal(err)
	}
	if r.exit != nil || r.stdout != "from home\nfrom home\n" {
		t.Errorf("job: %v, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
	// The parent's view is unchanged.
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("%s has %d entries outside the job", target, len(ents))
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), target) {
		t.Errorf("the job's mount shows outside it")
	}
}

func TestJobInitErrors(t *testing.T) {
	needRoot(t)
	dir := publicDir(t)
	base := Spec{ID: "h1.12", UID: nobody, GID: nobody, Argv: []string{"true"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: dir}
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name string
		edit func(*JobInit)
		want string
	}{
		{"missing dir", func(ji *JobInit) { ji.Spec.Dir = dir + "/gone" },
			"start job h1.12 on " + host + ": working directory " + dir + "/gone: no such file or directory on host " + host},
		{"root refused", func(ji *JobInit) { ji.Spec.UID = 0 }, "refusing to run a job as root"},
		{"not found", func(ji *JobInit) { ji.Spec.Argv = []string{"no-such-program-xyz"} }, "no-such-program-xyz: command not found (PATH=/usr/bin:/bin)"},
		{"no argv", func(ji *JobInit) { ji.Spec.Argv = nil }, "no command"},
		{"not executable", func(ji *JobInit) { ji.Spec.Argv = []string{"/etc/passwd"} }, "/etc/passwd: permission denied"},
		{"mount path missing", func(ji *JobInit) {
			ji.Spec.Mounts = []Mount{{Prefix: "/home", Path: dir + "/nothere"}}
		}, "does not exist on this host"},
		{"relative prefix", func(ji *JobInit) { ji.Spec.Mounts = []Mount{{Prefix: "home", Path: dir}} }, "clean absolute"},
		{"mount on /", func(ji *JobInit) { ji.Spec.Mounts = []Mount{{Prefix: "/home", Path: "/"}} }, "not on /"},
		{"unclean path", func(ji *JobInit) { ji.Spec.Mounts = []Mount{{Prefix: "/home", Path: dir + "/../x"}} }, "clean absolute"},
		{"bad cgroup", func(ji *JobInit) { ji.Procs = []string{dir + "/nocgroup/cgroup.procs"} }, "join cgroup " + dir + "/nocgroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ji := JobInit{Spec: base, MountRoot: "/"}
			tc.edit(&ji)
			_, err := runJob(t, ji)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	// uid 0 with AllowRoot.
	ji := JobInit{Spec: base, AllowRoot: true}
	ji.Spec.UID, ji.Spec.GID, ji.Spec.Argv = 0, 0, []string{"id", "-u"}
	r, err := runJob(t, ji)
	if err != nil || r.stdout != "0\n" {
		t.Errorf("root job with AllowRoot: %v, %q", err, r.stdout)
	}
	// A program that fails after exec is no setup error.
	ji = JobInit{Spec: base}
	ji.Spec.Argv = []string{"sh", "-c", "exit 3"}
	r, err = runJob(t, ji)
	var ee *exec.ExitError
	if err != nil || !errors.As(r.exit, &ee) || ee.ExitCode() != 3 {
		t.Errorf("exit 3: %v, %v", err, r.exit)
	}
}

func TestJobInitTty(t *testing.T) {
	needRoot(t)
	master, slave, err := term.OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	ji := JobInit{Spec: Spec{
		ID: "h1.5", UID: nobody, GID: nobody,
		Argv: []string{"sh", "-c", "stty size </dev/tty; ps -o stat= -p $$"},
		Env:  []string{"PATH=/usr/bin:/bin"}, Dir: "/",
		Tty: &Winsize{Rows: 31, Cols: 99},
	}}
	cmd, err := StartJobInit(os.Args[0], ji, slave, slave, slave)
	slave.Close()
	if err != nil {
		t.Fatal(err)
	}
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, _ := io.ReadAll(master) // ends with EIO when the job closes the slave
	if err := cmd.Wait(); err != nil {
		t.Errorf("job: %v; output %q", err, out)
	}
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(out), "\r", "")), "\n")
	if len(lines) != 2 || lines[0] != "31 99" || !strings.Contains(lines[1], "s") || !strings.Contains(lines[1], "+") {
		t.Errorf("job on a tty printed %q; want its size and a session leader in the foreground (s, +)", out)
	}
}

func TestJobInitCgroup(t *testing.T) {
	needRoot(t)
	c, err := NewCgroups(fmt.Sprintf("sprite-test-ji-%d", os.Getpid()))
	c = testCgroups(t, c, err)
	j, err := c.Create("h1.99")
	if err != nil {
		t.Fatal(err)
	}
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	ji := JobInit{
		Spec:  Spec{ID: "h1.99", UID: nobody, GID: nobody, Argv: []string{"sleep", "100"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"},
		Procs: j.Procs(),
	}
	cmd, err := StartJobInit(os.Args[0], ji, devnull, devnull, devnull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if string(comm) != "sleep\n" {
		t.Errorf("process %d is %q, want the job (sleep) with the helper's pid", pid, comm)
	}
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, d := range j.Dirs() {
		if !strings.Contains(string(cg), "/"+filepath.Base(filepath.Dir(d))+"/h1.99\n") {
			t.Errorf("job %d is not in %s:\n%s", pid, d, cg)
		}
	}
	if err := j.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s := frozenState(t, j); s != "FROZEN" {
		t.Errorf("after Freeze: %s", s)
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	t.Logf("frozen job's stat: %s", st)
	if err := j.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := j.Kill(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("job ended with %v, want SIGKILL", err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
		t.Errorf("job %d is still there after Kill and Wait", pid)
	}
	if err := j.Remove(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkStartJobInit measures starting `true` through the helper, to
// compare with BenchmarkExecTrue (the helper's cost per remote job).
func BenchmarkStartJobInit(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer devnull.Close()
	ji := JobInit{Spec: Spec{UID: nobody, GID: nobody, Argv: []string{"true"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}}
	for b.Loop() {
		cmd, err := StartJobInit(os.Args[0], ji, devnull, devnull, devnull)
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecTrue is a plain fork/exec of `true`.
func BenchmarkExecTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestJobInitSignals: a signal the daemon ignores is not ignored in the job.
func TestJobInitSignals(t *testing.T) {
	needRoot(t)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT)
	defer signal.Reset(syscall.SIGHUP, syscall.SIGINT)
	ji := JobInit{Spec: Spec{UID: nobody, GID: nobody, Argv: []string{"grep", "SigIgn", "/proc/self/status"},
		Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}}
	r, err := runJob(t, ji)
	if err != nil || r.exit != nil {
		t.Fatalf("job: %v, %v, %s", err, r.exit, r.stderr)
	}
	f := strings.Fields(r.stdout)
	if len(f) != 2 {
		t.Fatalf("job printed %q", r.stdout)
	}
	mask, err := strconv.ParseUint(f[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	if mask&(1<<(syscall.SIGHUP-1)|1<<(syscall.SIGINT-1)) != 0 {
		t.Errorf("the job ignores signals %#x, want SIGHUP and SIGINT at their default", mask)
	}
}
