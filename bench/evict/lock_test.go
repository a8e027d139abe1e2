package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestLockUnderAncestor runs this test binary under flock(1) and checks
// that flockFile sees the lock as its own instead of waiting for it.
func TestLockUnderAncestor(t *testing.T) {
	if path := os.Getenv("EVICT_LOCK_CHILD"); path != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		unlock, err := flockFile(ctx, path)
		if err != nil {
			t.Fatalf("flockFile under an ancestor's lock: %v", err)
		}
		unlock()
		return
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1) (util-linux)")
	}
	path := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command("flock", path, os.Args[0], "-test.run", "^TestLockUnderAncestor$")
	cmd.Env = append(os.Environ(), "EVICT_LOCK_CHILD="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the child under flock: %v\n%s", err, out)
	}
	// Free, it is taken; held by a stranger, it is waited for.
	unlock, err := flockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := flockFile(ctx, path); err == nil {
		t.Fatal("a second flockFile took a lock this process holds")
	}
	unlock()
}
