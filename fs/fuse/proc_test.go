package fusefs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"sprite/fs"
)

// testProcs is a ProcTable over a map that records the signals sent.
type testProcs struct {
	mu    sync.Mutex
	procs map[string]fs.ProcEntry
	sent  []string // "id signal"
}

func (p *testProcs) Procs(context.Context) ([]fs.ProcEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []fs.ProcEntry
	for _, e := range p.procs {
		out = append(out, e)
	}
	return out, nil
}

func (p *testProcs) ProcStatus(_ context.Context, id string, cr fs.Cred) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.procs[id]
	if !ok {
		return nil, syscall.ENOENT
	}
	return fmt.Appendf(nil, "id\t%s\nuid\t%d\nstate\trunning\n", id, e.UID), nil
}

func (p *testProcs) ProcCtl(_ context.Context, id string, cr fs.Cred, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.procs[id]; !ok {
		return syscall.ENOENT
	}
	p.sent = append(p.sent, fmt.Sprintf("%s %d", id, sig))
	return nil
}

func (p *testProcs) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sent
	p.sent = nil
	return s
}

// sh runs a shell command line as uid (gid the same) outside the mount.
func sh(uid uint32, line string) (string, error) {
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir = "/"
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// /sprite/proc through the kernel: a shell's `echo kill > ctl`, `cat
// status`, and the owner checks for another user.
func TestProcThroughMount(t *testing.T) {
	procs := &testProcs{procs: map[string]fs.ProcEntry{
		"h1.12": {ID: "h1.12", UID: 1000, GID: 1000},
		"h2.7":  {ID: "h2.7", UID: fs.Nobody, GID: fs.Nobody},
	}}
	mnt, _, _, _ := testMountWith(t, func(c *fs.Client) { c.Procs = procs })
	// Let nobody walk to the mount.
	for _, d := range []string{filepath.Dir(mnt), filepath.Dir(filepath.Dir(mnt))} {
		os.Chmod(d, 0o755)
	}
	proc := filepath.Join(mnt, "proc")

	ents, err := os.ReadDir(proc)
	if err != nil || len(ents) != 2 || ents[0].Name() != "h1.12" || ents[1].Name() != "h2.7" || !ents[0].IsDir() {
		t.Fatalf("ls proc: %v %v", ents, err)
	}
	for p, want := range map[string]os.FileMode{
		"":                0o555 | os.ModeDir,
		"h1.12":           0o555 | os.ModeDir,
		"h1.12/status":    0o400,
		"h1.12/ctl":       0o200,
		"h2.7/ctl":        0o200,
		"h2.7/../h1.12/.": 0o555 | os.ModeDir,
	} {
		st, err := os.Stat(filepath.Join(proc, p))
		if err != nil || st.Mode() != want {
			t.Errorf("stat proc/%s: %v %v, want %v", p, st.Mode(), err, want)
			continue
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; p == "h1.12/status" && uid != 1000 {
			t.Errorf("proc/%s owned by %d, want 1000", p, uid)
		}
	}

	// Root reads anyone's status and signals anyone's process.
	out, err := sh(0, "cat "+proc+"/h1.12/status")
	if err != nil || out != "id\th1.12\nuid\t1000\nstate\trunning\n" {
		t.Errorf("cat status as root: %q %v", out, err)
	}
	if out, err := sh(0, "echo kill > "+proc+"/h1.12/ctl && echo stop >> "+proc+"/h1.12/ctl && printf 'kill -CONT\\n' > "+proc+"/h1.12/ctl"); err != nil {
		t.Errorf("echo kill > ctl as root: %q %v", out, err)
	}
	if got := procs.take(); !slices.Equal(got, []string{"h1.12 9", "h1.12 19", "h1.12 18"}) {
		t.Errorf("signals sent: %v", got)
	}
	// /bin/echo, not dash's builtin, says which error.
	if out, err := sh(0, "/bin/echo explode > "+proc+"/h1.12/ctl"); err == nil || !strings.Contains(out, "Invalid argument") {
		t.Errorf("echo explode > ctl: %q %v, want Invalid argument", out, err)
	}

	// Another user: permission denied for h1.12, its own h2.7 works.
	if out, err := sh(fs.Nobody, "cat "+proc+"/h1.12/status"); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("cat another user's status: %q %v, want Permission denied", out, err)
	}
	if out, err := sh(fs.Nobody, "echo kill > "+proc+"/h1.12/ctl"); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("kill another user's process: %q %v, want Permission denied", out, err)
	}
	if out, err := sh(fs.Nobody, "cat "+proc+"/h2.7/status && echo term > "+proc+"/h2.7/ctl"); err != nil || !strings.Contains(out, "uid\t65534") {
		t.Errorf("nobody's own process: %q %v", out, err)
	}
	if got := procs.take(); !slices.Equal(got, []string{"h2.7 15"}) {
		t.Errorf("signals sent: %v", got)
	}

	// Read-only tree.
	if out, err := sh(0, "touch "+proc+"/h1.12/new || mkdir "+proc+"/h9.1 || rm -f "+proc+"/h1.12/ctl || mv "+proc+"/h1.12 "+proc+"/h1.13"); err == nil {
		t.Errorf("changing /proc worked: %q", out)
	}
	if _, err := os.Stat(filepath.Join(proc, "h1.12", "ctl")); err != nil {
		t.Errorf("ctl after rm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(proc, "H1.12")); !os.IsNotExist(err) {
		t.Errorf("bad id: %v, want ENOENT", err)
	}

	// Processes come and go: nothing is cached.
	procs.mu.Lock()
	procs.procs["h3.1"] = fs.ProcEntry{ID: "h3.1", UID: 0}
	delete(procs.procs, "h2.7")
	procs.mu.Unlock()
	if _, err := os.Stat(filepath.Join(proc, "h3.1", "status")); err != nil {
		t.Errorf("a new process: %v", err)
	}
	if out, _ := sh(0, "ls "+proc); out != "h1.12\nh3.1\n" {
		t.Errorf("ls after a change: %q", out)
	}
}
