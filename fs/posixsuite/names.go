package posixsuite

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

func renames(d string, _ Options) error {
	j := func(n string) string { return filepath.Join(d, n) }
	os.WriteFile(j("a"), []byte("A"), 0o644)
	os.WriteFile(j("b"), []byte("B"), 0o644)
	os.Mkdir(j("dir"), 0o755)
	os.Mkdir(j("empty"), 0o755)
	os.Mkdir(j("full"), 0o755)
	os.WriteFile(j("full/x"), nil, 0o644)
	return first(
		must("rename onto an existing file", os.Rename(j("a"), j("b"))),
		content(j("b"), "A"),
		want("the old name after rename", func() error { _, err := os.Lstat(j("a")); return err }(), syscall.ENOENT),
		must("rename a file to itself", os.Rename(j("b"), j("b"))),
		want("rename a file onto a directory", syscall.Rename(j("b"), j("dir")), syscall.EISDIR),
		want("rename a directory onto a file", syscall.Rename(j("dir"), j("b")), syscall.ENOTDIR),
		want("rename a directory onto a non-empty one", syscall.Rename(j("dir"), j("full")), syscall.ENOTEMPTY),
		want("rename a directory into itself", syscall.Rename(j("dir"), j("dir/sub")), syscall.EINVAL),
		must("rename a directory onto an empty one", syscall.Rename(j("dir"), j("empty"))),
		want("RENAME_NOREPLACE onto an existing name", unix.Renameat2(unix.AT_FDCWD, j("b"), unix.AT_FDCWD, j("full/x"), unix.RENAME_NOREPLACE), syscall.EEXIST),
		must("rename across directories", os.Rename(j("b"), j("full/y"))),
		content(j("full/y"), "A"),
		want("rename a missing name", os.Rename(j("nope"), j("x")), syscall.ENOENT),
	)
}

func unlinks(d string, _ Options) error {
	j := func(n string) string { return filepath.Join(d, n) }
	os.Mkdir(j("dir"), 0o755)
	os.WriteFile(j("dir/f"), []byte("kept"), 0o644)
	f, err := os.Open(j("dir/f"))
	if err != nil {
		return err
	}
	defer f.Close()
	errs := first(
		want("unlink a directory", syscall.Unlink(j("dir")), syscall.EISDIR),
		want("rmdir a non-empty directory", syscall.Rmdir(j("dir")), syscall.ENOTEMPTY),
		want("rmdir a file", syscall.Rmdir(j("dir/f")), syscall.ENOTDIR),
		must("unlink an open file", os.Remove(j("dir/f"))),
		want("unlink a missing name", syscall.Unlink(j("dir/f")), syscall.ENOENT),
	)
	b := make([]byte, 10)
	n, _ := f.ReadAt(b, 0)
	if string(b[:n]) != "kept" {
		errs = first(errs, fmt.Errorf("an unlinked open file reads %q", b[:n]))
	}
	return first(errs, must("rmdir an empty directory", syscall.Rmdir(j("dir"))))
}

func links(d string, _ Options) error {
	j := func(n string) string { return filepath.Join(d, n) }
	os.WriteFile(j("a"), []byte("A"), 0o644)
	os.Mkdir(j("dir"), 0o755)
	if err := os.Link(j("a"), j("dir/b")); err != nil {
		return must("link", err)
	}
	var sa, sb unix.Stat_t
	unix.Stat(j("a"), &sa)
	unix.Stat(j("dir/b"), &sb)
	if sa.Ino != sb.Ino || sa.Nlink != 2 {
		return fmt.Errorf("after link: inodes %d and %d, nlink %d; want one inode, nlink 2", sa.Ino, sb.Ino, sa.Nlink)
	}
	os.WriteFile(j("dir/b"), []byte("B"), 0o644)
	errs := first(
		content(j("a"), "B"),
		want("link onto an existing name", os.Link(j("a"), j("dir/b")), syscall.EEXIST),
		want("link a directory", os.Link(j("dir"), j("dir2")), syscall.EPERM),
		must("unlink one name", os.Remove(j("a"))),
	)
	unix.Stat(j("dir/b"), &sb)
	if sb.Nlink != 1 {
		errs = first(errs, fmt.Errorf("nlink %d after unlinking one of two names", sb.Nlink))
	}
	return errs
}

