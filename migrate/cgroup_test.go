package migrate

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const v1Mountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestDetectCgroupsV1(t *testing.T) {
	env := cgEnv{
		selfCgroup: "9:name=systemd:/\n6:freezer:/sprite-lab/h2\n3:cpuset:/\n1:cpu,cpuacct:/sprite-lab/h2\n0::/\n",
		mountinfo:  v1Mountinfo,
		hostname:   "h2",
	}
	c, err := detectCgroups("sprite-jobs", env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/sys/fs/cgroup/freezer/sprite-lab/h2/sprite-jobs", "/sys/fs/cgroup/cpu,cpuacct/sprite-lab/h2/sprite-jobs"}
	if c.Version() != 1 || !slices.Equal(c.Dirs(), want) || !c.CanFreeze() || !c.CanWeight() {
		t.Errorf("v1: version %d dirs %q freeze %v weight %v; want 1 %q true true", c.Version(), c.Dirs(), c.CanFreeze(), c.CanWeight(), want)
	}

	// In the root cgroup: a directory per host name.
	env.selfCgroup = "6:freezer:/\n1:cpu,cpuacct:/\n"
	env.hostname = "ws 7"
	c, err = detectCgroups("sprite-jobs", env)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"/sys/fs/cgroup/freezer/sprite-jobs-ws_7", "/sys/fs/cgroup/cpu,cpuacct/sprite-jobs-ws_7"}
	if !slices.Equal(c.Dirs(), want) {
		t.Errorf("v1 root: dirs %q, want %q", c.Dirs(), want)
	}

	// freezer and cpu in one hierarchy: one directory, with cpu.shares.
	env.mountinfo = "37 31 0:34 / /sys/fs/cgroup/freezer,cpu rw - cgroup cgroup rw,freezer,cpu\n"
	env.selfCgroup = "6:freezer,cpu:/x\n"
	c, err = detectCgroups("sprite-jobs", env)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.hiers) != 1 || !c.hiers[0].cpu || !c.CanFreeze() || c.hiers[0].parent != "/sys/fs/cgroup/freezer,cpu/x/sprite-jobs" {
		t.Errorf("co-mounted freezer and cpu: %+v", c.hiers)
	}

	// No freezer: cpu only, no freezing.
	env.mountinfo = strings.ReplaceAll(v1Mountinfo, "rw,freezer", "rw,devices")
	c, err = detectCgroups("sprite-jobs", env)
	if err != nil {
		t.Fatal(err)
	}
	if c.CanFreeze() || len(c.Dirs()) != 1 {
		t.Errorf("v1 without freezer: freeze %v dirs %q", c.CanFreeze(), c.Dirs())
	}
	j := &JobCgroup{c: c, id: "x", dirs: []string{"/nonexistent"}}
	if err := j.Freeze(); err == nil || !strings.Contains(err.Error(), "freezer controller mounted") {
		t.Errorf("freeze without a freezer: %v", err)
	}

	// Nothing usable.
	env.mountinfo = "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
	if _, err := detectCgroups("sprite-jobs", env); err == nil {
		t.Error("no freezer and no cpu hierarchy: no error")
	}
}

