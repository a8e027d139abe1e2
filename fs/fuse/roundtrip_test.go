package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sprite/fs"
)

// countingMount is testMount with a count of the calls that reach the
// server, by method.
func countingMount(t *testing.T) (mnt, dir string, count func(method string) int, reset func()) {
	t.Helper()
	mnt, dir, _, count, reset = countingMountServer(t)
	return mnt, dir, count, reset
}

// countingMountServer is countingMount that also hands back the server.
func countingMountServer(t *testing.T) (mnt, dir string, srv *fs.Server, count func(method string) int, reset func()) {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	mnt, dir, srv, _ = testMountWith(t, func(c *fs.Client) {
		inner := c.Call
		c.Call = func(ctx context.Context, host, method string, req *fs.Req, resp *fs.Resp) error {
			mu.Lock()
			counts[method]++
			mu.Unlock()
			return inner(ctx, host, method, req, resp)
		}
	})
	count = func(method string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[method]
	}
	reset = func() {
		mu.Lock()
		defer mu.Unlock()
		clear(counts)
	}
	return mnt, dir, srv, count, reset
}

// TestUntarRoundTrips: a file written the way tar writes it (records that
// start inside a page, then its times set before the close) costs one
// call after its create: it carries all its write(2)s and the times
// (write-behind) and makes other hosts drop their copies, so the close
// needs no call (an executable file's does); the directory's attributes
// after each create need no fs.getattr, and a new name in a directory this
// host made needs no fs.lookup. The data is all there.
func TestUntarRoundTrips(t *testing.T) {
	mnt, _, count, reset := countingMount(t)
	d := filepath.Join(mnt, "d", "untar")
	if err := os.Mkdir(d, 0o777); err != nil {
		t.Fatal(err)
	}
	reset()
	rec := bytes.Repeat([]byte("z"), 10240)
	const files, writes = 5, 4
	mtime := time.Date(2022, 1, 13, 11, 24, 43, 0, time.UTC)
	for i := range files {
		f, err := os.OpenFile(filepath.Join(d, "f"+string(rune('a'+i))), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(rec[:1536]); err != nil { // the rest of a header's record
			t.Fatal(err)
		}
		for range writes - 1 {
			if _, err := f.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(f.Name(), mtime, mtime); err != nil { // tar's futimens before its close
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(fs.MethodWriteV); got != files {
		t.Errorf("%d fs.writev calls for %d files, want one each", got, files)
	}
	if got := count(fs.MethodWrite) + count(fs.MethodSetattr); got > 0 {
		t.Errorf("%d fs.write and fs.setattr calls: each file's writes and times should go in its fs.writev", got)
	}
	if got := count(fs.MethodFlush); got != 0 {
		t.Errorf("%d fs.flush calls for %d closes after the times were set, want none", got, files)
	}
	if got := count(fs.MethodGetattr); got > 0 {
		t.Errorf("%d fs.getattr calls: the directory's attributes came with each create", got)
	}
	if got := count(fs.MethodLookup); got > 0 {
		t.Errorf("%d fs.lookup calls in a directory this host made empty", got)
	}
	st, err := os.Stat(d)
	if err != nil {
		t.Fatal(err)
	}
	if st.ModTime().IsZero() || !st.IsDir() {
		t.Errorf("directory attributes %v", st)
	}
	for i := range files {
		b, err := os.ReadFile(filepath.Join(d, "f"+string(rune('a'+i))))
		if want := 1536 + (writes-1)*len(rec); err != nil || len(b) != want || !bytes.Equal(b, bytes.Repeat([]byte("z"), want)) {
			t.Errorf("file %d: %d bytes, %v; want %d bytes of z", i, len(b), err, want)
		}
		if st, err := os.Stat(filepath.Join(d, "f"+string(rune('a'+i)))); err != nil || !st.ModTime().Equal(mtime) {
			t.Errorf("file %d: mtime %v, %v; want %v", i, st.ModTime(), err, mtime)
		}
	}
}

// TestWriteOnlyDirectStaysCoherent: a write-only open uses direct I/O, and
// this host's other opens meanwhile see its writes at once; a later open
// does not keep pages cached before them.
func TestWriteOnlyDirectStaysCoherent(t *testing.T) {
	mnt, _, _, _ := countingMount(t)
	p := filepath.Join(mnt, "d", "f")
	old := bytes.Repeat([]byte("a"), 8192)
	if err := os.WriteFile(p, old, 0o666); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, old) { // pages now cached
		t.Fatalf("read %q, %v", b, err)
	}
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt([]byte("bbbb"), 100); err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, old[:100]...), "bbbb"...), old[104:]...)
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("read during the write-only open: %q..., %v; want the write", b[96:108], err)
	}
	r, err := os.Open(p) // open across the writes below
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.WriteAt([]byte("cccc"), 200); err != nil {
		t.Fatal(err)
	}
	copy(want[200:], "cccc")
	got := make([]byte, len(want))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read through an open made during the write-only one: %q, %v", got[196:208], err)
	}
	w.Close()
	r.Close()
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("read after: %q, %v", b[96:108], err)
	}
}

