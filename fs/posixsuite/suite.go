// Package posixsuite is sprite's own POSIX conformance suite for a file
// system mounted somewhere: create/rename/unlink/link edge cases, O_APPEND,
// O_EXCL, truncate, sparse and large files, permissions as a non-root user
// and readdir of 10,000 entries with stable offsets. It runs against any
// directory: the unit tests run it on local disk and on an in-process
// /sprite mount, the e2e tests on /sprite in the lab as alice (through the
// sprite-posix command).
package posixsuite

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Options shape a run.
type Options struct {
	// NonRoot says the file server sees the caller as an ordinary user
	// (alice, or a root squashed to nobody), so permission checks apply.
	NonRoot bool
	// LargeMiB is the size of the large-file check (default 64).
	LargeMiB int
}

// Case is one check.
type Case struct {
	Name string
	Run  func(dir string, o Options) error
}

// Cases lists every check, in order.
var Cases = []Case{
	{"create-excl", createExcl},
	{"append", appendMode},
	{"truncate", truncate},
	{"sparse", sparse},
	{"large-file", largeFile},
	{"offset-beyond-4GiB", beyond4G},
	{"rename", renames},
	{"unlink", unlinks},
	{"link", links},
	{"symlink", symlinks},
	{"times", times},
	{"permissions", permissions},
	{"readdir-10000", readdir10k},
}

// Result is one check's outcome.
type Result struct {
	Name string
	Err  error
}

// Run runs every case in a fresh subdirectory of dir each.
func Run(dir string, o Options) []Result {
	if o.LargeMiB <= 0 {
		o.LargeMiB = 64
	}
	var out []Result
	for _, c := range Cases {
		d := filepath.Join(dir, c.Name)
		os.RemoveAll(d)
		err := os.Mkdir(d, 0o755)
		if err == nil {
			err = c.Run(d, o)
			if err == nil {
				err = os.RemoveAll(d)
			}
		}
		out = append(out, Result{c.Name, err})
	}
	return out
}

// want checks that err is the errno want.
func want(op string, err error, want syscall.Errno) error {
	if !errors.Is(err, want) {
		return fmt.Errorf("%s: got %v, want %v", op, err, want)
	}
	return nil
}

func must(op string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func content(p, wantS string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if string(b) != wantS {
		return fmt.Errorf("%s holds %q, want %q", filepath.Base(p), b, wantS)
	}
	return nil
}

func first(errs ...error) error { return errors.Join(errs...) }

func createExcl(d string, _ Options) error {
	p := filepath.Join(d, "f")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return must("O_CREAT|O_EXCL of a new name", err)
	}
	f.Close()
	_, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if e := want("O_CREAT|O_EXCL of an existing name", err, syscall.EEXIST); e != nil {
		return e
	}
	os.Symlink("nowhere", filepath.Join(d, "dangling"))
	_, err = os.OpenFile(filepath.Join(d, "dangling"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if e := want("O_CREAT|O_EXCL of a dangling symlink", err, syscall.EEXIST); e != nil {
		return e
	}
	// O_TRUNC empties; O_CREAT without O_EXCL opens the existing file.
	os.WriteFile(p, []byte("data"), 0o644)
	f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return must("O_CREAT|O_TRUNC", err)
	}
	f.Close()
	return content(p, "")
}

func appendMode(d string, _ Options) error {
	p := filepath.Join(d, "log")
	os.WriteFile(p, []byte("a"), 0o644)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	f.Seek(0, io.SeekStart)
	if _, err := f.Write([]byte("b")); err != nil {
		return err
	}
	g, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	g.Write([]byte("c"))
	g.Close()
	f.Write([]byte("d"))
	return content(p, "abcd")
}

func truncate(d string, _ Options) error {
	p := filepath.Join(d, "t")
	os.WriteFile(p, []byte("hello world"), 0o644)
	if err := os.Truncate(p, 5); err != nil {
		return err
	}
	if err := content(p, "hello"); err != nil {
		return err
	}
	if err := os.Truncate(p, 8); err != nil {
		return err
	}
	if err := content(p, "hello\x00\x00\x00"); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(2); err != nil {
		return must("ftruncate", err)
	}
	b := make([]byte, 10)
	n, _ := f.ReadAt(b, 0)
	if string(b[:n]) != "he" {
		return fmt.Errorf("after ftruncate(2) read %q", b[:n])
	}
	return nil
}

func sparse(d string, _ Options) error {
	p := filepath.Join(d, "s")
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	const off = 100 << 20
	if _, err := f.WriteAt([]byte("x"), off); err != nil {
		return err
	}
	f.Sync()
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.Size() != off+1 {
		return fmt.Errorf("size %d, want %d", st.Size(), off+1)
	}
	if blocks := st.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 1<<20 {
		return fmt.Errorf("a 100 MiB hole takes %d bytes of disk", blocks)
	}
	b := make([]byte, 4096)
	if _, err := f.ReadAt(b, off/2); err != nil || !bytes.Equal(b, make([]byte, 4096)) {
		return fmt.Errorf("the hole does not read as zeros (%v)", err)
	}
	return nil
}

func largeFile(d string, o Options) error {
	p := filepath.Join(d, "large")
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	h := sha256.New()
	block := make([]byte, 1<<20)
	for i := range o.LargeMiB {
		for j := range block {
			block[j] = byte(i*7 + j*13)
		}
		h.Write(block)
		if _, err := f.Write(block); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return must("close", err)
	}
	g, err := os.Open(p)
	if err != nil {
		return err
	}
	defer g.Close()
	h2 := sha256.New()
	if _, err := io.CopyBuffer(h2, g, make([]byte, 256<<10)); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
		return fmt.Errorf("%d MiB read back differ", o.LargeMiB)
	}
	return nil
}

func beyond4G(d string, _ Options) error {
	p := filepath.Join(d, "far")
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	const off = 5 << 30
	if _, err := f.WriteAt([]byte("far"), off); err != nil {
		return must("write at 5 GiB", err)
	}
	b := make([]byte, 3)
	if _, err := f.ReadAt(b, off); err != nil || string(b) != "far" {
		return fmt.Errorf("read at 5 GiB: %q %v", b, err)
	}
	return nil
}

func times(d string, _ Options) error {
	p := filepath.Join(d, "t")
	os.WriteFile(p, nil, 0o644)
	ts := []unix.Timespec{unix.NsecToTimespec(1_000_000_000_123), unix.NsecToTimespec(2_000_000_000_456)}
	if err := unix.UtimesNano(p, ts); err != nil {
		return must("utimensat", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if st.Atim != ts[0] || st.Mtim != ts[1] {
		return fmt.Errorf("times %v %v, want %v %v", st.Atim, st.Mtim, ts[0], ts[1])
	}
	return nil
}
