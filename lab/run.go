package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Run is `sprite lab _run --cgroup C --user U -- CMD ARGS`, the last step
// of a command into a host. nsenter has already put it into the host's
// network, mount and UTS namespaces; Run joins cgroup C (the host's), enters
// the host's PID namespace for its child (a Go program cannot enter a mount
// namespace, but it can this), starts CMD there as user U in U's home (or
// /), waits, and ends the way CMD ended (exit code, or death by the same
// signal).
//
// It stays in the terminal's process group: SIGINT and SIGQUIT from the
// terminal reach CMD directly, so Run ignores them; SIGTERM and SIGHUP it
// passes on to CMD. (nsenter -p would be the waiting parent instead, and die
// of the terminal's SIGINT while CMD, if it handles SIGINT, runs on.)
func Run(cgroup, name string, argv []string) error {
	if len(argv) == 0 {
		return errors.New("lab _run: no command")
	}
	if err := joinCgroup(cgroup, os.Getpid()); err != nil {
		return fmt.Errorf("lab _run: %w", err)
	}
	runtime.LockOSThread() // setns(PID) holds for this thread's children only
	if err := enterPIDNamespace("/proc/1/ns/pid"); err != nil {
		return fmt.Errorf("lab _run: %w", err)
	}
	cmd, err := runCommand(name, argv)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "sprite lab exec: %v\n", err)
		os.Exit(127)
	}
	go forward(sigs, cmd.Process)
	_ = cmd.Wait()
	endLike(cmd.ProcessState)
	return nil
}

// enterPIDNamespace makes this thread's future children members of the PID
// namespace at path (in the host, /proc is the host's: PID 1 is its init).
func enterPIDNamespace(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWPID); err != nil {
		return fmt.Errorf("enter the PID namespace of %s: %w", path, err)
	}
	return nil
}

// runCommand is argv as user name, in the user's home if it exists.
func runCommand(name string, argv []string) (*exec.Cmd, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("lab _run: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if errors.Is(cmd.Err, exec.ErrNotFound) {
		fmt.Fprintf(os.Stderr, "sprite lab exec: %s: command not found\n", argv[0])
		os.Exit(127)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Dir = "/"
	if fi, err := os.Stat(u.HomeDir); err == nil && fi.IsDir() {
		cmd.Dir = u.HomeDir
	}
	cred, err := credential(u)
	if err != nil {
		return nil, fmt.Errorf("lab _run: user %s: %w", name, err)
	}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd, nil
}

// credential is u's uid, gid and groups; nil for root.
func credential(u *user.User) (*syscall.Credential, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil || uid == 0 {
		return nil, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	var groups []uint32
	for _, g := range ids {
		if n, err := strconv.Atoi(g); err == nil {
			groups = append(groups, uint32(n))
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}

// forward passes SIGTERM and SIGHUP on to p; the terminal's SIGINT and
// SIGQUIT have reached it already.
func forward(sigs chan os.Signal, p *os.Process) {
	for s := range sigs {
		if s == syscall.SIGTERM || s == syscall.SIGHUP {
			_ = p.Signal(s)
		}
	}
}

// endLike ends this process the way the child ended.
func endLike(ps *os.ProcessState) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		os.Exit(ps.ExitCode())
	}
	sig := ws.Signal()
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig)
	time.Sleep(100 * time.Millisecond) // a signal that does not kill: say so
	os.Exit(128 + int(sig))
}
