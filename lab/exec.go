package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Command returns a command that runs argv in host as user ("" for root),
// with the host's PATH, HOME/USER/LOGNAME of the user, and the user's home as
// working directory if it exists in the host (else /). argv[0] is looked up
// in the host's PATH. Append to cmd.Env to pass more variables. An unknown
// host or user makes cmd.Start fail with a clear error.
//
// Killing the returned process (nsenter) does not kill the command inside the
// host; use CommandContext for that.
func (l *Lab) Command(host, user string, argv ...string) *exec.Cmd {
	args, env, err := l.enterArgs(host, user, argv)
	if err != nil {
		return &exec.Cmd{Path: SpriteBin, Args: append([]string{SpriteBin}, argv...), Err: err}
	}
	cmd := exec.Command(SpriteBin, args...)
	cmd.Env = env
	return cmd
}

// CommandContext is Command in its own process group; when ctx is done the
// whole group, the command inside the host included, gets SIGKILL.
func (l *Lab) CommandContext(ctx context.Context, host, user string, argv ...string) *exec.Cmd {
	cmd := l.Command(host, user, argv...)
	if cmd.Err != nil {
		return cmd
	}
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env = cmd.Env
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	return c
}

// enterArgs builds `lab _enter --cgroup C -- nsenter ... [setpriv ...] -- argv`.
func (l *Lab) enterArgs(host, user string, argv []string) ([]string, []string, error) {
	if len(argv) == 0 {
		return nil, nil, errors.New("lab exec: no command given")
	}
	h, err := l.Host(host)
	if err != nil {
		return nil, nil, err
	}
	if !isHostInit(h.InitPID, h.Name) {
		return nil, nil, fmt.Errorf("host %s is down (its init, pid %d, is gone); run `sprite lab down` and `sprite lab up` again", h.Name, h.InitPID)
	}
	id, err := lookupUser(user)
	if err != nil {
		return nil, nil, err
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, nil, fmt.Errorf("lab exec: %w; install util-linux", err)
	}
	args := []string{"lab", "_enter", "--cgroup", h.Cgroup, "--", nsenter,
		"-t", strconv.Itoa(h.InitPID), "-n", "-m", "-u", "-p", "--wd=" + workDir(h, id.home), "--"}
	if id.uid != 0 {
		args = append(args, "setpriv", "--reuid="+strconv.Itoa(id.uid), "--regid="+strconv.Itoa(id.gid), "--init-groups", "--")
	}
	return append(args, argv...), hostEnv(id.name, id.home), nil
}

type userID struct {
	name, home string
	uid, gid   int
}

// lookupUser finds a user by name or uid in the machine's (= every host's)
// /etc/passwd; "" is root.
func lookupUser(name string) (userID, error) {
	if name == "" {
		name = "root"
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return userID{}, fmt.Errorf("lab exec: unknown user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return userID{name: u.Username, home: u.HomeDir, uid: uid, gid: gid}, nil
}

// workDir is the user's home if it exists inside host h, else /, as a path
// that nsenter can open before it enters the host's mount namespace (it
// opens --wd there): /proc/INIT/root/HOME. After entering, the working
// directory is HOME inside the host.
func workDir(h *Host, home string) string {
	root := filepath.Join("/proc", strconv.Itoa(h.InitPID), "root")
	if home == "" {
		return root + "/"
	}
	fi, err := os.Stat(filepath.Join(root, home))
	if err != nil || !fi.IsDir() {
		return root + "/"
	}
	return filepath.Join(root, home)
}

// Enter is `sprite lab _enter --cgroup DIR -- PROGRAM ARGS`: it moves itself
// into cgroup DIR and executes PROGRAM (nsenter), so that everything run in a
// host from the machine is charged to the host.
func Enter(cgroup string, argv []string) error {
	if len(argv) == 0 {
		return errors.New("lab _enter: no program")
	}
	if err := joinCgroup(cgroup, os.Getpid()); err != nil {
		return fmt.Errorf("lab _enter: %w", err)
	}
	err := syscall.Exec(argv[0], argv, os.Environ())
	return fmt.Errorf("lab _enter: exec %s: %w", argv[0], err)
}

// ExitStatus is the shell's view of how a command ended: its exit code, or
// 128+signal when a signal killed it. ok is false for errors that are not
// about the command's end (it did not start, say).
func ExitStatus(err error) (code int, ok bool) {
	if err == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, false
	}
	if ws, isWS := ee.Sys().(syscall.WaitStatus); isWS && ws.Signaled() {
		return 128 + int(ws.Signal()), true
	}
	return ee.ExitCode(), true
}
