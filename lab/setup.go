package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// udpBuffer is what quic-go wants for its UDP socket buffers (7 MiB and a bit).
const udpBuffer = 7500000

// ensureUser creates the lab user alice on the machine if it is missing and
// returns its uid and gid.
func ensureUser() (uid, gid int, err error) {
	u, err := user.Lookup(User)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return 0, 0, fmt.Errorf("look up user %s: %w", User, err)
		}
		out, err := exec.Command("useradd", "-U", "-M", "-d", "/home/"+User, "-s", "/bin/bash", User).CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("create user %s: useradd: %w: %s", User, err, bytes.TrimSpace(out))
		}
		if u, err = user.Lookup(User); err != nil {
			return 0, 0, fmt.Errorf("look up user %s after useradd: %w", User, err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// raiseUDPBuffers sets net.core.rmem_max and wmem_max to at least 7.5 MB
// (they are machine-wide, not per network namespace).
func raiseUDPBuffers() error {
	for _, k := range []string{"rmem_max", "wmem_max"} {
		p := "/proc/sys/net/core/" + k
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read sysctl net.core.%s: %w", k, err)
		}
		if v, _ := strconv.Atoi(strings.TrimSpace(string(b))); v >= udpBuffer {
			continue
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(udpBuffer)), 0); err != nil {
			return fmt.Errorf("set sysctl net.core.%s=%d: %w", k, udpBuffer, err)
		}
	}
	return nil
}

// installBinaries copies the sprite binary, and pmake if it lies beside it,
// to BinDir, where every host finds them.
func installBinaries(sprite string) error {
	if sprite == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own executable: %w; pass Options.Binary", err)
		}
		sprite = exe
	}
	sprite, err := filepath.EvalSymlinks(sprite)
	if err != nil {
		return fmt.Errorf("find sprite binary: %w", err)
	}
	if err := os.MkdirAll(BinDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", BinDir, err)
	}
	if err := copyExecutable(sprite, SpriteBin); err != nil {
		return err
	}
	pmake := filepath.Join(filepath.Dir(sprite), "pmake")
	if _, err := os.Stat(pmake); err == nil {
		return copyExecutable(pmake, filepath.Join(BinDir, "pmake"))
	}
	return nil
}

// copyExecutable copies src to dst through a temporary file and a rename, so
// a running dst is replaced, not overwritten (ETXTBSY).
func copyExecutable(src, dst string) error {
	if src == dst {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install %s: %w", src, err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("install %s as %s: %w", src, dst, err)
	}
	return nil
}

// makeMountPoints creates on the machine the directories hosts mount on.
// Whatever is there already is left alone (a dead FUSE mount on /sprite
// included: hosts detach it in their own mount namespace).
func makeMountPoints() error {
	for _, d := range []string{"/home", "/var/lib/sprite", "/run/sprite", "/sprite", "/dev/shm"} {
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", d, err)
		}
	}
	return nil
}

// makeHostDirs creates a host's directories on the machine: home (with
// alice's home in it), state and tmp.
func makeHostDirs(h *Host, uid, gid int) error {
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{h.Dir, 0o755},
		{filepath.Join(h.Dir, "home"), 0o755},
		{filepath.Join(h.Dir, "home", User), 0o755},
		{filepath.Join(h.Dir, "state"), 0o755},
		{filepath.Join(h.Dir, "tmp"), 0o777 | os.ModeSticky},
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("chmod %s: %w", d.path, err)
		}
	}
	home := filepath.Join(h.Dir, "home", User)
	if err := os.Chown(home, uid, gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", home, User, err)
	}
	return nil
}
