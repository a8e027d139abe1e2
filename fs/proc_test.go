package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
)

// mapProcs is a ProcTable over a map, that records the signals it sends.
type mapProcs struct {
	mu    sync.Mutex
	procs map[string]ProcEntry
	sent  []string // "id SIGNAL"
	lists int      // calls of Procs
}

func (m *mapProcs) Procs(context.Context) ([]ProcEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lists++
	var out []ProcEntry
	for _, e := range m.procs {
		out = append(out, e)
	}
	return out, nil
}

func (m *mapProcs) ProcStatus(_ context.Context, id string, cr Cred) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.procs[id]
	if !ok {
		return nil, syscall.ENOENT
	}
	if cr.UID != 0 && cr.UID != e.UID {
		return nil, syscall.EACCES
	}
	return fmt.Appendf(nil, "id %s\nuid %d\nstate running\n", id, e.UID), nil
}

func (m *mapProcs) ProcCtl(_ context.Context, id string, cr Cred, sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.procs[id]
	if !ok {
		return syscall.ENOENT
	}
	if cr.UID != 0 && cr.UID != e.UID {
		return syscall.EACCES
	}
	m.sent = append(m.sent, fmt.Sprintf("%s %d", id, sig))
	return nil
}

func (m *mapProcs) takeSent() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sent
	m.sent = nil
	return s
}

func procClient(t *testing.T) (*Client, *mapProcs) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	m := &mapProcs{procs: map[string]ProcEntry{
		"h1.12":     {ID: "h1.12", UID: 1000, GID: 100},
		"h1.9":      {ID: "h1.9", UID: 1000, GID: 100},
		"h2.7":      {ID: "h2.7", UID: 2000, GID: 200},
		"Bad..1":    {ID: "Bad..1", UID: 1000}, // not listed
		"lab-h3.40": {ID: "lab-h3.40", UID: 0},
	}}
	return &Client{Table: NewTable(log), Log: log, Procs: m}, m
}