func TestDetectCgroupsV2(t *testing.T) {
	env := cgEnv{
		v2:         true,
		v2Mount:    "/sys/fs/cgroup",
		selfCgroup: "0::/system.slice/sprite.service\n",
		mountinfo:  "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
		hostname:   "ws1",
	}
	c, err := detectCgroups("sprite-jobs", env)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/sys/fs/cgroup/system.slice/sprite.service/sprite-jobs"}; c.Version() != 2 || !slices.Equal(c.Dirs(), want) || !c.CanFreeze() {
		t.Errorf("v2: version %d dirs %q; want 2 %q", c.Version(), c.Dirs(), want)
	}
	// A container that sees its own subtree mounted at /sys/fs/cgroup.
	env.mountinfo = `30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw` + "\n"
	env.selfCgroup = "0::/docker/abc/daemon\n"
	c, err = detectCgroups("sprite-jobs", env)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/sys/fs/cgroup/daemon/sprite-jobs"}; !slices.Equal(c.Dirs(), want) {
		t.Errorf("v2 container: dirs %q, want %q", c.Dirs(), want)
	}
	env.selfCgroup = "0::/other\n"
	if _, err := detectCgroups("sprite-jobs", env); err == nil {
		t.Error("own cgroup outside the mount: no error")
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b\134c\`); got != `/a b\c\` {
		t.Errorf("unescape: %q", got)
	}
}

func TestCreateValidatesID(t *testing.T) {
	c := &Cgroups{version: 1, hiers: []cgHier{{ctrl: "freezer", parent: t.TempDir()}}}
	for _, id := range []string{"", ".", "..", "a/b", "h1..2", "a b", "x\x00"} {
		if _, err := c.Create(id); err == nil {
			t.Errorf("Create(%q): no error", id)
		}
	}
}

// testCgroups makes job cgroups for this test run and removes them after.
func testCgroups(t *testing.T, c *Cgroups, err error) *Cgroups {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Cleanup(); err != nil {
			t.Error(err)
		}
		for _, d := range c.Dirs() {
			if err := os.Remove(d); err != nil {
				t.Errorf("remove %s: %v", d, err)
			}
		}
	})
	return c
}

func TestJobCgroup(t *testing.T) {
	c, err := NewCgroups(fmt.Sprintf("sprite-test-%d", os.Getpid()))
	c = testCgroups(t, c, err)
	t.Logf("cgroup v%d at %q, weight %v", c.Version(), c.Dirs(), c.CanWeight())
	exerciseJobCgroup(t, c)
}

// TestJobCgroupUnified runs the v2 code on a v1 machine's empty cgroup2
// hierarchy (/sys/fs/cgroup/unified), where there is one.
func TestJobCgroupUnified(t *testing.T) {
	const mnt = "/sys/fs/cgroup/unified"
	if _, err := os.Stat(mnt + "/cgroup.procs"); err != nil || cgroupV2Machine() {
		t.Skip("no hybrid cgroup2 hierarchy at " + mnt)
	}
	env, err := readCgEnv()
	if err != nil {
		t.Fatal(err)
	}
	env.v2, env.v2Mount = true, mnt
	c, err := detectCgroups(fmt.Sprintf("sprite-test-%d", os.Getpid()), env)
	if err == nil {
		err = c.setup()
	}
	c = testCgroups(t, c, err)
	if c.Version() != 2 {
		t.Fatalf("version %d", c.Version())
	}
	exerciseJobCgroup(t, c)
}

func cgroupV2Machine() bool {
	_, err := os.Stat(cgroupMount + "/cgroup.controllers")
	return err == nil
}

// ticker starts a shell in j that forks a child per line it prints, and
// returns its output lines.
func ticker(t *testing.T, j *JobCgroup) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read go; while :; do sleep 0.01; echo x; done")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Thawed first: a frozen process would not die (v1).
		if j.c.CanFreeze() {
			_ = j.Thaw()
			j.thawNested()
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for _, p := range j.Procs() {
		if err := os.WriteFile(p, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(in, "go\n"); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() { // ends when the shell's stdout closes (it is killed)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return cmd, lines
}

func frozenState(t *testing.T, j *JobCgroup) string {
	t.Helper()
	f := "freezer.state"
	if j.c.Version() == 2 {
		f = "cgroup.events"
	}
	b, err := os.ReadFile(filepath.Join(j.Dirs()[0], f))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if j.c.Version() == 2 {
		if strings.Contains(s, "frozen 1") {
			return "FROZEN"
		}
		return "THAWED"
	}
	return strings.TrimSpace(s)
}

func exerciseJobCgroup(t *testing.T, c *Cgroups) {
	j, err := c.Create("h1.4242")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range j.Dirs() {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Fatalf("job cgroup %s: %v", d, err)
		}
	}
	for i, h := range c.hiers {
		f, want := filepath.Join(j.Dirs()[i], "cpu.shares"), "2"
		if c.Version() == 2 {
			f, want = filepath.Join(j.Dirs()[i], "cpu.weight"), "1"
		}
		if c.Version() == 2 && !c.CanWeight() || c.Version() == 1 && !h.cpu {
			continue
		}
		b, _ := os.ReadFile(f)
		if strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, want %s", f, b, want)
		}
	}
	cmd, lines := ticker(t, j)
	pid := cmd.Process.Pid

	// The shell is in every hierarchy's job cgroup.
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, d := range j.Dirs() {
		if !strings.Contains(string(cg), "/"+filepath.Base(filepath.Dir(d))+"/h1.4242\n") {
			t.Errorf("process %d is not in %s:\n%s", pid, d, cg)
		}
	}
	pids, err := j.Pids()
	if err != nil || !slices.Contains(pids, pid) {
		t.Errorf("Pids() = %v, %v; want %d in it", pids, err, pid)
	}
	waitLine(t, lines, 5*time.Second)

	// Frozen: no output any more.
	start := time.Now()
	if err := j.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Logf("froze in %v", time.Since(start))
	if s := frozenState(t, j); s != "FROZEN" {
		t.Errorf("after Freeze the cgroup is %s", s)
	}
	drain(lines)
	select {
	case l := <-lines:
		t.Errorf("a frozen job printed %q", l)
	case <-time.After(300 * time.Millisecond):
	}
	// Thawed: output again.
	if err := j.Thaw(); err != nil {
		t.Fatal(err)
	}
	if s := frozenState(t, j); s != "THAWED" {
		t.Errorf("after Thaw the cgroup is %s", s)
	}
	waitLine(t, lines, 5*time.Second)

	// Kill takes the shell and its children, whether frozen or not.
	if err := j.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := j.Kill(); err != nil {
		t.Fatal(err)
	}
	if pids, err := j.Pids(); err != nil || len(pids) != 0 {
		t.Errorf("after Kill: Pids() = %v, %v", pids, err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the shell ended with %v, want killed", err)
	}
	if err := j.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range j.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there after Remove: %v", d, err)
		}
	}

	// Cleanup removes what a dead daemon left, nested cgroups included.
	j2, err := c.Create("h2.7")
	if err != nil {
		t.Fatal(err)
	}
	cmd2, _ := ticker(t, j2)
	// The job made a cgroup of its own, moved into it and froze it.
	for i, d := range j2.Dirs() {
		deeper := filepath.Join(d, "inner", "deeper")
		if err := os.MkdirAll(deeper, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(deeper, "cgroup.procs"), []byte(strconv.Itoa(cmd2.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
		if i == 0 && c.CanFreeze() {
			f, v := "freezer.state", "FROZEN"
			if c.Version() == 2 {
				f, v = "cgroup.freeze", "1"
			}
			if err := os.WriteFile(filepath.Join(deeper, f), []byte(v), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pids, err := j2.Pids(); err != nil || !slices.Contains(pids, cmd2.Process.Pid) {
		t.Errorf("Pids() = %v, %v; want the process in a nested cgroup, %d", pids, err, cmd2.Process.Pid)
	}
	if err := c.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := cmd2.Wait(); err == nil {
		t.Error("the job in a nested cgroup survived Cleanup")
	}
	for _, d := range j2.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there after Cleanup: %v", d, err)
		}
	}
}

func waitLine(t *testing.T, lines <-chan string, d time.Duration) {
	t.Helper()
	select {
	case _, ok := <-lines:
		if !ok {
			t.Fatal("the job's output ended")
		}
	case <-time.After(d):
		t.Fatal("no output from the job")
	}
}

// drain empties what the pipe and channel still held when the job froze.
func drain(lines <-chan string) {
	for {
		select {
		case <-lines:
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}
