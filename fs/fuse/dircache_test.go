package fusefs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// requestLog counts the FUSE requests a mount logs at LevelRequests, by
// operation: go-fuse logs each as "rx <unique>: <OPERATION> n<node> ...".
type requestLog struct {
	mu  sync.Mutex
	ops map[string]int // guarded by mu
}

func (r *requestLog) Enabled(context.Context, slog.Level) bool { return true }
func (r *requestLog) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *requestLog) WithGroup(string) slog.Handler            { return r }

func (r *requestLog) Handle(_ context.Context, rec slog.Record) error {
	if f := strings.Fields(rec.Message); len(f) >= 3 && f[0] == "rx" {
		r.mu.Lock()
		r.ops[f[2]]++
		r.mu.Unlock()
	}
	return nil
}

func (r *requestLog) count(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ops[op]
}

func (r *requestLog) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.ops)
}

// entryNames lists the names of ents, in their order.
func entryNames(ents []os.DirEntry) []string {
	var s []string
	for _, e := range ents {
		s = append(s, e.Name())
	}
	return s
}

// TestDirectoryReadFromKernelCache: while the client keeps a directory's
// listing, the kernel reads the directory again from its own cache: make
// reads every directory it searches on every run, ls and shells the same
// ones again and again. A change on the server's disk or from this host
// shows at the next listing all the same.
func TestDirectoryReadFromKernelCache(t *testing.T) {
	reqs := &requestLog{ops: map[string]int{}}
	mnt, back, _, _ := testMountLog(t, slog.New(reqs), nil)
	if err := os.Mkdir(filepath.Join(back, "src"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(back, "src"), 0o777); err != nil { // root is nobody through the mount
		t.Fatal(err)
	}
	for _, n := range []string{"a.c", "b.c", "Makefile"} {
		if err := os.WriteFile(filepath.Join(back, "src", n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(mnt, "d", "src")
	names := func() []string {
		t.Helper()
		ents, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		return entryNames(ents)
	}
	want := []string{"Makefile", "a.c", "b.c"}
	// The server's watcher may tell of the creates above a few
	// milliseconds late, each dropping what is kept of src (as it
	// should): then try again.
	for try := 1; ; try++ {
		if got := names(); !slices.Equal(got, want) {
			t.Fatalf("listing %q, want %q", got, want)
		}
		reqs.reset()
		for range 3 {
			if got := names(); !slices.Equal(got, want) {
				t.Fatalf("listing again: %q, want %q", got, want)
			}
		}
		opens, reads := reqs.count("OPENDIR"), reqs.count("READDIRPLUS")+reqs.count("READDIR")
		if opens == 3 && reads == 0 {
			break
		}
		if try == 5 {
			t.Fatalf("three listings after the first: %d opendirs and %d readdirs reached the client (%d tries), want 3 and none (the kernel's cache of the directory)", opens, reads, try)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A directory held open and rewound (rewinddir(3)) shows it too.
	dir, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if ents, err := dir.ReadDir(-1); err != nil || len(ents) != len(want) {
		t.Fatalf("listing through an open directory: %d entries, %v; want %d", len(ents), err, len(want))
	}
	if err := os.WriteFile(filepath.Join(back, "src", "c.c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want = []string{"Makefile", "a.c", "b.c", "c.c"}
	waitFor(t, "a file made on the server's disk, after a rewind", func() error {
		if _, err := dir.Seek(0, 0); err != nil {
			return err
		}
		ents, err := dir.ReadDir(-1)
		if err != nil {
			return err
		}
		got := entryNames(ents)
		if slices.Sort(got); !slices.Equal(got, want) {
			return fmt.Errorf("listing %q, want %q", got, want)
		}
		return nil
	})
	if got := names(); !slices.Equal(got, want) {
		t.Errorf("after a file made on the server's disk: listing %q, want %q", got, want)
	}
	if err := os.WriteFile(filepath.Join(src, "d.c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "a.c")); err != nil {
		t.Fatal(err)
	}
	want = []string{"Makefile", "b.c", "c.c", "d.c"}
	if got := names(); !slices.Equal(got, want) {
		t.Errorf("after a create and a remove through the mount: listing %q, want %q", got, want)
	}
}
