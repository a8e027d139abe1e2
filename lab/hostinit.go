package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Init pipe descriptors of `sprite lab _hostinit` (ExtraFiles 0 and 1).
const (
	goFD    = 3 // parent -> init: one byte when cgroup and network are ready
	readyFD = 4 // init -> parent: "ok" or "error: ..."
)

// HostInit is `sprite lab _hostinit --name NAME --dir DIR`: it becomes PID 1
// of a lab host. Up starts it in fresh namespaces; it does not return until
// the host ends (SIGTERM) or it failed to set the host up.
func HostInit(name, dir string) error {
	ready := os.NewFile(readyFD, "ready")
	gopipe := os.NewFile(goFD, "go")
	if ready == nil || gopipe == nil {
		return errors.New("lab _hostinit: no sync pipes; this command is started by `sprite lab up` only")
	}
	if err := setupHost(name, dir); err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
		return err
	}
	var b [1]byte
	if n, _ := gopipe.Read(b[:]); n != 1 {
		return errors.New("lab _hostinit: lab up went away before the host was wired; exiting")
	}
	gopipe.Close()
	if err := startConsole(dir); err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
		return err
	}
	s := newSupervisor(name, dir)
	if _, err := fmt.Fprintln(ready, "ok"); err != nil {
		return fmt.Errorf("lab _hostinit: tell lab up: %w", err)
	}
	ready.Close()
	return s.run()
}

// setupHost builds the host's file tree in its new mount namespace.
func setupHost(name, dir string) error {
	if os.Getpid() != 1 {
		return errors.New("not PID 1 of a new PID namespace")
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := mountProc(); err != nil {
		return err
	}
	dropOtherNetns()
	dropMachineSprite()
	for _, m := range hostMounts(dir) {
		if err := m.mount(); err != nil {
			return err
		}
	}
	if err := mountSys(); err != nil {
		fmt.Fprintf(os.Stderr, "lab _hostinit %s: keeping the machine's /sys: %v\n", name, err)
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	return nil
}

func mountProc() error {
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return nil
}

// dropOtherNetns detaches the copies of /run/netns/* bind mounts this mount
// namespace inherited, so the host holds no other host's netns alive.
func dropOtherNetns() {
	for _, m := range mountPoints("/proc/self/mountinfo") {
		if strings.HasPrefix(m, "/run/netns/") {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	}
}

// dropMachineSprite detaches whatever the machine has mounted on /sprite
// (its own sprite mount, perhaps a dead one) from the host's view: the
// host's daemon mounts its own.
func dropMachineSprite() {
	ms := mountPoints("/proc/self/mountinfo")
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i] == "/sprite" || strings.HasPrefix(ms[i], "/sprite/") {
			_ = unix.Unmount(ms[i], unix.MNT_DETACH)
		}
	}
}

type mount struct {
	src, dst, fstype string
	flags            uintptr
	data             string
}

func (m mount) mount() error {
	if err := unix.Mount(m.src, m.dst, m.fstype, m.flags, m.data); err != nil {
		what := m.fstype
		if m.flags&unix.MS_BIND != 0 {
			what = "bind " + m.src
		}
		return fmt.Errorf("mount %s on %s: %w", what, m.dst, err)
	}
	return nil
}

// hostMounts lists the host's own mounts, in order.
func hostMounts(dir string) []mount {
	const nodev = unix.MS_NOSUID | unix.MS_NODEV
	return []mount{
		{filepath.Join(dir, "home"), "/home", "", unix.MS_BIND, ""},
		{filepath.Join(dir, "state"), "/var/lib/sprite", "", unix.MS_BIND, ""},
		{filepath.Join(dir, "tmp"), "/tmp", "", unix.MS_BIND, ""},
		{"tmpfs", "/run/sprite", "tmpfs", nodev, "mode=0755"},
		{"tmpfs", "/dev/shm", "tmpfs", nodev, "mode=1777"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{"/dev/pts/ptmx", "/dev/ptmx", "", unix.MS_BIND, ""},
	}
}

// mountSys mounts a sysfs that shows the host's own network devices on
// /sys, with the machine's cgroup file systems bound back in.
func mountSys() error {
	tmp := "/run/sprite/.sys"
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	defer os.Remove(tmp)
	steps := []mount{
		{"sysfs", tmp, "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"/sys/fs/cgroup", tmp + "/fs/cgroup", "", unix.MS_BIND | unix.MS_REC, ""},
		{tmp, "/sys", "", unix.MS_MOVE, ""},
	}
	for i, m := range steps {
		if err := m.mount(); err != nil {
			if i > 0 {
				_ = unix.Unmount(tmp, unix.MNT_DETACH)
			}
			return err
		}
	}
	return nil
}
