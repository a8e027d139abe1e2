package fs

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// testServer exports a fresh directory as /t. It needs root (fsuid).
func testServer(t *testing.T) (*Server, string, *logBuf) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests act as other users and need root: sudo go test ./fs/...")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	lb := &logBuf{}
	s, err := NewServer(ServerConfig{Host: "h1", Exports: []Exported{{Prefix: "/t", Path: dir}},
		Log: slog.New(slog.NewTextHandler(lb, nil)), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, dir, lb
}

var alice = Cred{UID: 1000, GID: 1000}

func call(t *testing.T, s *Server, method string, r Req) *Resp {
	t.Helper()
	r.Prefix = "/t"
	if r.Cred.UID == 0 && r.Cred.GID == 0 {
		r.Cred = alice
	}
	resp, err := s.Serve(context.Background(), "h2", method, &r)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return resp
}

func errno(r *Resp) syscall.Errno { return syscall.Errno(r.Errno) }

func TestCreateWriteReadAsUser(t *testing.T) {
	s, dir, _ := testServer(t)
	r := call(t, s, MethodCreate, Req{Name: "f", Flags: syscall.O_RDWR | syscall.O_EXCL, Mode: 0o640})
	if r.Errno != 0 {
		t.Fatalf("create: %v", errno(r))
	}
	st, _ := os.Stat(filepath.Join(dir, "f"))
	if st.Mode().Perm() != 0o640 || st.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Fatalf("created %v uid %d; want 0640 owned by alice (umask not applied)", st.Mode(), st.Sys().(*syscall.Stat_t).Uid)
	}
	h := r.Handle
	if w := call(t, s, MethodWrite, Req{Handle: h, Data: []byte("hello"), Offset: 3}); w.N != 5 {
		t.Fatalf("write: %+v", w)
	}
	rd := call(t, s, MethodRead, Req{Handle: h, Size: 100})
	if string(rd.Data) != "\x00\x00\x00hello" {
		t.Fatalf("read %q", rd.Data)
	}
	call(t, s, MethodRelease, Req{Handle: h})
	if r := call(t, s, MethodRead, Req{Handle: h, Size: 1}); errno(r) != syscall.EBADF {
		t.Fatalf("read after release: %v", errno(r))
	}
	if r := call(t, s, MethodCreate, Req{Name: "f", Flags: syscall.O_RDWR | syscall.O_EXCL, Mode: 0o640}); errno(r) != syscall.EEXIST {
		t.Fatalf("O_EXCL on an existing file: %v", errno(r))
	}
}

func TestPermissionsAreTheUsers(t *testing.T) {
	s, dir, _ := testServer(t)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o600) // root's
	if r := call(t, s, MethodOpen, Req{Path: "secret", Flags: syscall.O_RDONLY}); errno(r) != syscall.EACCES {
		t.Fatalf("alice opened root's 0600 file: %v", errno(r))
	}
	// Root from another host is squashed to nobody.
	root := Req{Path: "secret", Flags: syscall.O_RDONLY, Cred: Cred{UID: 0, GID: 0, Groups: []uint32{0}}}
	root.Prefix = "/t"
	resp, _ := s.Serve(context.Background(), "h2", MethodOpen, &root)
	if errno(resp) != syscall.EACCES {
		t.Fatalf("remote root opened a 0600 file: %v", errno(resp))
	}
	if r := call(t, s, MethodSetattr, Req{Path: "secret", Set: &SetAttr{Valid: SetMode, Mode: 0o777}}); errno(r) != syscall.EPERM {
		t.Fatalf("alice chmod root's file: %v", errno(r))
	}
	if r := call(t, s, MethodMkdir, Req{Name: "d", Mode: 0o700}); r.Errno != 0 || r.Attr.UID != 1000 {
		t.Fatalf("mkdir: %v %+v", errno(r), r.Attr)
	}
	bob := Cred{UID: 1001, GID: 1001}
	if r := call(t, s, MethodCreate, Req{Path: "d", Name: "x", Flags: syscall.O_WRONLY, Mode: 0o644, Cred: bob}); errno(r) != syscall.EACCES {
		t.Fatalf("bob created in alice's 0700 dir: %v", errno(r))
	}
	// A supplementary group grants access.
	os.Mkdir(filepath.Join(dir, "g"), 0o770)
	os.Chown(filepath.Join(dir, "g"), 0, 4242)
	os.Chmod(filepath.Join(dir, "g"), 0o770)
	if r := call(t, s, MethodMkdir, Req{Path: "g", Name: "in", Mode: 0o755, Cred: Cred{UID: 1001, GID: 1001, Groups: []uint32{4242}}}); r.Errno != 0 {
		t.Fatalf("group member mkdir: %v", errno(r))
	}
}

