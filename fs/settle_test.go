package fs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Settle: once it returns, every change made on the server's disk before
// it was called has reached the clients that may cache it, however slowly
// they answer; and with nothing changed it costs no call.
func TestSettleWaitsForLocalChanges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("these tests act as other users and need root: sudo go test ./fs/...")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	var told atomic.Int64 // invalidations of f handed to h2, counted when answered
	var calls atomic.Int64
	var hang atomic.Bool
	slow := func(ctx context.Context, host string, inv Invalidate) error {
		calls.Add(1)
		if hang.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond) // a client under load
		for _, it := range inv.Items {
			if host == "h2" && it.Path == "sub/f" {
				told.Add(1)
			}
		}
		return nil
	}
	s, err := NewServer(ServerConfig{Host: "h1", Exports: []Exported{{Prefix: "/t", Path: dir}},
		Log: slog.New(slog.DiscardHandler), Send: slow, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	os.Mkdir(filepath.Join(dir, "sub"), 0o777)
	f := filepath.Join(dir, "sub", "f")
	os.WriteFile(f, []byte("0"), 0o666)
	o := serveAs(t, s, "h2", MethodOpen, Req{Path: "sub/f"})
	if o.Flags&OpenWatched == 0 {
		t.Fatalf("open of a file in a watched directory: flags %#x, want OpenWatched", o.Flags)
	}
	ctx := context.Background()
	if err := s.Settle(ctx, "h2", 5*time.Second); err != nil {
		t.Fatalf("settle with nothing changed: %v", err)
	}
	calls.Store(0)
	for i := range 3 {
		before := told.Load()
		os.WriteFile(f, []byte(fmt.Sprint(i)), 0o666)
		if err := s.Settle(ctx, "h2", 5*time.Second); err != nil {
			t.Fatalf("settle: %v", err)
		}
		if told.Load() == before {
			t.Fatalf("change %d on the server's disk: Settle returned before h2 was told", i)
		}
	}
	if err := s.Settle(ctx, "h2", 5*time.Second); err != nil {
		t.Fatalf("settle: %v", err)
	}
	n := calls.Load()
	if err := s.Settle(ctx, "h2", 5*time.Second); err != nil || calls.Load() != n {
		t.Fatalf("settle with nothing new: %v, %d more invalidations", err, calls.Load()-n)
	}
	// A client that never answers: Settle gives up after its wait, and
	// says so.
	hang.Store(true)
	os.WriteFile(f, []byte("x"), 0o666)
	if err := s.Settle(ctx, "h2", 200*time.Millisecond); err == nil {
		t.Fatal("settle with a client that does not answer: no error")
	}
}

// A server that holds keepBelow handles lets no client keep another
// (OpenWatched off): kept handles are its descriptors.
func TestKeepingLimited(t *testing.T) {
	s, dir, _ := consistencyServer(t)
	os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o666)
	s.mu.Lock()
	s.keepBelow = 2
	s.mu.Unlock()
	for i, want := range []bool{true, true, false} {
		o := serveAs(t, s, "h2", MethodOpen, Req{Path: "a"})
		if got := o.Flags&OpenWatched != 0; got != want {
			t.Errorf("open %d with %d handles held: OpenWatched %v, want %v", i+1, i, got, want)
		}
	}
}
