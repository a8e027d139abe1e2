package fusefs

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"sprite/fs"
)

// TestOwnFileStatAnsweredHere: fstat(2) between the writes to a file
// written from empty through one read-write descriptor (a linker's
// output) is answered by this host: the size of what was written, no
// call. The answer is kept nowhere: a chmod, an unlink and the close each
// show what the server says, its times included.
func TestOwnFileStatAnsweredHere(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	p := filepath.Join(mnt, "d", "a.out")
	x, want := ownFile(t, p)
	reset()
	start := time.Now()
	const n = 20
	var lastM time.Time
	for i := range n {
		x.write(int64(i*1500), bytes.Repeat([]byte{'x'}, 1000)) // a gap, then a block
		st := fstat(t, x.f)
		if st.Size() != int64(len(*want)) || !st.Mode().IsRegular() {
			t.Fatalf("fstat after write %d: size %d, mode %v; want %d bytes, a regular file", i, st.Size(), st.Mode(), len(*want))
		}
		if st.ModTime().Before(lastM) {
			t.Fatalf("fstat after write %d: modification time went back from %v to %v", i, lastM, st.ModTime())
		}
		lastM = st.ModTime()
	}
	// The write-behind timer may send what is held, once each wbDelay.
	timerSends := 1 + int(time.Since(start)/(100*time.Millisecond))
	if g, w := count(fs.MethodGetattr), count(fs.MethodWriteV); g != 0 || w > timerSends {
		t.Errorf("%d fstats between writes made %d fs.getattr and %d fs.writev calls; want none but the write-behind timer's (at most %d)", n, g, w, timerSends)
	}
	x.check(0, 1<<20, "the file after the fstats")

	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := fstat(t, x.f); st.Mode().Perm() != 0o600 || st.Size() != int64(len(*want)) {
		t.Errorf("fstat after chmod 600: mode %v, size %d; want -rw------- and %d bytes", st.Mode(), st.Size(), len(*want))
	}
	x.write(int64(len(*want)), []byte("more"))
	if st := fstat(t, x.f); st.Size() != int64(len(*want)) {
		t.Errorf("fstat after a write past a chmod: size %d, want %d", st.Size(), len(*want))
	}
	if err := x.f.Close(); err != nil {
		t.Fatal(err)
	}
	onServer, err := os.Stat(filepath.Join(back, "a.out"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != onServer.Size() || !st.ModTime().Equal(onServer.ModTime()) {
		t.Errorf("stat after the close: %d bytes modified %v; the server's disk says %d bytes modified %v",
			st.Size(), st.ModTime(), onServer.Size(), onServer.ModTime())
	}

	y, _ := ownFile(t, filepath.Join(mnt, "d", "b.out"))
	y.write(0, []byte("doomed"))
	if err := os.Remove(filepath.Join(mnt, "d", "b.out")); err != nil {
		t.Fatal(err)
	}
	if st := fstat(t, y.f); st.Sys().(*syscall.Stat_t).Nlink != 0 {
		t.Errorf("fstat of a written file after its unlink: %d links, want 0", st.Sys().(*syscall.Stat_t).Nlink)
	}
}

func fstat(t *testing.T, f *os.File) os.FileInfo {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st
}
