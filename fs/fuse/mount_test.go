package fusefs

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"sprite/fs"
	"sprite/fs/posixsuite"
)

// testMount serves a temporary directory as /d (by an in-process server
// for host "h1") and mounts the namespace; the client runs as root, which
// the server squashes, so the export is world-writable.
func testMount(t *testing.T) (mnt, dir string, srv *fs.Server) {
	t.Helper()
	mnt, dir, srv, _ = testMountTable(t)
	return mnt, dir, srv
}

// testMountTable is testMount that also hands back the prefix table.
func testMountTable(t *testing.T) (mnt, dir string, srv *fs.Server, tb *fs.Table) {
	t.Helper()
	return testMountWith(t, nil)
}

// testMountWith is testMountTable with setup(client) run before the mount.
func testMountWith(t *testing.T, setup func(*fs.Client)) (mnt, dir string, srv *fs.Server, tb *fs.Table) {
	t.Helper()
	return testMountLog(t, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), setup)
}

// testMountLog is testMountWith logging to log.
func testMountLog(t *testing.T, log *slog.Logger, setup func(*fs.Client)) (mnt, dir string, srv *fs.Server, tb *fs.Table) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests mount FUSE and need root: sudo go test ./fs/...")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatal("no /dev/fuse: load the fuse module (modprobe fuse)")
	}
	dir = t.TempDir()
	os.Chmod(dir, 0o777)
	// The server may send an invalidation (from its inotify watcher)
	// before the client and the mount exist: it waits for them.
	var m *Mount
	var c *fs.Client
	ready := make(chan struct{})
	srv, err := fs.NewServer(fs.ServerConfig{Host: "h1", Exports: []fs.Exported{{Prefix: "/d", Path: dir}}, Log: log,
		Send: func(ctx context.Context, host string, inv fs.Invalidate) error {
			select {
			case <-ready:
			case <-ctx.Done():
				return ctx.Err()
			}
			c.Recall(ctx, inv.Items, inv.Recall)
			m.Invalidate(inv.Items)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	tb = fs.NewTable(log)
	tb.Set("h1", srv.Exports(), true)
	c = &fs.Client{Table: tb, Log: log, Boot: 1,
		Call: func(ctx context.Context, host, method string, req *fs.Req, resp *fs.Resp) error {
			r, err := srv.Serve(ctx, host, method, req)
			if err == nil {
				*resp = *r
			}
			return err
		}}
	if setup != nil {
		setup(c)
	}
	mnt = filepath.Join(t.TempDir(), "sprite")
	m, err = MountAt(mnt, c, log)
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	close(ready)
	testMounts.Store(mnt, m)
	t.Cleanup(func() { m.Unmount(); srv.Stop(); testMounts.Delete(mnt) })
	return mnt, dir, srv, tb
}

// testMounts holds each test's Mount by its mount point (mountOf).
var testMounts sync.Map

// mountOf returns the Mount a test helper made at mnt.
func mountOf(t *testing.T, mnt string) *Mount {
	t.Helper()
	m, ok := testMounts.Load(mnt)
	if !ok {
		t.Fatalf("no test mount at %s", mnt)
	}
	return m.(*Mount)
}

// TestNewDomainVisibleAfterMiss: a name looked up before its host exported
// it must appear as soon as the prefix table has it (no negative caching
// outside the domains).
func TestNewDomainVisibleAfterMiss(t *testing.T) {
	mnt, _, _, tb := testMountTable(t)
	late := filepath.Join(mnt, "late")
	if _, err := os.Stat(late); !os.IsNotExist(err) {
		t.Fatalf("stat before the export: %v, want ENOENT", err)
	}
	tb.Set("h2", []fs.Exported{{Prefix: "/late/x", Path: "/"}}, true) // /late is then a virtual directory
	if _, err := os.Stat(late); err != nil {
		t.Fatalf("stat right after h2 exported /late: %v (a negative entry was cached)", err)
	}
}

func TestMountRoundTrip(t *testing.T) {
	mnt, dir, _ := testMount(t)
	ents, err := os.ReadDir(mnt)
	if err != nil || len(ents) != 3 || ents[0].Name() != "d" || ents[1].Name() != "hosts" || ents[2].Name() != "proc" {
		t.Fatalf("root: %v %v", ents, err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB: many 1 MiB writes
	p := filepath.Join(mnt, "d", "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("on the server's disk: %d bytes, %v", len(got), err)
	}
	// A change on the server's own disk reaches the mount.
	os.WriteFile(filepath.Join(dir, "f"), []byte("local"), 0o644)
	got, err = os.ReadFile(p)
	if err != nil || string(got) != "local" {
		t.Fatalf("after a local change: %q %v", got[:min(len(got), 20)], err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "d", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, filepath.Join(mnt, "d", "sub", "g")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/g", filepath.Join(mnt, "d", "ln")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "d", "ln")); err != nil || string(got) != "local" {
		t.Fatalf("through a symlink: %q %v", got, err)
	}
	if err := os.Chmod(filepath.Join(mnt, "d", "sub", "g"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "sub", "g")); st.Mode().Perm() != 0o600 {
		t.Fatalf("chmod: %v", st.Mode())
	}
	out, err := exec.Command("sh", "-c", "cd "+mnt+"/d && echo a >> app && echo b >> app && cat app && truncate -s 1 app && cat app").CombinedOutput()
	if err != nil || string(out) != "a\nb\na" {
		t.Fatalf("append/truncate: %q %v", out, err)
	}
	if err := os.Remove(filepath.Join(mnt, "d", "ln")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "d", "app"), filepath.Join(mnt, "hosts", "x")); err == nil {
		t.Fatal("rename into /hosts worked")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(mnt, "d"), &st); err != nil || st.Blocks == 0 {
		t.Fatalf("statfs: %+v %v", st, err)
	}
}

// The POSIX suite over the mount, run by uid 1000 (a re-exec of this test
// binary): an ordinary user, for the kernel's checks and the server's.
func TestPOSIXSuiteOnMount(t *testing.T) {
	mnt, _, _ := testMount(t)
	bin := filepath.Join(t.TempDir(), "suite.test")
	if err := exec.Command("cp", os.Args[0], bin).Run(); err != nil {
		t.Fatal(err)
	}
	// uid 1000 walks the test's temporary directories to the binary and
	// the mount.
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), filepath.Dir(mnt)} {
		os.Chmod(d, 0o755)
	}
	cmd := exec.Command(bin, "-test.run=^TestPOSIXHelper$")
	cmd.Env = append(os.Environ(), "SPRITE_POSIX_DIR="+filepath.Join(mnt, "d"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the POSIX suite failed on the mount: %v\n%s", err, out)
	}
}

// TestPOSIXHelper is the child of TestPOSIXSuiteOnMount; on its own it
// has nothing to do.
func TestPOSIXHelper(t *testing.T) {
	dir := os.Getenv("SPRITE_POSIX_DIR")
	if dir == "" {
		return
	}
	for _, r := range posixsuite.Run(dir, posixsuite.Options{NonRoot: true, LargeMiB: 16}) {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
	}
}

// A busy mount (a process's working directory inside) does not hold up
// Unmount: the connection is aborted.
func TestUnmountBusy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("these tests mount FUSE and need root: sudo go test ./fs/...")
	}
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	srv, err := fs.NewServer(fs.ServerConfig{Host: "h1", Exports: []fs.Exported{{Prefix: "/d", Path: dir}}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	tb := fs.NewTable(log)
	tb.Set("h1", srv.Exports(), true)
	c := &fs.Client{Table: tb, Log: log, Call: func(ctx context.Context, host, method string, req *fs.Req, resp *fs.Resp) error {
		r, err := srv.Serve(ctx, host, method, req)
		if err == nil {
			*resp = *r
		}
		return err
	}}
	mnt := filepath.Join(t.TempDir(), "sprite")
	m, err := MountAt(mnt, c, log)
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "60")
	sleeper.Dir = filepath.Join(mnt, "d")
	if err := sleeper.Start(); err != nil {
		m.Unmount()
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	done := make(chan struct{})
	go func() { m.Unmount(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Unmount waited for the mount's user")
	}
}

// A process the mounting daemon starts (a job init, a job) must not
// inherit the FUSE device: it could serve the mount, and it would keep the
// connection open after the daemon dies, hanging in its own calls.
func TestChildrenDoNotInheritTheDevice(t *testing.T) {
	testMount(t)
	if len(fuseFDs()) == 0 {
		t.Fatal("no /dev/fuse descriptor in the mounting process (the test is wrong otherwise)")
	}
	out, err := exec.Command("sh", "-c", "ls -l /proc/$$/fd").CombinedOutput()
	if err != nil {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("/dev/fuse")) {
		t.Fatalf("a child holds /dev/fuse:\n%s", out)
	}
}
