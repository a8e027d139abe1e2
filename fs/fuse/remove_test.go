package fusefs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sprite/fs"
)

// TestRemoveCostsOneCall: `rm -f conftest*` in a directory the build
// keeps using (a configure script's cleanup) is one call per file: the
// unlink's reply carries the directory's new attributes, which the kernel
// asks for at the next path walk through it. What a stat of the directory
// then shows is what the server's disk has.
func TestRemoveCostsOneCall(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	dir := filepath.Join(mnt, "d", "build")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 10
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("conftest%d.o", i)), []byte("obj"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte("all:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "conftest.dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Makefile")); err != nil { // its attributes after the writes
		t.Fatal(err)
	}
	reset()
	for i := range n {
		if err := os.Remove(filepath.Join(dir, fmt.Sprintf("conftest%d.o", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "Makefile")); err != nil { // a path walk through dir
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "conftest.dir")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Makefile")); err != nil {
		t.Fatal(err)
	}
	if g, u, r := count(fs.MethodGetattr), count(fs.MethodUnlink), count(fs.MethodRmdir); g != 0 || u != n || r != 1 {
		t.Errorf("%d removes, each followed by a stat in the directory: %d fs.getattr, %d fs.unlink, %d fs.rmdir calls; want no fs.getattr, one call per remove", n+1, g, u, r)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	onServer, err := os.Stat(filepath.Join(back, "build"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(onServer.ModTime()) || st.Mode() != onServer.Mode() {
		t.Errorf("the directory after the removes: %v modified %v; the server's disk says %v modified %v", st.Mode(), st.ModTime(), onServer.Mode(), onServer.ModTime())
	}
}