var (
	owner    = Cred{UID: 1000, GID: 100}
	other    = Cred{UID: 2000, GID: 200}
	rootCred = Cred{}
)

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if Errno(err) != want {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

func TestProcListingAndAttrs(t *testing.T) {
	c, _ := procClient(t)
	ctx := context.Background()
	ents, err := c.Readdir(ctx, other, "/proc")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if got, want := fmt.Sprint(names), "[. .. h1.9 h1.12 h2.7 lab-h3.40]"; got != want {
		t.Errorf("readdir /proc = %s, want %s", got, want)
	}
	if top, err := c.Readdir(ctx, other, "/"); !hasName(top, "proc") {
		t.Errorf("/ lacks proc: %v %v", top, err)
	}
	a, err := c.Getattr(ctx, other, "/proc", nil)
	if err != nil || a.Mode != syscall.S_IFDIR|0o555 {
		t.Errorf("/proc: %o %v", a.Mode, err)
	}
	e, err := c.Lookup(ctx, other, "/proc", "h1.12")
	if err != nil || e.Kind != RouteProc || e.Attr.Mode != syscall.S_IFDIR|0o555 || e.Attr.UID != 1000 || e.Attr.GID != 100 {
		t.Errorf("lookup h1.12: %+v %v", e, err)
	}
	e, err = c.Lookup(ctx, other, "/proc/h1.12", "status")
	if err != nil || e.Attr.Mode != syscall.S_IFREG|0o400 || e.Attr.UID != 1000 {
		t.Errorf("lookup status: %+v %v", e, err)
	}
	a, err = c.Getattr(ctx, other, "/proc/h1.12/ctl", nil)
	if err != nil || a.Mode != syscall.S_IFREG|0o200 || a.UID != 1000 || a.GID != 100 {
		t.Errorf("getattr ctl: %+v %v", a, err)
	}
	ents, err = c.Readdir(ctx, other, "/proc/h2.7")
	if err != nil || len(ents) != 4 || ents[2].Name != "ctl" || ents[3].Name != "status" {
		t.Errorf("readdir /proc/h2.7: %v %v", ents, err)
	}
	// Bad ids, missing processes and files.
	for _, p := range []string{"/proc/Bad..1", "/proc/h1.13", "/proc/h1", "/proc/.12", "/proc/h1.12x", "/proc/-h1.12",
		"/proc/h1.12/other", "/proc/h1.1 2", "/proc/h1.12.3"} {
		_, err := c.Getattr(ctx, other, p, nil)
		wantErrno(t, "getattr "+p, err, syscall.ENOENT)
	}
	_, err = c.Readdir(ctx, other, "/proc/h1.12/status")
	wantErrno(t, "readdir of a file", err, syscall.ENOTDIR)
	_, err = c.Getattr(ctx, other, "/proc/h1.12/status/x", nil)
	wantErrno(t, "below a file", err, syscall.ENOTDIR)

	// Nil table: an empty directory.
	c.Procs = nil
	ents, err = c.Readdir(ctx, other, "/proc")
	if err != nil || len(ents) != 2 {
		t.Errorf("nil ProcTable: %v %v", ents, err)
	}
	_, err = c.Getattr(ctx, other, "/proc/h1.12", nil)
	wantErrno(t, "nil ProcTable, getattr", err, syscall.ENOENT)
}

func hasName(ents []Dirent, name string) bool {
	for _, e := range ents {
		if e.Name == name {
			return true
		}
	}
	return false
}

func TestProcStatusPermission(t *testing.T) {
	c, _ := procClient(t)
	ctx := context.Background()
	for _, cr := range []Cred{owner, rootCred} {
		b, err := c.ProcOpen(ctx, cr, "h1.12/status", syscall.O_RDONLY)
		if err != nil || string(b) != "id h1.12\nuid 1000\nstate running\n" {
			t.Errorf("status as uid %d: %q %v", cr.UID, b, err)
		}
	}
	_, err := c.ProcOpen(ctx, other, "h1.12/status", syscall.O_RDONLY)
	wantErrno(t, "status as another user", err, syscall.EACCES)
	_, err = c.ProcOpen(ctx, rootCred, "h1.12/status", syscall.O_WRONLY)
	wantErrno(t, "status for writing", err, syscall.EACCES)
	_, err = c.ProcOpen(ctx, owner, "h1.12/ctl", syscall.O_RDONLY)
	wantErrno(t, "ctl for reading", err, syscall.EACCES)
	_, err = c.ProcOpen(ctx, owner, "h1.12/ctl", syscall.O_RDWR)
	wantErrno(t, "ctl for reading and writing", err, syscall.EACCES)
	_, err = c.ProcOpen(ctx, other, "h1.12/ctl", syscall.O_WRONLY)
	wantErrno(t, "ctl as another user", err, syscall.EACCES)
	_, err = c.ProcOpen(ctx, owner, "h1.13/status", syscall.O_RDONLY)
	wantErrno(t, "status of no process", err, syscall.ENOENT)
	_, err = c.ProcOpen(ctx, owner, "H1.12/status", syscall.O_RDONLY)
	wantErrno(t, "status of a bad id", err, syscall.ENOENT)
	if _, err := c.ProcOpen(ctx, owner, "h1.12/ctl", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC); err != nil {
		t.Errorf("ctl as a shell opens it: %v", err)
	}
}

func TestProcCtl(t *testing.T) {
	c, m := procClient(t)
	ctx := context.Background()
	for line, want := range map[string]syscall.Signal{
		"kill\n": syscall.SIGKILL, "term": syscall.SIGTERM, "int\n": syscall.SIGINT, "stop\n": syscall.SIGSTOP,
		"cont\n": syscall.SIGCONT, "hup": syscall.SIGHUP, "kill -9": syscall.SIGKILL, "kill TERM\n": syscall.SIGTERM,
		"kill -SIGSTOP": syscall.SIGSTOP, "kill -cont": syscall.SIGCONT, "signal 15\n": syscall.SIGTERM,
		"  kill  \r\n": syscall.SIGKILL,
	} {
		n, err := c.ProcWrite(ctx, owner, "h1.12/ctl", []byte(line))
		if err != nil || n != len(line) {
			t.Errorf("write %q: %d %v", line, n, err)
			continue
		}
		if got := m.takeSent(); len(got) != 1 || got[0] != fmt.Sprintf("h1.12 %d", want) {
			t.Errorf("write %q sent %v, want signal %d", line, got, want)
		}
	}
	// Several lines: all carried out, in order.
	if _, err := c.ProcWrite(ctx, rootCred, "h2.7/ctl", []byte("stop\ncont\n")); err != nil {
		t.Errorf("two lines as rootCred: %v", err)
	}
	if got := fmt.Sprint(m.takeSent()); got != "[h2.7 19 h2.7 18]" {
		t.Errorf("two lines sent %s", got)
	}
	// Unknown words: nothing is sent.
	for _, line := range []string{"KILL", "die", "kill 0", "kill 65", "kill -x", "signal", "kill 9 now", "stop\nfoo\n", "sigkill"} {
		_, err := c.ProcWrite(ctx, owner, "h1.12/ctl", []byte(line))
		wantErrno(t, fmt.Sprintf("write %q", line), err, syscall.EINVAL)
	}
	if got := m.takeSent(); len(got) != 0 {
		t.Errorf("bad lines sent %v", got)
	}
	_, err := c.ProcWrite(ctx, other, "h1.12/ctl", []byte("kill\n"))
	wantErrno(t, "kill by another user", err, syscall.EACCES)
	_, err = c.ProcWrite(ctx, owner, "h1.99/ctl", []byte("kill\n"))
	wantErrno(t, "kill of no process", err, syscall.ENOENT)
	_, err = c.ProcWrite(ctx, owner, "h1.12/status", []byte("kill\n"))
	wantErrno(t, "write to status", err, syscall.EBADF)
	if got := m.takeSent(); len(got) != 0 {
		t.Errorf("refused writes sent %v", got)
	}
	// A shell's truncation of ctl does nothing and works; other changes do not.
	if _, err := c.Setattr(ctx, owner, "/proc/h1.12/ctl", nil, SetAttr{Valid: SetSize | SetMtimeNow}); err != nil {
		t.Errorf("truncate ctl: %v", err)
	}
	_, err = c.Setattr(ctx, other, "/proc/h1.12/ctl", nil, SetAttr{Valid: SetSize})
	wantErrno(t, "truncate ctl as another user", err, syscall.EACCES)
	_, err = c.Setattr(ctx, owner, "/proc/h1.12/ctl", nil, SetAttr{Valid: SetMode, Mode: 0o777})
	wantErrno(t, "chmod ctl", err, syscall.EROFS)
	_, err = c.Setattr(ctx, owner, "/proc/h1.12/status", nil, SetAttr{Valid: SetSize})
	wantErrno(t, "truncate status", err, syscall.EROFS)
}

func TestProcReadOnlyTree(t *testing.T) {
	c, _ := procClient(t)
	ctx := context.Background()
	_, _, _, err := c.Create(ctx, rootCred, "/proc/h1.12", "new", syscall.O_WRONLY, 0o644)
	wantErrno(t, "create in /proc/<id>", err, syscall.EACCES)
	_, err = c.Mkdir(ctx, rootCred, "/proc", "h1.1", 0o755)
	wantErrno(t, "mkdir in /proc", err, syscall.EACCES)
	_, err = c.Unlink(ctx, rootCred, "/proc/h1.12", "ctl")
	wantErrno(t, "unlink ctl", err, syscall.EACCES)
	_, err = c.Rmdir(ctx, rootCred, "/proc", "h1.12")
	wantErrno(t, "rmdir a process", err, syscall.EACCES)
	_, err = c.Rmdir(ctx, rootCred, "/", "proc")
	wantErrno(t, "rmdir /proc", err, syscall.EACCES)
	wantErrno(t, "rename", c.Rename(ctx, rootCred, "/proc", "h1.12", "/proc", "h1.13", 0), syscall.EACCES)
	_, err = c.Symlink(ctx, rootCred, "/proc", "x", "h1.12")
	wantErrno(t, "symlink", err, syscall.EACCES)
	if err := CheckPrefix("/proc/x"); err == nil {
		t.Error("a prefix under /proc was accepted")
	}
}

// errProcs fails every call, without an errno.
type errProcs struct{}

func (errProcs) Procs(context.Context) ([]ProcEntry, error) {
	return nil, errors.New("home h1 unreachable")
}
func (errProcs) ProcStatus(context.Context, string, Cred) ([]byte, error) {
	return nil, errors.New("unreachable")
}
func (errProcs) ProcCtl(context.Context, string, Cred, syscall.Signal) error {
	return errors.New("unreachable")
}

func TestProcTableErrors(t *testing.T) {
	c, _ := procClient(t)
	c.Procs = errProcs{}
	_, err := c.Readdir(context.Background(), rootCred, "/proc")
	wantErrno(t, "readdir with a failing table", err, syscall.EIO)
	_, err = c.Getattr(context.Background(), rootCred, "/proc/h1.12", nil)
	wantErrno(t, "getattr with a failing table", err, syscall.EIO)
}

// A process that starts after the listing was cached is found at once.
func TestProcCacheMiss(t *testing.T) {
	c, m := procClient(t)
	ctx := context.Background()
	if _, err := c.Getattr(ctx, owner, "/proc/h1.12", nil); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.procs["h1.100"] = ProcEntry{ID: "h1.100", UID: 1000}
	lists := m.lists
	m.mu.Unlock()
	if _, err := c.Getattr(ctx, owner, "/proc/h1.12/status", nil); err != nil {
		t.Fatal(err)
	}
	if m.lists != lists {
		t.Errorf("a cached id asked the table again (%d calls, was %d)", m.lists, lists)
	}
	if _, err := c.Getattr(ctx, owner, "/proc/h1.100", nil); err != nil {
		t.Errorf("new process: %v", err)
	}
}

func TestValidProcID(t *testing.T) {
	for id, want := range map[string]bool{
		"h1.1234": true, "lab-h3.0": true, "a.1": true, "h1.": false, ".1": false, "h1": false, "H1.2": false,
		"h1.2.3": false, "h_1.2": false, "-h.2": false, "h1.-2": false, "h1.+2": false, "h1.12345678901234567890": false,
	} {
		if got := ValidProcID(id); got != want {
			t.Errorf("ValidProcID(%q) = %v", id, got)
		}
	}
}
