package fusefs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sprite/fs"
)

// TestAppendCostsOneCall: a shell's `echo ... >> log` (configure does a
// hundred) is its open and one fs.writev that also tells the other hosts,
// as a close would; the close then makes no call. The lines land in order
// at the end of the file.
func TestAppendCostsOneCall(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	p := filepath.Join(mnt, "d", "config.log")
	if err := os.WriteFile(p, []byte("start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "start\n"
	reset()
	const n = 10
	for i := range n {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("checking for thing %d... yes\n", i)
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		want += line
	}
	if w, wv, fl := count(fs.MethodWrite), count(fs.MethodWriteV), count(fs.MethodFlush); w != 0 || wv != n || fl != 0 {
		t.Errorf("%d appends and closes: %d fs.write, %d fs.writev, %d fs.flush calls; want no fs.write, one fs.writev each, no fs.flush", n, w, wv, fl)
	}
	b, err := os.ReadFile(filepath.Join(back, "config.log"))
	if err != nil || string(b) != want {
		t.Fatalf("the server's disk holds %q, %v; want %q", b, err, want)
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != want {
		t.Fatalf("read back through the mount: %q, %v; want %q", got, err, want)
	}
}
