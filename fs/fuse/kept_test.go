package fusefs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sprite/fs"
)

// TestKeptOpen: reading a file again soon after closing it costs no call
// (the handle kept at the close is taken again), yet every read shows the
// file as it is: another user opens it anew, a change on the server's disk
// reaches this host (the server's Settle waits for that) and the next open
// asks the server, as does the first open after a write from this host;
// and a kept handle goes back to the server after keepFor.
func TestKeptOpen(t *testing.T) {
	old := keepFor
	keepFor = 1500 * time.Millisecond
	t.Cleanup(func() { keepFor = old })
	mnt, back, srv, count, reset := countingMountServer(t)
	for _, d := range []string{filepath.Dir(mnt), filepath.Dir(filepath.Dir(mnt))} {
		os.Chmod(d, 0o755) // the test's temporary directories, for uid 1000
	}
	if err := os.Mkdir(filepath.Join(back, "k"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(back, "k", "h.h")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(src, []byte(s), 0o666); err != nil {
			t.Fatal(err)
		}
		os.Chmod(src, 0o666)
	}
	write("v1")
	p := filepath.Join(mnt, "d", "k", "h.h")
	cat := func(uid uint32, want string) {
		t.Helper()
		out, err := sh(uid, "cat "+p)
		if err != nil || out != want {
			t.Fatalf("cat %s as uid %d: %q, %v; want %q", p, uid, out, err, want)
		}
	}
	cat(1000, "v1")
	reset()
	for range 3 {
		waitKept(t, mnt)
		cat(1000, "v1")
	}
	if n := count(fs.MethodOpen); n != 0 {
		t.Errorf("three reads right after the first: %d fs.open calls, want none (the kept handle)", n)
	}
	waitKept(t, mnt)
	cat(1001, "v1")
	if n := count(fs.MethodOpen); n != 1 {
		t.Errorf("a read by another user: %d fs.open calls, want 1 (no other user's handle)", n)
	}

	reset()
	write("v2, longer")
	// The test mount is client h1 of its server.
	if err := srv.Settle(context.Background(), "h1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cat(1000, "v2, longer")
	if n := count(fs.MethodOpen); n != 1 {
		t.Errorf("a read after a change on the server's disk: %d fs.open calls, want 1", n)
	}

	reset()
	if out, err := sh(1000, "echo v3 > "+p); err != nil {
		t.Fatalf("write through the mount: %v %s", err, out)
	}
	cat(1000, "v3\n")
	if n := count(fs.MethodOpen); n != 2 {
		t.Errorf("a write and then a read from this host: %d fs.open calls, want 2", n)
	}

	reset()
	deadline := time.Now().Add(keepFor + 3*time.Second)
	for count(fs.MethodRelease) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no kept handle went back to the server within %v of its close", keepFor+3*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	k := &mountOf(t, mnt).kept
	k.mu.Lock()
	nodes := slices.Clone(k.nodes)
	k.mu.Unlock()
	for _, e := range nodes {
		e.n.mu.Lock()
		n := len(e.n.kept)
		e.n.mu.Unlock()
		if n > 0 && time.Since(e.at) > keepFor+time.Second {
			t.Errorf("%s still keeps %d handles past keepFor", e.n.path(), n)
		}
	}
	cat(1000, "v3\n")
	if n := count(fs.MethodOpen); n != 1 {
		t.Errorf("a read after keepFor: %d fs.open calls, want 1", n)
	}
}

// waitKept waits until the mount at mnt keeps a handle: the kernel sends a
// file's release after close(2) has returned, so a test's next open may
// otherwise come before the handle is kept.
func waitKept(t *testing.T, mnt string) {
	t.Helper()
	k := &mountOf(t, mnt).kept
	deadline := time.Now().Add(2 * time.Second)
	for {
		k.mu.Lock()
		n := k.count
		k.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no handle kept 2 s after a close")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKeptHandleGoneFromServer: a kept handle that its server has
// forgotten (it restarted before this host heard) still reads: the read
// opens the file again.
func TestKeptHandleGoneFromServer(t *testing.T) {
	mnt, back, srv, count, reset := countingMountServer(t)
	want := strings.Repeat("kept ", 1000)
	if err := os.WriteFile(filepath.Join(back, "g"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mnt, "d", "g")
	read := func() {
		t.Helper()
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Fatalf("read %s: %d bytes, %v; want %d bytes", p, len(b), err, len(want))
		}
	}
	read()
	waitKept(t, mnt)
	// An open from a new incarnation of this host's daemon makes the
	// server forget every handle of the old one, the kept one too; the
	// page cache goes, so that the next read reaches the server.
	if _, err := srv.Serve(context.Background(), "h1", fs.MethodOpen, &fs.Req{Prefix: "/d", Path: "g", Boot: 2, Cred: fs.Cred{UID: fs.Nobody, GID: fs.Nobody}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200); err != nil {
		t.Fatal(err)
	}
	reset()
	read()
	if n := count(fs.MethodOpen); n != 1 {
		t.Errorf("a read through a kept handle the server forgot: %d fs.open calls, want 1 (the reopen)", n)
	}
}
