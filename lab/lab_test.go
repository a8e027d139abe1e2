package lab_test

// These tests make real labs on this machine: they need root, and they take
// down any lab that is up when they start.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sprite/lab"
)

// sprite is the binary under test, built once by TestMain.
var sprite string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("lab tests need root; skipping")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "sprite-lab-test")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	unlock := lockLabs()
	defer unlock()
	sprite = filepath.Join(dir, "sprite")
	if out, err := exec.Command("go", "build", "-o", sprite, "sprite/cmd/sprite").CombinedOutput(); err != nil {
		fmt.Printf("build sprite: %v\n%s", err, out)
		os.Exit(1)
	}
	// Start from a clean machine; a lab a crashed run left would break everything.
	exec.Command(sprite, "lab", "down").Run()
	code := m.Run()
	exec.Command(sprite, "lab", "down").Run()
	os.RemoveAll(dir)
	unlock()
	os.Exit(code)
}

// sharedLock is the lock every user of this machine's lab (these tests, the
// e2e tests, people) takes around a run: there is one lab per machine.
const sharedLock = "/tmp/sprite-lab.lock"

// lockLabs takes sharedLock, unless an ancestor (`flock sharedLock go
// test`) holds it for us already.
func lockLabs() (unlock func()) {
	f, err := os.OpenFile(sharedLock, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		fmt.Println("lab tests: no shared lock:", err)
		return func() {}
	}
	if heldByAncestor(f) {
		f.Close()
		return func() {}
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		fmt.Println("lab tests: waiting for", sharedLock)
		unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	return func() { f.Close() }
}

// heldByAncestor reports whether /proc/locks shows a lock on f held by this
// process's parent or one of its ancestors.
func heldByAncestor(f *os.File) bool {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	locks, _ := os.ReadFile("/proc/locks")
	ino := ":" + strconv.FormatUint(st.Ino, 10)
	for _, line := range strings.Split(string(locks), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 6 || fs[1] != "FLOCK" || !strings.HasSuffix(fs[5], ino) {
			continue
		}
		pid, _ := strconv.Atoi(fs[4])
		for p := os.Getppid(); p > 1; p = parent(p) {
			if p == pid {
				return true
			}
		}
	}
	return false
}

func parent(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// result is how a run of sprite ended.
type result struct {
	stdout, stderr string
	code           int
}

// sp runs sprite with args and stdin (may be "").
func sp(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(sprite, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out.String(), errb.String(), 0}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sprite %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// must runs sprite and fails the test unless it exits 0; it returns stdout.
func must(t *testing.T, args ...string) string {
	t.Helper()
	r := sp(t, "", args...)
	if r.code != 0 {
		t.Fatalf("sprite %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// in runs argv on host as user through `sprite lab exec` and returns stdout.
func in(t *testing.T, host, user string, argv ...string) string {
	t.Helper()
	args := []string{"lab", "exec", host}
	if user != "" {
		args = append(args, "--user", user)
	}
	return strings.TrimSpace(must(t, append(append(args, "--"), argv...)...))
}

// upLab brings a lab up and takes it down (and checks the machine is clean)
// when the test ends, whether it passed or not.
func upLab(t *testing.T, args ...string) *lab.Lab {
	t.Helper()
	t.Cleanup(func() {
		r := sp(t, "", "lab", "down")
		if r.code != 0 {
			t.Errorf("lab down: exit %d: %s", r.code, r.stderr)
		}
		assertClean(t)
	})
	must(t, append([]string{"lab", "up"}, args...)...)
	l, err := lab.Load()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// assertNoLab checks that no process, netns, link, cgroup or mount of a lab
// is left on the machine.
func assertNoLab(t *testing.T) {
	t.Helper()
	for _, n := range labNetns() {
		t.Errorf("netns %s is left", n)
	}
	ents, _ := os.ReadDir("/sys/class/net")
	for _, e := range ents {
		if e.Name() == "sprite0" || strings.HasPrefix(e.Name(), "sprite-h") {
			t.Errorf("link %s is left", e.Name())
		}
	}
	for _, pid := range hostInitPids() {
		t.Errorf("host init process %d is left", pid)
	}
	for _, d := range []string{"/sys/fs/cgroup/cpu/sprite-lab", "/sys/fs/cgroup/freezer/sprite-lab", "/sys/fs/cgroup/sprite-lab"} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s is left", d)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, "sprite-lab") || strings.Contains(line, "/run/netns/sprite-h") {
			t.Errorf("mount is left: %s", line)
		}
	}
}

// assertClean is assertNoLab and no lab files either.
func assertClean(t *testing.T) {
	t.Helper()
	assertNoLab(t)
	if _, err := os.Stat(lab.Root); err == nil {
		t.Errorf("%s is left", lab.Root)
	}
}

// labNetns lists the registered netns named sprite-h*.
func labNetns() []string {
	var ns []string
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "sprite-h") {
			ns = append(ns, e.Name())
		}
	}
	return ns
}

// hostInitPids lists live processes whose command line has _hostinit.
func hostInitPids() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		st, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if bytes.Contains(b, []byte("_hostinit")) && !bytes.Contains(st, []byte(") Z")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestLab(t *testing.T) {
	l := upLab(t, "--hosts", "3", "--no-daemons", "--cpus", "0.5", "--idle-after", "2s")
	if len(l.Hosts) != 3 {
		t.Fatalf("state has %d hosts, want 3", len(l.Hosts))
	}
	t.Run("Status", func(t *testing.T) { testStatus(t) })
	t.Run("Hostname", func(t *testing.T) { testHostname(t, l) })
	t.Run("PIDNamespace", func(t *testing.T) { testPIDNamespace(t, l) })
	t.Run("Files", func(t *testing.T) { testFiles(t) })
	t.Run("Network", func(t *testing.T) { testNetwork(t, l) })
	t.Run("User", func(t *testing.T) { testUser(t, l) })
	t.Run("ExitStatus", func(t *testing.T) { testExitStatus(t) })
	t.Run("Signals", func(t *testing.T) { testSignals(t) })
	t.Run("UnknownHost", func(t *testing.T) { testUnknownHost(t) })
	t.Run("Type", func(t *testing.T) { testType(t, l) })
	t.Run("CPUQuota", func(t *testing.T) { testCPUQuota(t, l) })
	t.Run("NoMountLeak", func(t *testing.T) { testNoMountLeak(t) })
	t.Run("UpTwice", func(t *testing.T) { testUpTwice(t) })
	t.Run("LeftJobCgroup", func(t *testing.T) { testLeftJobCgroup(t) })
	t.Run("DeadHost", func(t *testing.T) { testDeadHost(t, l) })
}

func testStatus(t *testing.T) {
	var ss []lab.HostStatus
	if err := json.Unmarshal([]byte(must(t, "lab", "status", "--json")), &ss); err != nil {
		t.Fatal(err)
	}
	for i, s := range ss {
		if want := fmt.Sprintf("h%d", i+1); s.Name != want || !s.Alive || s.Daemon || s.CPUs != 0.5 {
			t.Errorf("status[%d] = %+v, want %s alive, no daemon, 0.5 CPUs", i, s, want)
		}
		if want := fmt.Sprintf("10.213.0.%d", 11+i); s.Addr != want {
			t.Errorf("%s: addr %s, want %s", s.Name, s.Addr, want)
		}
	}
}

func testHostname(t *testing.T, l *lab.Lab) {
	for _, h := range l.Hosts {
		if got := in(t, h.Name, "", "uname", "-n"); got != h.Name {
			t.Errorf("hostname in %s is %q", h.Name, got)
		}
	}
}

func testPIDNamespace(t *testing.T, l *lab.Lab) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sleeper := l.CommandContext(ctx, "h1", "", "sleep", "1234")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); sleeper.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(in(t, "h1", "", "ps", "-eo", "args"), "sleep 1234") {
		if time.Now().After(deadline) {
			t.Fatal("sleep 1234 does not show in h1's ps")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ps := in(t, "h2", "", "ps", "-eo", "args"); strings.Contains(ps, "sleep") {
		t.Errorf("h2's ps shows h1's sleep:\n%s", ps)
	}
	init := in(t, "h2", "", "cat", "/proc/1/cmdline")
	if !strings.Contains(init, "_hostinit") || !strings.Contains(init, "h2") {
		t.Errorf("PID 1 in h2 is %q, want h2's host init", init)
	}
	if pids := strings.Fields(in(t, "h2", "", "sh", "-c", "ls /proc | grep '^[0-9]'")); len(pids) > 4 {
		t.Errorf("h2's /proc shows %d processes (%v); want its init and this command only", len(pids), pids)
	}
}

func testFiles(t *testing.T) {
	in(t, "h1", "alice", "sh", "-c", "echo one > /home/alice/x; echo t1 > /tmp/t")
	in(t, "h2", "alice", "sh", "-c", "echo t2 > /tmp/t")
	if got := in(t, "h1", "alice", "cat", "/home/alice/x"); got != "one" {
		t.Errorf("h1 reads %q from /home/alice/x", got)
	}
	if got := in(t, "h2", "", "sh", "-c", "test -e /home/alice/x && echo yes || echo no"); got != "no" {
		t.Errorf("h1's /home/alice/x is in h2's /home")
	}
	if a, b := in(t, "h1", "", "cat", "/tmp/t"), in(t, "h2", "", "cat", "/tmp/t"); a != "t1" || b != "t2" {
		t.Errorf("/tmp/t is %q in h1 and %q in h2; want t1, t2", a, b)
	}
	if _, err := os.Stat("/tmp/t"); err == nil {
		t.Errorf("a host's /tmp/t landed in the machine's /tmp")
	}
	fi, err := os.Stat(filepath.Join(lab.HostsDir, "h1", "home", "alice", "x"))
	if err != nil {
		t.Fatal(err)
	}
	uid := in(t, "h1", "", "id", "-u", "alice")
	if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != uid {
		t.Errorf("h1's /home/alice/x belongs to uid %d, want alice (%s)", st.Uid, uid)
	}
	if got := in(t, "h3", "", "stat", "-c", "%a", "/tmp"); got != "1777" {
		t.Errorf("/tmp mode in h3 is %s, want 1777", got)
	}
}

func testNetwork(t *testing.T, l *lab.Lab) {
	h2 := l.Hosts[1]
	var ln net.Listener
	inNetns(t, "sprite-h2", func() (err error) {
		ln, err = net.Listen("tcp", h2.Addr+":0")
		return err
	})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi from h2\n"))
			c.Close()
		}
	}()
	var got []byte
	inNetns(t, "sprite-h1", func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = readLine(c)
		return err
	})
	if string(got) != "hi from h2\n" {
		t.Errorf("h1 read %q from h2", got)
	}
	// Also through bash in h1 and from the machine over the bridge.
	if got := in(t, "h1", "", "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(ln.Addr().String(), ":", "/", 1)+"; cat <&3"); got != "hi from h2" {
		t.Errorf("bash in h1 read %q from h2", got)
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Errorf("the machine cannot reach h2: %v", err)
	} else {
		c.Close()
	}
	if _, err := exec.LookPath("ping"); err == nil {
		in(t, "h1", "", "ping", "-c1", "-W1", h2.Addr)
	}
}

// inNetns runs f on a thread in the registered netns name; sockets f makes
// stay in that netns. The thread goes back to the machine's netns after.
func inNetns(t *testing.T, name string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(self)
		fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		err = f()
		if unix.Setns(self, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // else the thread dies with the goroutine
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in netns %s: %v", name, err)
	}
}

func readLine(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b []byte
	buf := make([]byte, 64)
	for !bytes.HasSuffix(b, []byte("\n")) {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

func testUser(t *testing.T, l *lab.Lab) {
	want := strings.TrimSpace(must(t, "lab", "exec", "h1", "--", "id", "-u", "alice"))
	if got := in(t, "h2", "alice", "id", "-u"); got != want {
		t.Errorf("id -u as alice in h2 = %s, want %s", got, want)
	}
	if got := in(t, "h2", "alice", "sh", "-c", `echo "$(pwd) $HOME $USER $LOGNAME $PATH"`); got != "/home/alice /home/alice alice alice "+lab.HostPATH {
		t.Errorf("alice's cwd and environment in h2: %q", got)
	}
	if got := in(t, "h2", "nobody", "pwd"); got != "/" {
		t.Errorf("nobody's cwd in h2 = %q, want / (no home there)", got)
	}
	out, err := l.Command("h3", "alice", "id", "-un").Output()
	if err != nil || strings.TrimSpace(string(out)) != "alice" {
		t.Errorf("Command(h3, alice, id -un) = %q, %v", out, err)
	}
}

func testExitStatus(t *testing.T) {
	if r := sp(t, "", "lab", "exec", "h1", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exit 7 in h1 gave %d: %s", r.code, r.stderr)
	}
	if r := sp(t, "", "lab", "exec", "h1", "--", "sh", "-c", "kill -9 $$"); r.code != 128+9 {
		t.Errorf("SIGKILL in h1 gave %d, want 137: %s", r.code, r.stderr)
	}
	if r := sp(t, "binary\x00safe\n", "lab", "exec", "h1", "--user", "alice", "--", "cat"); r.stdout != "binary\x00safe\n" {
		t.Errorf("stdin through cat in h1 came back as %q", r.stdout)
	}
	if r := sp(t, "", "lab", "exec", "h1", "--", "sh", "-c", "echo oops >&2"); r.stderr != "oops\n" {
		t.Errorf("stderr from h1 came back as %q", r.stderr)
	}
}

// testSignals sends SIGINT to the process group of `lab exec` as a terminal
// would: the command gets it, and lab exec ends as the command does.
func testSignals(t *testing.T) {
	run := func(script string) int {
		cmd := exec.Command(sprite, "lab", "exec", "h1", "--", "bash", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		err := cmd.Wait()
		code, _ := lab.ExitStatus(err)
		return code
	}
	if code := run("trap 'echo INT' INT; sleep 0.5; exit 3"); code != 3 {
		t.Errorf("a command that handles SIGINT ended lab exec with %d, want its own 3", code)
	}
	if code := run("sleep 5"); code != 130 {
		t.Errorf("SIGINT to sleep ended lab exec with %d, want 130", code)
	}
	cmd := exec.Command(sprite, "lab", "exec", "h1", "--", "sleep", "5")
	cmd.Start()
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := lab.ExitStatus(cmd.Wait()); code != 128+15 {
		t.Errorf("SIGTERM to lab exec ended it with %d, want 143 (passed on to sleep)", code)
	}
}

func testUnknownHost(t *testing.T) {
	r := sp(t, "", "lab", "exec", "h9", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "no lab host h9; the lab has h1..h3") {
		t.Errorf("exec on h9: exit %d, stderr %q", r.code, r.stderr)
	}
}

func testType(t *testing.T, l *lab.Lab) {
	watch := func(h lab.Host) int {
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			t.Fatal(err)
		}
		tty := fmt.Sprintf("/proc/%d/root%s", h.InitPID, lab.ConsoleTTY)
		if _, err := unix.InotifyAddWatch(fd, tty, unix.IN_ACCESS); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	fd1, fd2 := watch(l.Hosts[0]), watch(l.Hosts[1])
	defer unix.Close(fd1)
	defer unix.Close(fd2)
	must(t, "lab", "type", "h1")
	if !inotifyEvent(fd1, 2*time.Second) {
		t.Errorf("lab type h1: no IN_ACCESS on h1's %s", lab.ConsoleTTY)
	}
	if inotifyEvent(fd2, 0) {
		t.Errorf("lab type h1: IN_ACCESS on h2's %s", lab.ConsoleTTY)
	}
	if err := l.Type(context.Background(), "h2", strings.Repeat("hello ", 2000)); err != nil {
		t.Error(err)
	}
	if !inotifyEvent(fd2, 2*time.Second) {
		t.Errorf("Type(h2): no IN_ACCESS on h2's %s", lab.ConsoleTTY)
	}
	must(t, "lab", "type", "h3", "--new-pty", "--keys", "abc")
}

// inotifyEvent waits up to d for an event on fd.
func inotifyEvent(fd int, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, _ := unix.Poll(fds, int(d/time.Millisecond))
	if n <= 0 {
		return false
	}
	buf := make([]byte, 4096)
	m, _ := unix.Read(fd, buf)
	return m >= unix.SizeofInotifyEvent
}

func testCPUQuota(t *testing.T, l *lab.Lab) {
	h := l.Hosts[0]
	file, want := "cpu.cfs_quota_us", "5000"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		file, want = "cpu.max", "5000 10000"
	}
	if !strings.HasSuffix(h.Cgroup, "/sprite-lab/h1") {
		t.Errorf("h1's cgroup is %q", h.Cgroup)
	}
	b, err := os.ReadFile(filepath.Join(h.Cgroup, file))
	if err != nil || strings.TrimSpace(string(b)) != want {
		t.Errorf("%s/%s = %q, %v; want %s", h.Cgroup, file, b, err, want)
	}
	procs, _ := os.ReadFile(filepath.Join(h.Cgroup, "cgroup.procs"))
	if !strings.Contains("\n"+string(procs), "\n"+strconv.Itoa(h.InitPID)+"\n") {
		t.Errorf("h1's init %d is not in %s: %q", h.InitPID, h.Cgroup, procs)
	}
	cg := in(t, "h1", "alice", "cat", "/proc/self/cgroup")
	if !strings.Contains(cg, "sprite-lab/h1") {
		t.Errorf("a command run in h1 is not in h1's cgroup:\n%s", cg)
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer/cgroup.procs"); err == nil && !strings.Contains(cg, ":freezer:/sprite-lab/h1\n") {
		t.Errorf("a command run in h1 is not in h1's freezer cgroup:\n%s", cg)
	}
	procs, _ = os.ReadFile("/sys/fs/cgroup/freezer/sprite-lab/h1/cgroup.procs")
	if file == "cpu.cfs_quota_us" && !strings.Contains("\n"+string(procs), "\n"+strconv.Itoa(h.InitPID)+"\n") {
		t.Errorf("h1's init %d is not in freezer:/sprite-lab/h1: %q", h.InitPID, procs)
	}
}

// testLeftJobCgroup leaves what a killed daemon leaves in h2: a nested job
// cgroup with a frozen process in it. lab down (upLab's cleanup) must kill
// it and remove the cgroups (assertNoLab).
func testLeftJobCgroup(t *testing.T) {
	script := `set -e
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
	dirs=/sys/fs/cgroup/sprite-lab/h2/sprite-jobs/h2.77
else
	dirs="/sys/fs/cgroup/cpu/sprite-lab/h2/sprite-jobs/h2.77 /sys/fs/cgroup/freezer/sprite-lab/h2/sprite-jobs/h2.77"
fi
for d in $dirs; do mkdir -p $d/inner; done
sh -c "for d in $dirs; do echo \$\$ > \$d/cgroup.procs; done; exec sleep 1000" </dev/null >/dev/null 2>&1 &
sleep 0.2
for d in $dirs; do
	if [ -e $d/freezer.state ]; then echo FROZEN > $d/freezer.state; fi
	if [ -e $d/cgroup.freeze ]; then echo 1 > $d/cgroup.freeze; fi
	cat $d/cgroup.procs
done`
	pids := strings.Fields(in(t, "h2", "root", "sh", "-c", script))
	if len(pids) == 0 {
		t.Fatal("no process in the nested job cgroup")
	}
	want, dir := "FROZEN", "/sys/fs/cgroup/freezer/sprite-lab/h2/sprite-jobs/h2.77"
	file := dir + "/freezer.state"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		want, file = "frozen 1", "/sys/fs/cgroup/sprite-lab/h2/sprite-jobs/h2.77/cgroup.events"
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), want) {
		t.Errorf("%s = %q, %v; want %s", file, b, err, want)
	}
}

func testNoMountLeak(t *testing.T) {
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, "sprite-lab") || strings.Contains(line, "devpts") && strings.Contains(line, "ptmxmode=666") {
			t.Errorf("a host's mount shows on the machine: %s", line)
		}
	}
}

