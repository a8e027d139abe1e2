package lab

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// Command returns a command that runs argv in host as user ("" for root),
// with the host's PATH, HOME/USER/LOGNAME of the user, and the user's home as
// working directory if it exists in the host (else /). argv[0] is looked up
// in the host's PATH. Append to cmd.Env to pass more variables. An unknown
// host or user makes cmd.Start fail with a clear error.
//
// The returned process passes SIGTERM and SIGHUP on to the command inside
// the host; SIGKILL would kill only the process, not the command: use
// CommandContext for that.
func (l *Lab) Command(host, user string, argv ...string) *exec.Cmd {
	args, env, err := l.enterArgs(host, user, argv)
	if err != nil {
		return &exec.Cmd{Path: "nsenter", Args: append([]string{"nsenter"}, argv...), Err: err}
	}
	cmd := exec.Command(nsenterPath, args...)
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

// nsenterPath is where nsenter(1) is, "" if nowhere.
var nsenterPath, _ = exec.LookPath("nsenter")

// enterArgs builds the arguments of `nsenter -t INIT -n -m -u -- sprite lab
// _run --cgroup C --user U -- argv`.
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
	if nsenterPath == "" {
		return nil, nil, errors.New("lab exec: no nsenter in PATH; install util-linux")
	}
	args := []string{"-t", strconv.Itoa(h.InitPID), "-n", "-m", "-u", "--",
		SpriteBin, "lab", "_run", "--cgroup", h.Cgroup, "--user", id.name, "--"}
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