func TestEscapesRefusedAndLogged(t *testing.T) {
	s, dir, lb := testServer(t)
	os.Symlink("/etc", filepath.Join(dir, "etc"))
	os.Symlink("..", filepath.Join(dir, "up"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o777)
	for _, tc := range []struct {
		method string
		req    Req
		want   syscall.Errno
	}{
		{MethodLookup, Req{Name: ".."}, syscall.EINVAL},
		{MethodLookup, Req{Path: "sub/..", Name: "x"}, syscall.EINVAL},
		{MethodLookup, Req{Path: "/etc", Name: "passwd"}, syscall.EINVAL},
		{MethodLookup, Req{Name: "a/b"}, syscall.EINVAL},
		{MethodOpen, Req{Path: "etc/passwd"}, syscall.ELOOP},
		{MethodOpen, Req{Path: "up/" + filepath.Base(dir) + "/sub"}, syscall.ELOOP},
		{MethodReaddir, Req{Path: "etc"}, syscall.ENOTDIR},
		{MethodSetattr, Req{Path: "etc", Set: &SetAttr{Valid: SetMode, Mode: 0o777}}, syscall.EOPNOTSUPP},
		{MethodCreate, Req{Path: "etc", Name: "evil", Mode: 0o644, Flags: syscall.O_WRONLY}, syscall.ELOOP},
	} {
		if r := call(t, s, tc.method, tc.req); errno(r) != tc.want {
			t.Errorf("%s %+v: %v, want %v", tc.method, tc.req, errno(r), tc.want)
		}
	}
	if _, err := os.Stat("/etc/evil"); err == nil {
		t.Fatal("a file was created in /etc")
	}
	if st, _ := os.Stat("/etc"); st.Mode().Perm() == 0o777 {
		t.Fatal("/etc was chmodded")
	}
	log := lb.String()
	if !strings.Contains(log, "refused escape from export") || !strings.Contains(log, "refused request: bad name") {
		t.Fatalf("escapes not logged:\n%s", log)
	}
	// The symlink itself is an ordinary entry: lookup and readlink work.
	if r := call(t, s, MethodLookup, Req{Name: "etc"}); r.Errno != 0 || r.Attr.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Fatalf("lookup of the symlink: %v", errno(r))
	}
	if r := call(t, s, MethodReadlink, Req{Path: "etc"}); string(r.Data) != "/etc" {
		t.Fatalf("readlink: %q %v", r.Data, errno(r))
	}
}

func TestSymlinkSwappedMidLookup(t *testing.T) {
	s, dir, _ := testServer(t)
	// A directory replaced by a symlink to / between the client's lookup
	// and its open: the server must not follow it.
	d := filepath.Join(dir, "d")
	os.Mkdir(d, 0o777)
	os.WriteFile(filepath.Join(d, "passwd"), []byte("mine"), 0o644)
	if r := call(t, s, MethodLookup, Req{Path: "d", Name: "passwd"}); r.Errno != 0 {
		t.Fatal(errno(r))
	}
	os.RemoveAll(d)
	os.Symlink("/etc", d)
	if r := call(t, s, MethodOpen, Req{Path: "d/passwd"}); errno(r) != syscall.ELOOP {
		t.Fatalf("open through a swapped symlink: %v", errno(r))
	}
}

