package fs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wbCluster is one server (h1, exporting dir as /t) and a client per host
// name, each wired to the server in process; the server's invalidations
// reach the clients' Recall. Write-behind waits an hour unless recalled,
// so that only what the tests do moves data.
type wbCluster struct {
	dir     string
	srv     *Server
	mu      sync.Mutex
	clients map[string]*Client
	calls   map[string]int // guarded by mu; by method, all clients
	invals  map[string]int // guarded by mu; invalidations received, by client host
}

func newWBCluster(t *testing.T, hosts ...string) *wbCluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests act as other users and need root: sudo go test ./fs/...")
	}
	w := &wbCluster{dir: t.TempDir(), clients: map[string]*Client{}, calls: map[string]int{}, invals: map[string]int{}}
	os.Chmod(w.dir, 0o777)
	log := slog.New(slog.DiscardHandler)
	srv, err := NewServer(ServerConfig{Host: "h1", Exports: []Exported{{Prefix: "/t", Path: w.dir}}, Log: log, Workers: 2,
		Send: func(ctx context.Context, host string, inv Invalidate) error {
			w.mu.Lock()
			c := w.clients[host]
			w.invals[host]++
			w.mu.Unlock()
			if c != nil {
				c.Recall(ctx, inv.Items, inv.Recall)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	w.srv = srv
	tb := NewTable(log)
	tb.Set("h1", srv.Exports(), true)
	for _, h := range hosts {
		w.clients[h] = &Client{Table: tb, Log: log, Boot: 1, WriteBehind: time.Hour,
			Call: func(ctx context.Context, _, method string, req *Req, resp *Resp) error {
				w.mu.Lock()
				w.calls[method]++
				w.mu.Unlock()
				r, err := srv.Serve(ctx, h, method, req)
				if err == nil {
					*resp = *r
				}
				return err
			}}
	}
	return w
}

func (w *wbCluster) count(method string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[method]
}

func (w *wbCluster) disk(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Many small writes through one descriptor reach the server as one call at
// close, with the close; the server has every byte once close returns.
func TestWriteBehindCoalescesUntilClose(t *testing.T) {
	w := newWBCluster(t, "h2")
	c, ctx := w.clients["h2"], context.Background()
	h, _, _, err := c.Create(ctx, alice, "/t", "out", syscall.O_WRONLY|syscall.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := range 500 {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i%7)
		if n, err := c.Write(ctx, h, int64(want.Len()), p); err != nil || n != len(p) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		want.Write(p)
	}
	if got := w.disk(t, "out"); got != "" {
		t.Fatalf("the server has %d bytes before the close; write-behind should hold them", len(got))
	}
	if err := c.Flush(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got := w.disk(t, "out"); got != want.String() {
		t.Fatalf("after close the server has %d bytes, want the %d written", len(got), want.Len())
	}
	if n := w.count(MethodWriteV); n != 1 || w.count(MethodWrite)+w.count(MethodFlush) != 0 {
		t.Errorf("500 writes and a close took %d fs.writev, %d fs.write, %d fs.flush; want one fs.writev",
			n, w.count(MethodWrite), w.count(MethodFlush))
	}
	c.Release(ctx, h, true)
}

// A stat or a read on the writing host sees what its buffers hold.
func TestWriteBehindSeenByThisHost(t *testing.T) {
	w := newWBCluster(t, "h2")
	c, ctx := w.clients["h2"], context.Background()
	h, _, _, err := c.Create(ctx, alice, "/t", "f", syscall.O_RDWR|syscall.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(ctx, h, false)
	c.Write(ctx, h, 0, []byte("hello "))
	c.Write(ctx, h, 6, []byte("world"))
	if a, err := c.Getattr(ctx, alice, "/t/f", nil); err != nil || a.Size != 11 {
		t.Fatalf("stat during the writes: size %d, %v; want 11", a.Size, err)
	}
	c.Write(ctx, h, 0, []byte("HELLO"))
	r, _, err := c.Open(ctx, alice, "/t/f", syscall.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(ctx, r, true)
	if b, err := c.Read(ctx, r, 0, make([]byte, 64)); err != nil || string(b) != "HELLO world" {
		t.Fatalf("read through another descriptor: %q, %v", b, err)
	}
	// A read-modify-write through the writing descriptor, as an
	// assembler does it: the file was empty at its open, so the handle
	// knows all of it (owncopy.go) and reads need no call.
	rmw := func(h *Handle, wantWritev int) {
		t.Helper()
		writev, reads := w.count(MethodWriteV), w.count(MethodRead)
		for i := range 10 {
			c.Write(ctx, h, int64(i), []byte("*"))
			if b, err := c.Read(ctx, h, 0, make([]byte, 64)); err != nil || string(b[:i+1]) != strings.Repeat("*", i+1) {
				t.Fatalf("read back after write %d: %q, %v", i, b, err)
			}
		}
		if n, m := w.count(MethodWriteV)-writev, w.count(MethodRead)-reads; n != wantWritev || m != 0 {
			t.Errorf("10 writes each read back took %d fs.writev and %d fs.read calls; want %d and 0", n, m, wantWritev)
		}
	}
	rmw(h, 0)
	// Through a descriptor opened on the file with data in it, as a
	// linker rewrites one: each read carries the writes before it, one
	// call a block.
	if err := c.Flush(ctx, h); err != nil { // the close of the first
		t.Fatal(err)
	}
	h2, _, err := c.Open(ctx, alice, "/t/f", syscall.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(ctx, h2, false)
	rmw(h2, 10)
	h = h2
	// fstat(2) after writes, as the kernel asks: one call, the size right.
	writev, stats := w.count(MethodWriteV), w.count(MethodGetattr)
	c.Write(ctx, h, 11, []byte("!!"))
	if a, err := c.Getattr(ctx, alice, "/t/f", h); err != nil || a.Size != 13 {
		t.Fatalf("fstat after a write: size %d, %v; want 13", a.Size, err)
	}
	if n, m := w.count(MethodWriteV)-writev, w.count(MethodGetattr)-stats; n != 1 || m != 0 {
		t.Errorf("a write and an fstat took %d fs.writev and %d fs.getattr calls; want 1 and 0", n, m)
	}
}

// tar sets a file's times through its descriptor before it closes it:
// the change rides on the fs.writev of the buffered writes, and the close
// is one more call. Another user's change does not ride on alice's
// buffer: it goes on its own, after her writes, and is judged as his.
func TestWriteBehindCarriesSetattr(t *testing.T) {
	w := newWBCluster(t, "h2")
	c, ctx := w.clients["h2"], context.Background()
	h, _, _, err := c.Create(ctx, alice, "/t", "x.c", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(ctx, h, 0, []byte("int main(void) { return 0; }\n"))
	mtime := time.Date(2022, 1, 13, 11, 24, 43, 0, time.UTC).UnixNano()
	a, err := c.Setattr(ctx, alice, "/t/x.c", nil, SetAttr{Valid: SetMtime, Mtime: mtime})
	if err != nil || a.Mtime != mtime || a.Size != 29 {
		t.Fatalf("utimes after a write: mtime %d size %d, %v; want %d and 29", a.Mtime, a.Size, err, mtime)
	}
	if n, m := w.count(MethodWriteV), w.count(MethodSetattr); n != 1 || m != 0 {
		t.Errorf("a write and a utimes took %d fs.writev and %d fs.setattr; want 1 and 0", n, m)
	}
	if err := c.Flush(ctx, h); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(w.dir, "x.c"))
	if err != nil || st.ModTime().UnixNano() != mtime || w.disk(t, "x.c") != "int main(void) { return 0; }\n" {
		t.Fatalf("on the server: %v, %v, %q", st.ModTime(), err, w.disk(t, "x.c"))
	}

	c.Write(ctx, h, 29, []byte("// more\n"))
	bob := Cred{UID: 1001, GID: 1001}
	if _, err := c.Setattr(ctx, bob, "/t/x.c", nil, SetAttr{Valid: SetMode, Mode: 0o777}); !errors.Is(err, syscall.EPERM) {
		t.Errorf("bob's chmod of alice's file: %v, want EPERM", err)
	}
	if got := w.disk(t, "x.c"); !strings.HasSuffix(got, "// more\n") {
		t.Errorf("alice's write before bob's chmod is not on the server: %q", got)
	}
	if st, _ := os.Stat(filepath.Join(w.dir, "x.c")); st.Mode().Perm() != 0o644 {
		t.Errorf("bob's refused chmod changed the mode to %v", st.Mode())
	}
	c.Release(ctx, h, false)
}

// tar's close after its futimens costs no call: the fs.writev that
// carried the writes and the times also made every other host drop its
// copy of the file's attributes, so the server has every byte and nobody
// caches the old ones. A write after that makes the close a call again,
// and so does a file that may be executable (the server must let go of
// its write descriptor before close returns, or running it at once on the
// server's host fails with ETXTBSY).
func TestCloseAfterSyncedTimesCostsNoCall(t *testing.T) {
	w := newWBCluster(t, "h2", "h3")
	c, other, ctx := w.clients["h2"], w.clients["h3"], context.Background()
	mtime := time.Date(2022, 1, 13, 11, 24, 43, 0, time.UTC).UnixNano()
	for _, tc := range []struct {
		name      string
		mode      uint32
		writeMore bool
		calls     int // at the close
	}{
		{"plain.c", 0o644, false, 0},
		{"more.c", 0o644, true, 1},
		{"configure", 0o755, false, 1},
	} {
		h, _, _, err := c.Create(ctx, alice, "/t", tc.name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o600|tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Getattr(ctx, alice, "/t/"+tc.name, nil); err != nil { // h3 caches its attributes
			t.Fatal(err)
		}
		c.Write(ctx, h, 0, []byte("body\n"))
		w.mu.Lock()
		invals := w.invals["h3"]
		w.mu.Unlock()
		if _, err := c.Setattr(ctx, alice, "/t/"+tc.name, nil, SetAttr{Valid: SetMtime, Mtime: mtime}); err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		got := w.invals["h3"] - invals
		w.mu.Unlock()
		if got == 0 {
			t.Errorf("%s: h3 was not told to drop the file's attributes before the utimes returned", tc.name)
		}
		if tc.writeMore {
			c.Write(ctx, h, 5, []byte("more\n"))
		}
		before := w.count(MethodWriteV) + w.count(MethodFlush)
		if err := c.Flush(ctx, h); err != nil {
			t.Fatal(err)
		}
		if n := w.count(MethodWriteV) + w.count(MethodFlush) - before; n != tc.calls {
			t.Errorf("%s: the close took %d calls, want %d", tc.name, n, tc.calls)
		}
		want := "body\n"
		if tc.writeMore {
			want += "more\n"
		}
		if got := w.disk(t, tc.name); got != want {
			t.Errorf("%s: the server has %q after the close, want %q", tc.name, got, want)
		}
		if a, err := other.Getattr(ctx, alice, "/t/"+tc.name, nil); err != nil || a.Size != int64(len(want)) {
			t.Errorf("%s: h3 sees size %d (%v), want %d", tc.name, a.Size, err, len(want))
		}
		c.Release(ctx, h, true)
	}
}

// Sequential write sharing across hosts: a host opening a file another
// host is writing (not yet closed) makes the writer send its buffer first,
// and from then on the writer writes through.
func TestWriteBehindRecalledByAnotherHost(t *testing.T) {
	w := newWBCluster(t, "h2", "h3")
	a, b, ctx := w.clients["h2"], w.clients["h3"], context.Background()
	ha, _, _, err := a.Create(ctx, alice, "/t", "shared", syscall.O_RDWR|syscall.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(ctx, ha, false)
	a.Write(ctx, ha, 0, []byte("first"))
	if got := w.disk(t, "shared"); got != "" {
		t.Fatalf("server has %q before any other host opened the file", got)
	}
	hb, _, err := b.Open(ctx, alice, "/t/shared", syscall.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(ctx, hb, true)
	if got, err := b.Read(ctx, hb, 0, make([]byte, 64)); err != nil || string(got) != "first" {
		t.Fatalf("h3 read %q, %v; want h2's unclosed write", got, err)
	}
	a.Write(ctx, ha, 0, []byte("SECOND"))
	if got, err := b.Read(ctx, hb, 0, make([]byte, 64)); err != nil || string(got) != "SECOND" {
		t.Fatalf("h3 read %q, %v after h2's write during the sharing; want it at once", got, err)
	}
}

// A full disk: writes the server cannot store are reported, at the latest
// by close, never dropped in silence.
func TestWriteBehindFullDiskReported(t *testing.T) {
	w := newWBCluster(t, "h2")
	small := filepath.Join(w.dir, "small")
	os.Mkdir(small, 0o777)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0777", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", small).Run() })
	c, ctx := w.clients["h2"], context.Background()
	h, _, _, err := c.Create(ctx, alice, "/t/small", "big", syscall.O_WRONLY|syscall.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(ctx, h, false)
	p := bytes.Repeat([]byte("x"), 4096)
	var werr error
	for i := range 64 { // 256 KiB into 64 KiB
		if _, werr = c.Write(ctx, h, int64(i*len(p)), p); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = c.Flush(ctx, h)
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("256 KiB into a 64 KiB file system: the writes and close reported %v, want ENOSPC", werr)
	}
}
