package fs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

type sent struct {
	mu    sync.Mutex
	items map[string][]Item
}

func (s *sent) send(_ context.Context, host string, inv Invalidate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[host] = append(s.items[host], inv.Items...)
	return nil
}

func (s *sent) has(host, path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.items[host], Item{Prefix: "/t", Path: path})
}

func (s *sent) reset() { s.mu.Lock(); clear(s.items); s.mu.Unlock() }

// hosts lists the hosts sent anything, and what.
func (s *sent) hosts() map[string][]Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]Item{}
	for h, it := range s.items {
		if len(it) > 0 {
			out[h] = slices.Clone(it)
		}
	}
	return out
}

func consistencyServer(t *testing.T) (*Server, string, *sent) {
	if os.Geteuid() != 0 {
		t.Fatal("these tests act as other users and need root: sudo go test ./fs/...")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	sn := &sent{items: map[string][]Item{}}
	s, err := NewServer(ServerConfig{Host: "h1", Exports: []Exported{{Prefix: "/t", Path: dir}},
		Log: slog.New(slog.DiscardHandler), Send: sn.send, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, dir, sn
}

func serveAs(t *testing.T, s *Server, client, method string, r Req) *Resp {
	t.Helper()
	r.Prefix, r.Cred = "/t", alice
	resp, err := s.Serve(context.Background(), client, method, &r)
	if err != nil || resp.Errno != 0 {
		t.Fatalf("%s from %s: %v %v", method, client, err, syscall.Errno(resp.Errno))
	}
	return resp
}

// Concurrent write sharing: the second host's open is uncached, and each
// write from it reaches the first host's cache as an invalidation before
// the write is acknowledged.
func TestConcurrentSharingTurnsCachingOff(t *testing.T) {
	s, dir, sn := consistencyServer(t)
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o666)
	os.Chmod(filepath.Join(dir, "f"), 0o666)
	a := serveAs(t, s, "h2", MethodOpen, Req{Path: "f", Flags: syscall.O_RDONLY})
	if a.Flags&OpenDirect != 0 {
		t.Fatal("a lone reader was told not to cache")
	}
	b := serveAs(t, s, "h3", MethodOpen, Req{Path: "f", Flags: syscall.O_RDWR})
	if b.Flags&OpenDirect == 0 {
		t.Fatal("a writer opening a file another host has open may cache it")
	}
	sn.reset()
	serveAs(t, s, "h3", MethodWrite, Req{Handle: b.Handle, Data: []byte("y")})
	if !sn.has("h2", "f") {
		t.Fatal("h2's cached open was not invalidated before the write returned")
	}
	// Sharing ends when the writer closes; the next open may cache again,
	// and its version differs from before the write.
	serveAs(t, s, "h3", MethodRelease, Req{Handle: b.Handle})
	serveAs(t, s, "h2", MethodRelease, Req{Handle: a.Handle})
	c := serveAs(t, s, "h2", MethodOpen, Req{Path: "f", Flags: syscall.O_RDONLY})
	if c.Flags&OpenDirect != 0 || c.Version == a.Version {
		t.Fatalf("after sharing: flags %b, version %x (was %x)", c.Flags, c.Version, a.Version)
	}
}

// Sequential write sharing: the writer's close (flush) invalidates, before
// it returns, every other host that may cache the file: those that looked
// it up within the kernel's cache time and those that hold it open; not a
// host that only used the domain, nor one whose look is older than that.
func TestWriterCloseInvalidatesThoseWhoMayCache(t *testing.T) {
	old := interestFor
	t.Cleanup(func() { interestFor = old }) // after the server stops
	interestFor = 300 * time.Millisecond
	s, _, sn := consistencyServer(t)
	w := serveAs(t, s, "h3", MethodCreate, Req{Name: "g", Flags: syscall.O_WRONLY, Mode: 0o644})
	serveAs(t, s, "h6", MethodLookup, Req{Name: "g"})
	o := serveAs(t, s, "h7", MethodOpen, Req{Path: "g", Flags: syscall.O_RDONLY})
	time.Sleep(400 * time.Millisecond) // h6's look and h7's open grow old
	serveAs(t, s, "h2", MethodLookup, Req{Name: "g"})
	serveAs(t, s, "h4", MethodGetattr, Req{Path: "g"})
	serveAs(t, s, "h5", MethodStatfs, Req{})
	serveAs(t, s, "h3", MethodWrite, Req{Handle: w.Handle, Data: []byte("new")})
	sn.reset()
	serveAs(t, s, "h3", MethodFlush, Req{Handle: w.Handle})
	for _, h := range []string{"h2", "h4", "h7"} {
		if !sn.has(h, "g") {
			t.Errorf("flush did not invalidate %s (it may cache g): sent %v", h, sn.hosts())
		}
	}
	for _, h := range []string{"h3", "h5", "h6"} {
		if len(sn.hosts()[h]) > 0 {
			t.Errorf("flush invalidated %s, which cannot cache g: sent %v", h, sn.hosts())
		}
	}
	// After its release h7's kernel may still trust g's attributes for a
	// while, and then not.
	serveAs(t, s, "h7", MethodRelease, Req{Handle: o.Handle})
	serveAs(t, s, "h3", MethodWrite, Req{Handle: w.Handle, Data: []byte("newer")})
	sn.reset()
	serveAs(t, s, "h3", MethodFlush, Req{Handle: w.Handle})
	if !sn.has("h7", "g") {
		t.Errorf("a flush right after h7's release did not invalidate h7: sent %v", sn.hosts())
	}
	time.Sleep(400 * time.Millisecond)
	serveAs(t, s, "h3", MethodWrite, Req{Handle: w.Handle, Data: []byte("newest")})
	sn.reset()
	serveAs(t, s, "h3", MethodFlush, Req{Handle: w.Handle})
	if got := sn.hosts(); len(got) > 0 {
		t.Errorf("a flush long after every look invalidated %v", got)
	}
}

// A change on the server's own disk is queued for every client that may
// cache it: a write for those that looked at the file, a new name also for
// those that looked at its directory or for the name while it was missing;
// never for a host that only looked at another file.
func TestLocalChangeNotified(t *testing.T) {
	s, dir, sn := consistencyServer(t)
	os.WriteFile(filepath.Join(dir, "l"), []byte("1"), 0o666)
	os.WriteFile(filepath.Join(dir, "other"), []byte("1"), 0o666)
	serveAs(t, s, "h2", MethodGetattr, Req{Path: "l"})
	serveAs(t, s, "h2", MethodReaddir, Req{}) // the root gets a watch, asynchronously
	serveAs(t, s, "h3", MethodGetattr, Req{Path: "other"})
	if r, err := s.Serve(context.Background(), "h4", MethodLookup, &Req{Prefix: "/t", Cred: alice, Name: "n"}); err != nil || r.Errno != uint32(syscall.ENOENT) {
		t.Fatalf("lookup of a missing name: %v %v", r, err)
	}
	for !s.watch.watching(s.exports["/t"], "") {
		time.Sleep(time.Millisecond)
	}
	wait := func(host, path string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !sn.has(host, path) {
			if time.Now().After(deadline) {
				t.Fatalf("a local change of %s was not notified to %s: sent %v", path, host, sn.hosts())
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // the other clients' queues
	}
	os.WriteFile(filepath.Join(dir, "l"), []byte("2"), 0o666)
	wait("h2", "l")
	if sn.has("h3", "l") || sn.has("h4", "l") {
		t.Fatalf("a write of l reached hosts that never looked at it: %v", sn.hosts())
	}
	sn.reset()
	os.WriteFile(filepath.Join(dir, "n"), []byte("new"), 0o666)
	wait("h4", "n")
	wait("h2", "n")
	if sn.has("h3", "n") {
		t.Fatalf("a new name reached a host that only looked at another file: %v", sn.hosts())
	}
}

// A program linked through /sprite on another host runs on the exporting
// host as soon as the client's close returns, before its release: the
// server gives up its write descriptor at flush (no ETXTBSY).
func TestExecAfterRemoteCloseNoETXTBSY(t *testing.T) {
	s, dir, _ := consistencyServer(t)
	w := serveAs(t, s, "h2", MethodCreate, Req{Name: "prog", Flags: syscall.O_WRONLY, Mode: 0o755})
	serveAs(t, s, "h2", MethodWrite, Req{Handle: w.Handle, Data: []byte("#!/bin/sh\necho ran\n")})
	prog := filepath.Join(dir, "prog")
	if err := exec.Command(prog).Run(); !errors.Is(err, syscall.ETXTBSY) {
		t.Fatalf("exec while the server writes: %v, want ETXTBSY (the test is wrong otherwise)", err)
	}
	serveAs(t, s, "h2", MethodFlush, Req{Handle: w.Handle})
	out, err := exec.Command(prog).Output()
	if err != nil || string(out) != "ran\n" {
		t.Fatalf("exec after the client's close: %q %v", out, err)
	}
	// The handle still writes (another descriptor of the client's).
	serveAs(t, s, "h2", MethodWrite, Req{Handle: w.Handle, Offset: 19, Data: []byte("echo more\n")})
	serveAs(t, s, "h2", MethodRelease, Req{Handle: w.Handle})
	if out, err := exec.Command(prog).Output(); err != nil || string(out) != "ran\nmore\n" {
		t.Fatalf("after a write past the flush: %q %v", out, err)
	}
}