// TestFreshDirSeesOtherChanges: a directory this host made answers
// lookups of names it did not make itself, until its server reports a
// change in it: a file made on the server's own disk appears as soon as
// the invalidation arrives, also one made right after the mkdir.
func TestFreshDirSeesOtherChanges(t *testing.T) {
	mnt, back, _, _ := countingMount(t)
	for i := range 20 {
		name := "fresh" + string(rune('a'+i))
		if err := os.Mkdir(filepath.Join(mnt, "d", name), 0o777); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(mnt, "d", name, "x")); !os.IsNotExist(err) {
			t.Fatalf("stat of a name never made: %v", err)
		}
		if err := os.WriteFile(filepath.Join(back, name, "y"), []byte("y"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a file made on the server's disk in a directory this host made", func() error {
			_, err := os.Stat(filepath.Join(mnt, "d", name, "y"))
			return err
		})
	}
}

// TestListingKeptUntilChanged: a directory listed again within the cache
// time costs no call; a change made from this host, or on the server's own
// disk, is in the next listing (the latter once its invalidation has
// arrived, well within the cache time); another user's listing comes from
// the server.
func TestListingKeptUntilChanged(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	d := filepath.Join(mnt, "d", "ls")
	if err := os.Mkdir(d, 0o777); err != nil {
		t.Fatal(err)
	}
	names := func() string {
		t.Helper()
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(entryNames(ents), " ")
	}
	eventually := func(want, what string) {
		t.Helper()
		waitFor(t, "after "+what, func() error {
			if got := names(); got != want {
				return fmt.Errorf("listing %q, want %q", got, want)
			}
			return nil
		})
	}
	// Made on the server's disk: a file this host wrote through the
	// server hides its changes there from this host for a while
	// (docs/consistency.md), and this test's one host is the server's.
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(back, "ls", n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eventually("a b", "two creates on the server's disk")
	if err := os.WriteFile(filepath.Join(d, "c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := names(); got != "a b c" {
		t.Errorf("after a create through the mount: listing %q, want \"a b c\"", got)
	}
	// Three listings in a row make one readdir at most (none when the one
	// above is still kept). The server's watcher may tell of the changes
	// made on its disk above a few milliseconds late, each dropping the
	// listing (as it should): then try again.
	for try := 1; ; try++ {
		reset()
		names()
		names()
		names()
		got := count(fs.MethodReaddir)
		if got <= 1 {
			break
		}
		if try == 5 {
			t.Errorf("%d fs.readdir calls for three listings in a row (%d tries), want 1 at most", got, try)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Rename(filepath.Join(d, "c"), filepath.Join(d, "e")); err != nil {
		t.Fatal(err)
	}
	if got := names(); got != "a b e" {
		t.Errorf("after a rename through the mount: listing %q, want \"a b e\"", got)
	}
	if err := os.Remove(filepath.Join(back, "ls", "a")); err != nil {
		t.Fatal(err)
	}
	eventually("b e", "an unlink on the server's disk")
	if err := os.WriteFile(filepath.Join(back, "ls", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually("b e f", "a create on the server's disk")

	// The directory's attributes, which the kernel asks for again after
	// each readdir (it drops the atime), are kept with the listing.
	mode := func() os.FileMode {
		t.Helper()
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	names()
	mode()
	reset()
	for range 3 {
		names()
		if m := mode(); m != 0o755 {
			t.Fatalf("mode %v, want 0755", m)
		}
	}
	if got := count(fs.MethodGetattr) + count(fs.MethodReaddir); got != 0 {
		t.Errorf("%d calls for three listings and stats of a directory just listed and stat'ed, want none", got)
	}
	if err := os.Chmod(d, 0o750); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0o750 {
		t.Errorf("after a chmod through the mount: mode %v, want 0750", m)
	}
	names()
	if err := os.Chmod(filepath.Join(back, "ls"), 0o775); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "after a chmod on the server's disk", func() error {
		names()
		if m := mode(); m != 0o775 {
			return fmt.Errorf("mode %v, want 0775", m)
		}
		return nil
	})

	// Another user's open of the directory, from the mount's root: the
	// test's own directories above it are root's alone.
	top, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	names()
	names() // kept for this user
	reset()
	otherUser(t, func() {
		fd, err := unix.Openat(int(top.Fd()), "d/ls", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Errorf("another user's open of the directory: %v", err)
			return
		}
		f := os.NewFile(uintptr(fd), d)
		defer f.Close()
		if ents, err := f.ReadDir(-1); err != nil || len(ents) != 3 {
			t.Errorf("another user's listing: %d entries, %v; want 3", len(ents), err)
		}
	})
	if got := count(fs.MethodReaddir); got != 1 {
		t.Errorf("%d fs.readdir calls for another user's listing after this one's, want 1 (the server checks each user)", got)
	}
}

// otherUser runs f on a thread of its own whose file system uid and gid
// are nobody's: FUSE requests carry them.
func otherUser(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		unix.Setfsgid(fs.Nobody)
		unix.Setfsuid(fs.Nobody)
		if uid, _ := unix.SetfsuidRetUid(-1); uid != fs.Nobody {
			t.Errorf("setfsuid: uid %d, want %d", uid, fs.Nobody)
			return
		}
		f()
	}()
	<-done
}

// TestNoXattrAnsweredHere: a getxattr or listxattr of a file the server
// said has no extended attributes (cp -a and rsync -X ask every file) is
// answered without a call; one set through the mount or on the server's
// disk is seen at once, or once its invalidation has arrived.
func TestNoXattrAnsweredHere(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	// A directory made through the mount is watched on the server's disk
	// before the mkdir returns.
	if err := os.Mkdir(filepath.Join(mnt, "d", "xa"), 0o777); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"x1", "x2"} {
		if err := os.WriteFile(filepath.Join(back, "xa", n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(back, "xa", n), fs.Nobody, fs.Nobody); err != nil { // root is squashed
			t.Fatal(err)
		}
	}
	p1, p2 := filepath.Join(mnt, "d", "xa", "x1"), filepath.Join(mnt, "d", "xa", "x2")
	for _, p := range []string{p1, p2} {
		waitFor(t, p+" made on the server's disk", func() error {
			_, err := os.Lstat(p)
			return err
		})
	}
	buf := make([]byte, 64)
	get := func(p, name string) (string, error) {
		n, err := unix.Lgetxattr(p, name, buf)
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	// The server's watcher may tell of the files' making a few
	// milliseconds late. Word that arrives while a lookup is on its way
	// keeps this host from trusting that lookup's "no attributes" (as it
	// should), and the kernel keeps the name, so nothing looks it up
	// again: the first round may ask the server, and the listxattr that
	// finds nothing is kept as a lookup's answer would have been.
	for try := 1; ; try++ {
		reset()
		for _, p := range []string{p1, p2} {
			if _, err := os.Lstat(p); err != nil {
				t.Fatal(err)
			}
			if _, err := get(p, "user.none"); err != unix.ENODATA {
				t.Fatalf("getxattr of %s: %v, want ENODATA", p, err)
			}
			if n, err := unix.Llistxattr(p, buf); err != nil || n != 0 {
				t.Fatalf("listxattr of %s: %d bytes, %v; want none", p, n, err)
			}
		}
		got := count(fs.MethodGetxattr) + count(fs.MethodListxattr)
		if got == 0 {
			break
		}
		if try == 5 {
			t.Errorf("%d xattr calls for files the server said have none (%d tries), want 0", got, try)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := unix.Lsetxattr(p1, "user.a", []byte("here"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := get(p1, "user.a"); v != "here" || err != nil {
		t.Errorf("after a setxattr through the mount: %q, %v", v, err)
	}
	if err := unix.Lsetxattr(filepath.Join(back, "xa", "x2"), "user.b", []byte("there"), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "after a setxattr on the server's disk", func() error {
		if v, err := get(p2, "user.b"); v != "there" || err != nil {
			return fmt.Errorf("%q, %v; want \"there\"", v, err)
		}
		return nil
	})
}

// TestFirstLookSeesNextDiskChange: a change made on the server's own disk
// right after a host first looked into the directory reaches that host:
// the server watches the directory before it answers the first look.
func TestFirstLookSeesNextDiskChange(t *testing.T) {
	mnt, back, _, _ := countingMount(t)
	for i := range 20 {
		dir := "look" + string(rune('a'+i))
		if err := os.MkdirAll(filepath.Join(back, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(back, dir, "f"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// The new directory shows once its invalidation has arrived: d
		// may be listed (listed on this host's own initiative after a
		// few lookups in it).
		p := filepath.Join(mnt, "d", dir, "f")
		waitFor(t, dir+" made on the server's disk", func() error {
			_, err := os.Stat(p)
			return err
		})
		if err := os.Chmod(filepath.Join(back, dir, "f"), 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, dir+": a chmod on the server's disk right after the first look", func() error {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if m := st.Mode().Perm(); m != 0o600 {
				return fmt.Errorf("mode %v, want 0600", m)
			}
			return nil
		})
	}
}

// TestFileAttrKeptAcrossOpens: a compiler's open, fstat(2) and read of a
// header read before costs no call (the open takes the handle kept at the
// last close, kept.go, and the fstat the attributes kept from the open
// before: the kernel drops the atime after each read from the server and
// asks at the next fstat, and asks again once its cache time is over); the attributes still show every
// change: made from this host (a write, a chmod, a link and its unlink),
// during a write from this host, and on the server's own disk (once its
// invalidation has arrived).
func TestFileAttrKeptAcrossOpens(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	p := filepath.Join(mnt, "d", "h.h")
	if err := os.WriteFile(filepath.Join(back, "h.h"), []byte("int x;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(back, "h.h"), fs.Nobody, fs.Nobody); err != nil { // root is squashed
		t.Fatal(err)
	}
	// include opens, fstats and reads p as cpp does, and returns the
	// fstat.
	include := func() os.FileInfo {
		t.Helper()
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(f); err != nil {
			t.Fatal(err)
		}
		return st
	}
	include() // its read, from the server, drops the atime
	reset()
	for range 3 {
		waitKept(t, mnt)
		if st := include(); st.Size() != 7 {
			t.Fatalf("size %d, want 7", st.Size())
		}
	}
	if n, g := count(fs.MethodOpen), count(fs.MethodGetattr); n != 0 || g != 0 {
		t.Errorf("3 opens, fstats and reads of a file read before: %d fs.open and %d fs.getattr calls, want none", n, g)
	}

	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int64{14, 21} {
		if _, err := w.Write([]byte("int y;\n")); err != nil {
			t.Fatal(err)
		}
		if st, err := r.Stat(); err != nil || st.Size() != want {
			t.Errorf("during a write from this host: size %d, %v; want %d", st.Size(), err, want)
		}
	}
	w.Close()
	r.Close()
	if st := include(); st.Size() != 21 {
		t.Errorf("after a write from this host: size %d, want 21", st.Size())
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := include(); st.Mode().Perm() != 0o600 {
		t.Errorf("after a chmod from this host: mode %v, want 0600", st.Mode().Perm())
	}
	include()
	links := func() uint64 {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return uint64(st.Sys().(*syscall.Stat_t).Nlink)
	}
	if err := os.Link(p, p+".2"); err != nil {
		t.Fatal(err)
	}
	if n := links(); n != 2 {
		t.Errorf("after a link from this host: %d links, want 2", n)
	}
	include() // keeps the attributes its open returned
	if err := os.Remove(p + ".2"); err != nil {
		t.Fatal(err)
	}
	if n := links(); n != 1 {
		t.Errorf("after an unlink from this host: %d links, want 1", n)
	}

	f, err := os.OpenFile(filepath.Join(back, "h.h"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("int z;\n")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitFor(t, "after a write on the server's disk", func() error {
		if n := include().Size(); n != 28 {
			return fmt.Errorf("size %d, want 28", n)
		}
		return nil
	})
}

// TestTwoDescriptorsWriteInOrder: a write through one descriptor of a
// file, then one through another descriptor of it on the same host, reach
// the server in that order (write-behind holds both back).
func TestTwoDescriptorsWriteInOrder(t *testing.T) {
	mnt, _, _, _ := countingMount(t)
	for i := range 50 {
		p := filepath.Join(mnt, "d", fmt.Sprintf("two%d", i))
		a, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.WriteAt([]byte("abc"), 0); err != nil {
			t.Fatal(err)
		}
		b, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteAt([]byte("Z"), 0); err != nil {
			t.Fatal(err)
		}
		b.Close()
		a.Close()
		if got, err := os.ReadFile(p); err != nil || string(got) != "Zbc" {
			t.Fatalf("file %d: %q, %v after \"abc\" through one descriptor, then \"Z\" through another; want \"Zbc\"", i, got, err)
		}
	}
}

// TestOwnWritesReadBackHere: a file written from empty through a
// read-write descriptor, read back in blocks as an assembler does, is
// read back with no call to the server and reads what was written; the
// server has it all after an fsync. A truncation from this host, a write
// through another descriptor and a change on the server's disk are read
// back as they are.
func TestOwnWritesReadBackHere(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	x, xWant := ownFile(t, filepath.Join(mnt, "d", "x.o"))
	reset()
	for i := range 8 { // writes that start and end inside pages, each block read back
		off := int64(i*3000 + 700)
		x.write(off, bytes.Repeat([]byte{byte('a' + i)}, 2500))
		x.check(off&^4095, 4096, "a block just written")
	}
	x.check(0, 1<<20, "the whole file")
	if got := count(fs.MethodRead) + count(fs.MethodReadData); got != 0 {
		t.Errorf("%d read calls reading back a file written from empty through the same descriptor, want 0", got)
	}
	if err := x.f.Sync(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(back, "x.o")); err != nil || !bytes.Equal(b, *xWant) {
		t.Fatalf("the server's copy after fsync: %d bytes, %v; want what was written (%d bytes)", len(b), err, len(*xWant))
	}

	y, yWant := ownFile(t, filepath.Join(mnt, "d", "y.o"))
	y.write(0, bytes.Repeat([]byte("y"), 3000))
	if err := y.f.Truncate(1000); err != nil {
		t.Fatal(err)
	}
	*yWant = (*yWant)[:1000]
	y.write(1500, []byte("tail"))
	y.check(0, 1<<20, "after a truncation and a write past it")

	z, zWant := ownFile(t, filepath.Join(mnt, "d", "z.o"))
	z.write(0, []byte("abc"))
	w, err := os.OpenFile(filepath.Join(mnt, "d", "z.o"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt([]byte("Z"), 0); err != nil {
		t.Fatal(err)
	}
	*zWant = []byte("Zbc")
	z.check(0, 100, "after a write through another descriptor")

	// The server hides the inotify events of a file from the client that
	// writes it for 2 s after each of its writes (docs/consistency.md).
	time.Sleep(2100 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(back, "x.o"), []byte("changed on the server's disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	*xWant = []byte("changed on the server's disk")
	waitFor(t, "after a change on the server's disk", func() error {
		if !x.same(0, 100) {
			return errors.New("the change is not read back")
		}
		return nil
	})
}

// modelFile is a file open for reading and writing and what it should
// hold.
type modelFile struct {
	t    *testing.T
	f    *os.File
	want *[]byte
}

// ownFile creates p empty, open for reading and writing.
func ownFile(t *testing.T, p string) (modelFile, *[]byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	want := &[]byte{}
	return modelFile{t: t, f: f, want: want}, want
}

func (m modelFile) write(off int64, b []byte) {
	m.t.Helper()
	if _, err := m.f.WriteAt(b, off); err != nil {
		m.t.Fatal(err)
	}
	w := *m.want
	if end := off + int64(len(b)); end > int64(len(w)) {
		w = append(w, make([]byte, end-int64(len(w)))...)
	}
	copy(w[off:], b)
	*m.want = w
}

// same reports whether size bytes read at off are what the file should
// hold there.
func (m modelFile) same(off int64, size int) bool {
	m.t.Helper()
	got := make([]byte, size)
	n, err := m.f.ReadAt(got, off)
	if err != nil && err != io.EOF {
		m.t.Fatalf("read at %d: %v", off, err)
	}
	w := *m.want
	end := min(int64(len(w)), off+int64(size))
	return off <= end && bytes.Equal(got[:n], w[off:end])
}

func (m modelFile) check(off int64, size int, what string) {
	m.t.Helper()
	if !m.same(off, size) {
		m.t.Fatalf("%s: %d bytes at %d read back are not what was written", what, size, off)
	}
}

// waitFor polls check until it returns nil, for up to two seconds (well
// under the kernel's 5 s cache time, so that a change seen was told, not
// timed out); then the test fails with what check last said.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after 2s", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
