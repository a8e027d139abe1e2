package fusefs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sprite/fs"
)

// TestLsLongCostsOneCall: `ls -l` of a directory another host serves
// (readdir, then an lstat and the security label of every name) is one
// fs.readdir with every entry's attributes, not a lookup and a getxattr
// per name, and the kernel has every entry from the readdir itself; a
// name not listed is not there, without a call. What it shows is the
// server's disk, and stays so: a change there reaches this host, and
// after a change of a file from this host a lookup of that file goes to
// the server again.
func TestLsLongCostsOneCall(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	const n = 40
	if err := os.Mkdir(filepath.Join(back, "many"), 0o777); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		f := filepath.Join(back, "many", fmt.Sprintf("f%d", i))
		if err := os.WriteFile(f, make([]byte, i), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, 0o666); err != nil { // root is nobody through the mount
			t.Fatal(err)
		}
	}
	dir := filepath.Join(mnt, "d", "many")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	reset()
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != n {
		t.Fatalf("readdir: %d entries, %v; want %d", len(ents), err, n)
	}
	// The readdir was a READDIRPLUS whose entries carried the listing's
	// attributes: the kernel knows every name's node before any lstat,
	// so the lstats below never reach this daemon at all.
	if known := len(mountOf(t, mnt).root.GetChild("d").GetChild("many").Children()); known != n {
		t.Errorf("after the readdir the kernel knows %d of the %d entries, want all of them (READDIRPLUS filled from the listing)", known, n)
	}
	label := make([]byte, 256)
	for i := range n / 2 { // half of them: the rest stay unlooked-up
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		st, err := os.Lstat(p)
		if err != nil || st.Size() != int64(i) || st.Mode().Perm() != 0o666 {
			t.Fatalf("lstat %s: %v, %v; want %d bytes, mode 0666", p, st, err, i)
		}
		if _, err := unix.Lgetxattr(p, "security.selinux", label); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Fatalf("getxattr %s: %v, want EOPNOTSUPP (labels are not carried)", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "nosuch")); !os.IsNotExist(err) {
		t.Fatalf("lstat of a name not listed: %v, want ENOENT", err)
	}
	if r, l, x := count(fs.MethodReaddir), count(fs.MethodLookup), count(fs.MethodGetxattr); r != 1 || l != 0 || x != 0 {
		t.Errorf("ls -l of %d names and a missing one: %d fs.readdir, %d fs.lookup, %d fs.getxattr calls; want one readdir and nothing else", n/2, r, l, x)
	}

	// A change on the server's disk, of a listed name and a new one.
	if err := os.WriteFile(filepath.Join(back, "many", "f3"), []byte("grown"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(back, "many", "nosuch"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new size of f3 and the new name", func() error {
		st, err := os.Lstat(filepath.Join(dir, "f3"))
		if err != nil {
			return err
		}
		if st.Size() != 5 {
			return fmt.Errorf("f3 has %d bytes, want 5", st.Size())
		}
		_, err = os.Lstat(filepath.Join(dir, "nosuch"))
		return err
	})

	// A change from this host: a file written here. The listing's
	// attributes of that file may predate it, so they answer no more: a
	// lookup of it goes to the server. Those of the names this host did
	// not change still answer (here for names the kernel forgot).
	if _, err := os.ReadDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f30"), []byte("written here"), 0o644); err != nil {
		t.Fatal(err)
	}
	many := mountOf(t, mnt).root.GetChild("d").GetChild("many")
	for _, name := range []string{"f30", "f31"} {
		if errno := many.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
			t.Fatalf("drop the kernel's entry of %s: %v", name, errno)
		}
	}
	reset()
	st, err := os.Lstat(filepath.Join(dir, "f31"))
	if err != nil || st.Size() != 31 {
		t.Fatalf("lstat f31: %v, %v", st, err)
	}
	if l := count(fs.MethodLookup); l != 0 {
		t.Errorf("a lookup of a name this host did not change, after it wrote another: %d fs.lookup calls, want none", l)
	}
	if st, err := os.Lstat(filepath.Join(dir, "f30")); err != nil || st.Size() != int64(len("written here")) {
		t.Errorf("f30 after its write here: %v, %v", st, err)
	}
	if l := count(fs.MethodLookup); l != 1 {
		t.Errorf("a lookup of the file this host wrote: %d fs.lookup calls, want 1 (the listing's attributes of it predate the write)", l)
	}
}

// TestListedMissingNameKept: a name a directory's listing lacks is "no
// such file", and the kernel keeps that answer, as it keeps one from the
// server: make stats a dozen missing names (RCS, SCCS, its targets) in
// each directory on every run. A second stat reaches no further than the
// kernel (counted in the mount's log of FUSE requests).
func TestListedMissingNameKept(t *testing.T) {
	reqs := &requestLog{ops: map[string]int{}}
	mnt, back, _, _ := testMountLog(t, slog.New(reqs), nil)
	const tries = 5
	for _, d := range []string{"src1", "src2", "src3", "src4", "src5"} {
		if err := os.Mkdir(filepath.Join(back, d), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(back, d), 0o777); err != nil { // root is nobody through the mount
			t.Fatal(err)
		}
	}
	// The server's watcher may tell of the mkdirs above a few
	// milliseconds late, each dropping what the kernel keeps of a
	// directory (as it should): then try again, in the next directory.
	for try := 1; ; try++ {
		src := filepath.Join(mnt, "d", fmt.Sprintf("src%d", try))
		missing := filepath.Join(src, "RCS")
		if _, err := os.ReadDir(src); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("stat %s: %v, want ENOENT", missing, err)
		}
		reqs.reset()
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("stat %s again: %v, want ENOENT", missing, err)
		}
		lookups := reqs.count("LOOKUP")
		if lookups == 0 {
			break
		}
		if try == tries {
			t.Fatalf("a second stat of a name the listing lacks: %d LOOKUP requests (%d tries); want none (the kernel keeps the missing name)", lookups, try)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Kept, and still told: a name made on the server's disk appears.
	if err := os.WriteFile(filepath.Join(back, "src1", "RCS"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new name", func() error {
		_, err := os.Stat(filepath.Join(mnt, "d", "src1", "RCS"))
		return err
	})
}
