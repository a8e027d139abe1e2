package fs

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// export is one served domain: a local directory, held open, under which
// every operation stays.
type export struct {
	prefix string
	path   string
	root   int    // O_PATH fd of the directory; closed by Server.Stop
	dev    uint64 // the root's device, for readdir's inode numbers
}

// resolveFlags confine every path walk to the export: no "..", absolute
// path or symlink may lead out (RESOLVE_BENEATH), and no symlink is
// followed at all (RESOLVE_NO_SYMLINKS): the client's kernel resolves
// symlinks itself, one component at a time, so a symlink met during a walk
// on the server is an escape attempt or a race.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// errEscape marks an open refused because the path left the export.
var errEscape = errors.New("path leaves the export")

func openExport(prefix, path string) (*export, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("export %s: open %s: %w (create the directory or fix the [[export]] path)", prefix, path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("export %s: stat %s: %w", prefix, path, err)
	}
	return &export{prefix: prefix, path: path, root: fd, dev: st.Dev}, nil
}

func (e *export) close() { unix.Close(e.root) }

// open opens rel (already checked by checkPath) beneath the export root.
func (e *export) open(rel string, flags uint64, mode uint32) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC | unix.O_NOFOLLOW, Mode: uint64(mode), Resolve: resolveFlags}
	if flags&(unix.O_CREAT|unix.O_TMPFILE) == 0 {
		how.Mode = 0
	}
	for {
		fd, err := unix.Openat2(e.root, rel, &how)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue // RESOLVE_* may ask for a retry on a concurrent rename
		case err == unix.EXDEV || err == unix.ELOOP:
			return -1, fmt.Errorf("%w: %q: %w", errEscape, rel, err)
		case err != nil:
			return -1, err
		}
		return fd, nil
	}
}

// openDir opens directory rel as an O_PATH descriptor for *at calls.
func (e *export) openDir(rel string) (int, error) {
	return e.open(rel, unix.O_PATH|unix.O_DIRECTORY, 0)
}

// openNode opens rel itself, symlink or not, as an O_PATH descriptor.
func (e *export) openNode(rel string) (int, error) {
	return e.open(rel, unix.O_PATH, 0)
}

// procPath names an open descriptor for the calls that have no *at form
// taking an O_PATH descriptor (chmod, utimens, xattrs). The magic link
// leads to exactly the file already opened beneath the export.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// inoOf makes a domain-wide inode number from the device and the inode, so
// that a domain spanning mounts does not repeat numbers.
func (e *export) inoOf(st *unix.Stat_t) uint64 {
	h := fnv.New64a()
	var b [16]byte
	for i := range 8 {
		b[i] = byte(st.Dev >> (8 * i))
		b[8+i] = byte(st.Ino >> (8 * i))
	}
	h.Write(b[:])
	v := h.Sum64()
	if v < 2 {
		v += 2
	}
	return v
}

func (e *export) attr(st *unix.Stat_t) *Attr {
	return &Attr{
		Ino: e.inoOf(st), Mode: st.Mode, Nlink: uint32(st.Nlink), UID: st.Uid, GID: st.Gid,
		Size: st.Size, Blocks: st.Blocks, Rdev: uint32(st.Rdev), Blksize: uint32(st.Blksize),
		Atime: unix.TimespecToNsec(st.Atim), Mtime: unix.TimespecToNsec(st.Mtim), Ctime: unix.TimespecToNsec(st.Ctim),
	}
}

// lstat returns rel's attributes without following a final symlink.
func (e *export) lstat(rel string) (*Attr, *unix.Stat_t, error) {
	return e.lstatOf(rel, false)
}

// lstatX is lstat, and says in NoXattr whether rel has no extended
// attributes that /sprite carries (a lookup's or getattr's reply).
func (e *export) lstatX(rel string) (*Attr, error) {
	a, _, err := e.lstatOf(rel, true)
	return a, err
}

// lstatOf is lstat, and with xattrs also sets NoXattr (not for the root).
func (e *export) lstatOf(rel string, xattrs bool) (*Attr, *unix.Stat_t, error) {
	var st unix.Stat_t
	if rel == "" {
		if err := unix.Fstat(e.root, &st); err != nil {
			return nil, nil, err
		}
		return e.attr(&st), &st, nil
	}
	dir, name := splitPath(rel)
	pfd, err := e.openDir(dir)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(pfd)
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, nil, err
	}
	a := e.attr(&st)
	// name is one component of the directory already opened beneath the
	// export, not followed.
	if xattrs {
		a.NoXattr = carriesNone(pfd, name)
	}
	return a, &st, nil
}

// inDir runs fn with the directory dir opened for *at calls.
func (e *export) inDir(dir string, fn func(pfd int) error) error {
	pfd, err := e.openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return fn(pfd)
}

func fstatAttr(e *export, fd int) (*Attr, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	return e.attr(&st), nil
}

// readDir lists directory rel: every entry but "." and "..".
func (e *export) readDir(rel string) ([]Dirent, error) {
	fd, err := e.open(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []Dirent
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		start := len(out)
		out = parseDirents(buf[:n], out)
		for i := start; i < len(out); i++ {
			out[i].Ino = e.inoOf(&unix.Stat_t{Dev: e.dev, Ino: out[i].Ino})
		}
	}
}

// statEntries sets the Attr of each of directory rel's entries ents, as
// lstatX would; an entry that cannot be stated (gone meanwhile, or a
// directory the caller may not search) keeps none.
func (e *export) statEntries(rel string, ents []Dirent) {
	pfd, err := e.openDir(rel)
	if err != nil {
		return
	}
	defer unix.Close(pfd)
	for i := range ents {
		var st unix.Stat_t
		if unix.Fstatat(pfd, ents[i].Name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		a := e.attr(&st)
		a.NoXattr = carriesNone(pfd, ents[i].Name)
		ents[i].Attr = a
	}
}

// isEmptyDir reports whether directory rel holds no entry.
func (e *export) isEmptyDir(rel string) bool {
	fd, err := e.open(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return false
	}
	return len(parseDirents(buf[:n], nil)) == 0
}

// parseDirents decodes linux_dirent64 records.
func parseDirents(b []byte, out []Dirent) []Dirent {
	for len(b) >= 19 {
		ino := le64(b[0:8])
		reclen := int(b[16]) | int(b[17])<<8
		if reclen < 19 || reclen > len(b) {
			break
		}
		typ := b[18]
		name := b[19:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if s := string(name); s != "." && s != ".." {
			out = append(out, Dirent{Name: s, Ino: ino, Type: typ})
		}
		b = b[reclen:]
	}
	return out
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// statfs reports the export's file system.
func (e *export) statfs() (*Statfs, error) {
	var s unix.Statfs_t
	if err := unix.Fstatfs(e.root, &s); err != nil {
		return nil, err
	}
	return &Statfs{Blocks: s.Blocks, Bfree: s.Bfree, Bavail: s.Bavail, Files: s.Files, Ffree: s.Ffree,
		Bsize: uint32(s.Bsize), NameLen: uint32(s.Namelen), Frsize: uint32(s.Frsize)}, nil
}

// isDir reports whether path is a directory on this host.
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}
