package fusefs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sprite/fs"
)

// mkdirFiles makes directory name in back, open to every user (root is
// nobody through the mount), holding files f0 .. f<n-1>, each with its
// own name as content.
func mkdirFiles(t *testing.T, back, name string, n int) {
	t.Helper()
	d := filepath.Join(back, name)
	if err := os.Mkdir(d, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		f := fmt.Sprintf("f%d", i)
		if err := os.WriteFile(filepath.Join(d, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLookupsListTheDirectory: names looked up one after another in a
// directory nobody listed, as a compiler searches each -I directory for
// each header, cost two fs.lookup calls (after the directory's own) and
// then one fs.readdir, whose
// listing answers the rest, names missing and present alike. A directory
// of more than fs.SmallDir entries is not listed so: its server refuses
// after reading the names, and it is not asked again. What the listing
// answers follows the server's disk.
func TestLookupsListTheDirectory(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	mkdirFiles(t, back, "inc", 10)
	mkdirFiles(t, back, "big", fs.SmallDir+1)
	// The server's watcher may tell of the creates above a few
	// milliseconds late, each dropping a listing (as it should): wait
	// until the directories are quiet.
	time.Sleep(100 * time.Millisecond)

	stats := func(dir string) {
		t.Helper()
		for i := range 10 {
			p := filepath.Join(mnt, "d", dir, fmt.Sprintf("x%d.h", i))
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("stat %s: %v, want ENOENT", p, err)
			}
			p = filepath.Join(mnt, "d", dir, fmt.Sprintf("f%d", i))
			if st, err := os.Stat(p); err != nil || st.Size() != int64(len(filepath.Base(p))) {
				t.Fatalf("stat %s: %v, %v", p, st, err)
			}
		}
	}
	reset()
	stats("inc")
	if l, r := count(fs.MethodLookup), count(fs.MethodReaddir); l != 1+2 || r != 1 {
		t.Errorf("20 lookups in a directory: %d fs.lookup and %d fs.readdir calls, want 1+2 (the directory, two names) and 1", l, r)
	}
	reset()
	stats("big")
	if l, r := count(fs.MethodLookup), count(fs.MethodReaddir); l != 1+20 || r != 1 {
		t.Errorf("20 lookups in a directory of %d entries: %d fs.lookup and %d fs.readdir calls, want 1+20 and 1 (refused)", fs.SmallDir+1, l, r)
	}

	// A name made on the server's disk after the listing appears.
	if err := os.WriteFile(filepath.Join(back, "inc", "x3.h"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new name", func() error {
		_, err := os.Stat(filepath.Join(mnt, "d", "inc", "x3.h"))
		return err
	})
}

// TestChangingDirectoryListedLess: a directory this host changes between
// its lookups (each change drops the listing) is listed less and less
// often: a listing that answered no more than twice the lookups sent
// before it doubles the lookups the next one waits for.
func TestChangingDirectoryListedLess(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	mkdirFiles(t, back, "out", 0)
	time.Sleep(100 * time.Millisecond)
	out := filepath.Join(mnt, "d", "out")
	reset()
	const rounds = 10
	for i := range rounds {
		for j := range 3 {
			if _, err := os.Stat(filepath.Join(out, fmt.Sprintf("r%d-%d.o", i, j))); !os.IsNotExist(err) {
				t.Fatalf("stat: %v, want ENOENT", err)
			}
		}
		if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("w%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := count(fs.MethodReaddir); r == 0 || r > rounds/2 {
		t.Errorf("%d rounds of three lookups and a create: %d fs.readdir calls, want between 1 and %d", rounds, r, rounds/2)
	}
}