func testUpTwice(t *testing.T) {
	r := sp(t, "", "lab", "up", "--hosts", "2", "--no-daemons")
	if r.code == 0 || !strings.Contains(r.stderr, "a lab is up already; run `sprite lab down` first") {
		t.Errorf("second lab up: exit %d, stderr %q", r.code, r.stderr)
	}
	if len(hostInitPids()) != 3 {
		t.Errorf("after a refused lab up there are %d host inits, want 3", len(hostInitPids()))
	}
}

// testDeadHost kills h3's init: the host is gone, exec says so, down copes.
func testDeadHost(t *testing.T, l *lab.Lab) {
	h3 := l.Hosts[2]
	syscall.Kill(h3.InitPID, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := sp(t, "", "lab", "exec", "h3", "--", "true")
		if r.code != 0 && strings.Contains(r.stderr, "host h3 is down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec on a dead h3: exit %d, stderr %q", r.code, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(must(t, "lab", "status"), "(dead)") {
		t.Errorf("lab status does not show h3 dead")
	}
}

// TestFailedUp makes lab up fail half way (h2's directory is a file): it
// must say what failed and leave no host behind.
func TestFailedUp(t *testing.T) {
	t.Cleanup(func() {
		must(t, "lab", "down")
		assertClean(t)
	})
	if err := os.MkdirAll(lab.HostsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lab.HostsDir, "h2"), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := sp(t, "", "lab", "up", "--hosts", "3", "--no-daemons")
	if r.code == 0 {
		t.Fatal("lab up with h2's directory blocked succeeded")
	}
	if !strings.Contains(r.stderr, "host h2") || !strings.Contains(r.stderr, "taken down") {
		t.Errorf("lab up's error does not say what failed: %q", r.stderr)
	}
	assertNoLab(t)
	if _, err := os.Stat(filepath.Join(lab.HostsDir, "h1", "init.log")); err != nil {
		t.Errorf("a failed lab up removed the hosts' logs: %v", err)
	}
}

// TestDownAfterKilledUp kills lab up in the middle of its work; lab down
// must clean up without a complete state file, and twice.
func TestDownAfterKilledUp(t *testing.T) {
	t.Cleanup(func() { exec.Command(sprite, "lab", "down").Run() })
	up := exec.Command(sprite, "lab", "up", "--hosts", "6", "--no-daemons")
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once the first host has its netns: the others are half made.
	deadline := time.Now().Add(10 * time.Second)
	for len(labNetns()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	up.Process.Kill()
	up.Wait()
	if len(labNetns()) == 0 {
		t.Fatal("lab up made no host")
	}
	t.Logf("killed lab up with %d netns and %d host inits made", len(labNetns()), len(hostInitPids()))
	must(t, "lab", "down")
	assertClean(t)
	must(t, "lab", "down")
	assertClean(t)
}

// TestDaemons runs the full lab with sprite daemons, where they exist.
func TestDaemons(t *testing.T) {
	if !strings.Contains(sp(t, "", "help").stderr, "daemon") {
		t.Skip("this sprite has no daemon command yet")
	}
	start := time.Now()
	l := upLab(t, "--hosts", "3", "--idle-after", "2s")
	t.Logf("lab up --hosts 3 with daemons took %v", time.Since(start))
	hs, err := l.ClusterHosts(context.Background(), "h1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 3 {
		t.Errorf("h1 lists %d hosts: %+v", len(hs), hs)
	}
	for _, h := range hs {
		if h.State != "up" {
			t.Errorf("h1 shows %s %s", h.Name, h.State)
		}
	}
	must(t, "lab", "stop", "h2")
	if st, err := l.DaemonState("h2"); err != nil || st.Running {
		t.Errorf("after lab stop h2 the daemon state is %+v, %v", st, err)
	}
	must(t, "lab", "start", "h2")
	must(t, "lab", "stop", "--kill", "h3")
	must(t, "lab", "start", "h3")
	for _, s := range l.Status() {
		if !s.Daemon {
			t.Errorf("%s's daemon does not run after lab start", s.Name)
		}
	}
}

// TestAPI drives a lab through the Go API, as benchmarks do.
func TestAPI(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() {
		if err := lab.Down(ctx, false); err != nil {
			t.Error(err)
		}
		assertClean(t)
	})
	l, err := lab.Up(ctx, lab.Options{Hosts: 2, NoDaemons: true, Binary: sprite, CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.Command("h2", "alice", "sh", "-c", "echo $(uname -n) $(pwd)").Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != "h2 /home/alice" {
		t.Errorf("Command(h2, alice): %q, %v", got, err)
	}
	if err := l.Type(ctx, "h1", ""); err != nil {
		t.Error(err)
	}
	if err := l.Command("h3", "", "true").Run(); err == nil || !strings.Contains(err.Error(), "no lab host h3; the lab has h1 and h2") {
		t.Errorf("Command on h3: %v", err)
	}
	if _, err := lab.Up(ctx, lab.Options{Hosts: 1, Binary: sprite}); err == nil {
		t.Error("a second Up succeeded")
	}
}
