package fusefs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"sprite/fs"
)

// TestLabelsAndACLsNotCarried: security labels and POSIX ACLs are "not
// supported" on /sprite (getfacl, ls and cp then stop asking), with no
// call to the server, while the file's other extended attributes, set on
// the server's disk, still read and list through the mount: the "not
// supported" never turns extended attributes off for the whole mount.
func TestLabelsAndACLsNotCarried(t *testing.T) {
	mnt, back, count, reset := countingMount(t)
	f := filepath.Join(back, "labelled")
	if err := os.WriteFile(f, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(f, "user.kept", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(f, "security.sprite-test", []byte("label"), 0); err != nil {
		t.Fatalf("set a security attribute on the server's disk (needs root): %v", err)
	}
	p := filepath.Join(mnt, "d", "labelled")
	if _, err := os.Lstat(p); err != nil {
		t.Fatal(err)
	}
	reset()
	buf := make([]byte, 256)
	for _, name := range []string{"security.selinux", "security.sprite-test", "security.capability",
		"system.posix_acl_access", "system.posix_acl_default"} {
		if _, err := unix.Lgetxattr(p, name, buf); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("getxattr %s: %v, want EOPNOTSUPP", name, err)
		}
	}
	// Values the kernel lets through to the file system (it checks an
	// ACL's and a capability's form itself): setfacl's for mode 0644.
	acl := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	for name, v := range map[string][]byte{"security.selinux": []byte("x"), "security.sprite-test": []byte("x"), "system.posix_acl_access": acl} {
		if err := unix.Lsetxattr(p, name, v, 0); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("setxattr %s: %v, want EOPNOTSUPP", name, err)
		}
		if err := unix.Lremovexattr(p, name); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("removexattr %s: %v, want EOPNOTSUPP", name, err)
		}
	}
	if c := count(fs.MethodGetxattr) + count(fs.MethodSetxattr) + count(fs.MethodRmxattr); c != 0 {
		t.Errorf("%d calls to the server for names /sprite does not carry, want 0", c)
	}
	if n, err := unix.Lgetxattr(p, "user.kept", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("getxattr user.kept after the refusals: %q, %v; want \"v\"", buf[:max(n, 0)], err)
	}
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		t.Fatalf("listxattr size: %v", err)
	}
	n, err := unix.Llistxattr(p, buf)
	if err != nil || string(buf[:n]) != "user.kept\x00" || size != n {
		t.Errorf("listxattr: %q (size %d), %v; want only \"user.kept\" (size %d)", buf[:max(n, 0)], size, err, len("user.kept\x00"))
	}
	if _, err := unix.Llistxattr(p, buf[:3]); !errors.Is(err, unix.ERANGE) {
		t.Errorf("listxattr into 3 bytes: %v, want ERANGE", err)
	}
}