func symlinks(d string, _ Options) error {
	j := func(n string) string { return filepath.Join(d, n) }
	os.WriteFile(j("target"), []byte("T"), 0o644)
	errs := first(
		must("symlink", os.Symlink("target", j("ln"))),
		must("dangling symlink", os.Symlink("does/not/exist", j("dangling"))),
		must("symlink to an absolute path", os.Symlink("/etc/hostname", j("abs"))),
		content(j("ln"), "T"),
		want("symlink onto an existing name", os.Symlink("x", j("ln")), syscall.EEXIST),
	)
	if t, err := os.Readlink(j("dangling")); err != nil || t != "does/not/exist" {
		errs = first(errs, fmt.Errorf("readlink: %q %v", t, err))
	}
	if st, err := os.Lstat(j("ln")); err != nil || st.Mode()&os.ModeSymlink == 0 {
		errs = first(errs, fmt.Errorf("lstat of a symlink: %v %v", st, err))
	}
	_, err := os.Stat(j("dangling"))
	errs = first(errs, want("stat through a dangling symlink", err, syscall.ENOENT))
	// ls -l asks every file for its extended attributes: a symlink has
	// no user attributes (xattr(7)).
	_, err = unix.Lgetxattr(j("ln"), "user.x", make([]byte, 64))
	errs = first(errs, want("get a user attribute of a symlink", err, syscall.ENODATA))
	if _, err := unix.Llistxattr(j("ln"), make([]byte, 256)); err != nil {
		errs = first(errs, fmt.Errorf("list a symlink's extended attributes: %w", err))
	}
	return first(errs, want("set a user attribute of a symlink", unix.Lsetxattr(j("ln"), "user.x", []byte("1"), 0), syscall.EPERM))
}

func permissions(d string, o Options) error {
	if !o.NonRoot {
		return nil
	}
	j := func(n string) string { return filepath.Join(d, n) }
	os.WriteFile(j("none"), []byte("secret"), 0o644)
	os.Chmod(j("none"), 0)
	_, rerr := os.ReadFile(j("none"))
	os.Mkdir(j("ro"), 0o755)
	os.Chmod(j("ro"), 0o555)
	werr := os.WriteFile(j("ro/x"), nil, 0o644)
	os.Mkdir(j("noexec"), 0o755)
	os.WriteFile(j("noexec/f"), nil, 0o644)
	os.Chmod(j("noexec"), 0o644)
	_, serr := os.Stat(j("noexec/f"))
	errs := first(
		want("read a mode 000 file", rerr, syscall.EACCES),
		want("create in a mode 555 directory", werr, syscall.EACCES),
		want("stat in a directory without search permission", serr, syscall.EACCES),
		want("chown to root", os.Chown(j("none"), 0, 0), syscall.EPERM),
	)
	os.Chmod(j("none"), 0o600)
	os.Chmod(j("ro"), 0o755)
	os.Chmod(j("noexec"), 0o755)
	if st, err := os.Stat(j("none")); err != nil || st.Mode().Perm() != 0o600 {
		errs = first(errs, fmt.Errorf("chmod 600: %v %v", st.Mode(), err))
	}
	return first(errs, content(j("none"), "secret"))
}

// readdir10k lists 10,000 entries, then checks that a directory offset
// taken half way (telldir) leads back to the same remaining entries
// (seekdir).
func readdir10k(d string, _ Options) error {
	const n = 10000
	for i := range n {
		f, err := os.Create(filepath.Join(d, fmt.Sprintf("entry-%05d", i)))
		if err != nil {
			return err
		}
		f.Close()
	}
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	head, err := getdents(fd, 4096, 1)
	if err != nil {
		return err
	}
	mid, err := unix.Seek(fd, 0, 1)
	if err != nil {
		return must("telldir", err)
	}
	rest, err := getdents(fd, 64<<10, -1)
	if err != nil {
		return err
	}
	all := append(append([]string{}, head...), rest...) // without . and ..
	names := map[string]bool{}
	for _, x := range all {
		names[x] = true
	}
	if len(names) != n || len(all) != n {
		return fmt.Errorf("readdir returned %d entries (%d distinct names), want %d", len(all), len(names), n)
	}
	if _, err := unix.Seek(fd, mid, 0); err != nil {
		return must("seekdir", err)
	}
	again, err := getdents(fd, 64<<10, -1)
	if err != nil {
		return err
	}
	if !slices.Equal(again, rest) {
		return fmt.Errorf("after seekdir to a saved offset: %d entries, want the same %d as before", len(again), len(rest))
	}
	return nil
}

// getdents reads names with a buffer of size, calls times (-1: to the end).
func getdents(fd, size, calls int) ([]string, error) {
	buf := make([]byte, size)
	var out []string
	for i := 0; calls < 0 || i < calls; i++ {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, must("getdents", err)
		}
		if n == 0 {
			break
		}
		_, _, out = unix.ParseDirent(buf[:n], -1, out)
	}
	return out, nil
}