func TestRenameLinkReaddirPaging(t *testing.T) {
	s, dir, _ := testServer(t)
	call(t, s, MethodMkdir, Req{Name: "big", Mode: 0o755})
	for i := range 5000 {
		os.WriteFile(filepath.Join(dir, "big", "f"+itoa(i)), nil, 0o644)
	}
	seen := map[string]bool{}
	for off := int64(0); ; {
		r := call(t, s, MethodReaddir, Req{Path: "big", Offset: off})
		for _, e := range r.Entries {
			seen[e.Name] = true
		}
		off += int64(len(r.Entries))
		if r.Flags&DirMore == 0 {
			break
		}
	}
	if len(seen) != 5000 {
		t.Fatalf("readdir saw %d entries, want 5000", len(seen))
	}
	os.WriteFile(filepath.Join(dir, "a"), []byte("A"), 0o666)
	os.Chown(filepath.Join(dir, "a"), 1000, 1000)
	if r := call(t, s, MethodRename, Req{Name: "a", NewPath: "big", NewName: "b"}); r.Errno != 0 {
		t.Fatal(errno(r))
	}
	if r := call(t, s, MethodLink, Req{Path: "big/b", NewPath: "", NewName: "c"}); r.Errno != 0 || r.Attr.Nlink != 2 {
		t.Fatalf("link: %v", errno(r))
	}
	if r := call(t, s, MethodRename, Req{Name: "c", NewPath: "big", NewName: "b", Flags: 1}); errno(r) != syscall.EEXIST {
		t.Fatalf("RENAME_NOREPLACE: %v", errno(r))
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestXattrsAsUser(t *testing.T) {
	s, dir, _ := testServer(t)
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	os.Chown(filepath.Join(dir, "x"), 1000, 1000)
	if r := call(t, s, MethodSetxattr, Req{Path: "x", Name: "user.color", Data: []byte("blue")}); r.Errno != 0 {
		t.Fatalf("setxattr: %v", errno(r))
	}
	if r := call(t, s, MethodGetxattr, Req{Path: "x", Name: "user.color", Size: 100}); string(r.Data) != "blue" {
		t.Fatalf("getxattr: %q %v", r.Data, errno(r))
	}
	if r := call(t, s, MethodGetxattr, Req{Path: "x", Name: "user.color"}); r.N != 4 {
		t.Fatalf("getxattr size probe: %d %v", r.N, errno(r))
	}
	if r := call(t, s, MethodListxattr, Req{Path: "x", Size: 100}); !strings.Contains(string(r.Data), "user.color") {
		t.Fatalf("listxattr: %q %v", r.Data, errno(r))
	}
	if r := call(t, s, MethodSetxattr, Req{Path: "x", Name: "user.c", Data: []byte("b"), Cred: Cred{UID: 1001, GID: 1001}}); errno(r) != syscall.EACCES {
		t.Fatalf("bob set alice's xattr: %v", errno(r))
	}
	if r := call(t, s, MethodRmxattr, Req{Path: "x", Name: "user.color"}); r.Errno != 0 {
		t.Fatalf("removexattr: %v", errno(r))
	}
}

// TestNoXattrIgnoresLabels: a lookup's and a listing's NoXattr say
// whether a file has any extended attribute /sprite carries; a security
// label alone (every file of an SELinux host has one) does not count, a
// user attribute does. The same again as on a kernel without
// listxattrat(2), through the directory's magic link.
func TestNoXattrIgnoresLabels(t *testing.T) {
	s, dir, _ := testServer(t)
	for name, attr := range map[string]string{"plain": "", "labelled": "security.sprite-test", "tagged": "user.tag"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if attr != "" {
			if err := unix.Setxattr(p, attr, []byte("v"), 0); err != nil {
				t.Fatalf("set %s on the export (needs root): %v", attr, err)
			}
		}
	}
	want := map[string]bool{"plain": true, "labelled": true, "tagged": false}
	t.Cleanup(func() { noListxattrat.Store(false) })
	for _, old := range []bool{false, true} {
		noListxattrat.Store(old)
		for name, none := range want {
			r := call(t, s, MethodLookup, Req{Name: name})
			if r.Errno != 0 || r.Attr == nil || r.Attr.NoXattr != none {
				t.Errorf("old kernel %v: lookup %s: %+v, errno %v; want NoXattr %v", old, name, r.Attr, errno(r), none)
			}
		}
		r := call(t, s, MethodReaddir, Req{Flags: ReaddirAttrs})
		for _, e := range r.Entries {
			if none, ok := want[e.Name]; ok && (e.Attr == nil || e.Attr.NoXattr != none) {
				t.Errorf("old kernel %v: readdir entry %s: %+v; want NoXattr %v", old, e.Name, e.Attr, none)
			}
		}
	}
}

// TestReleaseBatch: one fs.release closes its handle and its further
// Handles; a handle that is not the client's is EBADF, the others close.
func TestReleaseBatch(t *testing.T) {
	s, _, _ := testServer(t)
	var hs []uint64
	for _, name := range []string{"a", "b", "c"} {
		r := call(t, s, MethodCreate, Req{Name: name, Flags: syscall.O_RDWR, Mode: 0o644})
		if r.Errno != 0 {
			t.Fatalf("create %s: %v", name, errno(r))
		}
		hs = append(hs, r.Handle)
	}
	if r := call(t, s, MethodRelease, Req{Handle: hs[0], Handles: hs[1:]}); r.Errno != 0 {
		t.Fatalf("release of three: %v", errno(r))
	}
	for _, h := range hs {
		if r := call(t, s, MethodRead, Req{Handle: h, Size: 1}); errno(r) != syscall.EBADF {
			t.Errorf("read through released handle %d: %v, want EBADF", h, errno(r))
		}
	}
	r := call(t, s, MethodOpen, Req{Path: "a", Flags: syscall.O_RDONLY})
	if r := call(t, s, MethodRelease, Req{Handle: r.Handle, Handles: []uint64{hs[0]}}); errno(r) != syscall.EBADF {
		t.Errorf("a batch with a closed handle: %v, want EBADF", errno(r))
	}
	if rd := call(t, s, MethodRead, Req{Handle: r.Handle, Size: 1}); errno(rd) != syscall.EBADF {
		t.Errorf("the batch's valid handle is still open: %v", errno(rd))
	}
}

// TestSymlinkXattrs: a symlink's own extended attributes are answered as a
// local disk answers them (ls -l asks every file), and no escape is logged.
func TestSymlinkXattrs(t *testing.T) {
	s, dir, lb := testServer(t)
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	os.Symlink("f", filepath.Join(dir, "ln"))
	if r := call(t, s, MethodGetxattr, Req{Path: "ln", Name: "user.x", Size: 64}); errno(r) != syscall.ENODATA {
		t.Errorf("getxattr of a symlink: %v, want ENODATA", errno(r))
	}
	if r := call(t, s, MethodListxattr, Req{Path: "ln", Size: 64}); r.Errno != 0 || r.N != 0 {
		t.Errorf("listxattr of a symlink: %d bytes, %v; want none", r.N, errno(r))
	}
	if r := call(t, s, MethodSetxattr, Req{Path: "ln", Name: "user.x", Data: []byte("1")}); errno(r) != syscall.EPERM {
		t.Errorf("setxattr of a symlink: %v, want EPERM", errno(r))
	}
	if r := call(t, s, MethodRmxattr, Req{Path: "ln", Name: "user.x"}); errno(r) != syscall.EPERM {
		t.Errorf("removexattr of a symlink: %v, want EPERM", errno(r))
	}
	if log := lb.String(); strings.Contains(log, "escape") {
		t.Errorf("a symlink's attributes logged as an escape:\n%s", log)
	}
}

func TestDropNotCarried(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"user.a\x00":                     "user.a\x00",
		"security.selinux\x00user.a\x00": "user.a\x00",
		"user.a\x00system.posix_acl_access\x00user.b\x00": "user.a\x00user.b\x00",
		"trusted.x\x00security.capability":                "trusted.x\x00",
		"system.posix_acl_default\x00":                    "",
	} {
		if got := string(DropNotCarried([]byte(in))); got != want {
			t.Errorf("DropNotCarried(%q) = %q, want %q", in, got, want)
		}
	}
}
