package migrate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sprite/wire"
)

// The job init: a helper process between the daemon and each job.
//
// The daemon serves the FUSE mount at /sprite, and a FUSE server deadlocks
// if it forks with its working directory on its own mount or execs a binary
// that lives there. So the daemon never does either: it starts
// `sprite _jobinit` with cwd "/" in a private mount namespace, and that
// helper, a process of its own, joins the job's cgroups, binds home's
// exported directories, lowers its priority, becomes the user, changes to
// the job's directory and execs the job, which keeps the helper's pid.
//
// Descriptors of the helper: 0-2 the job's stdio, 3 the JobInit (CBOR,
// read to EOF), 4 the status pipe (close-on-exec: EOF without a byte means
// the exec succeeded; one line means it failed, and the helper exits 127).

const (
	// JobInitCommand is the hidden subcommand that runs RunJobInit.
	JobInitCommand = "_jobinit"
	// ExitSetupFailed is the helper's exit status when it could not start
	// the job (also for a program that was not found).
	ExitSetupFailed = 127

	configFD = 3
	statusFD = 4
	// maxConfig bounds the JobInit the helper reads.
	maxConfig = 16 << 20
	// defaultPath is searched when the job's environment has no PATH (as
	// glibc's execvp does).
	defaultPath = "/bin:/usr/bin"

	// ioprio_set(2), linux/ioprio.h.
	ioprioWhoProcess = 1
	ioprioClassIdle  = 3
	ioprioClassShift = 13
)

// resetSignals are caught during setup, so that the job starts with their
// default action even where the daemon was started with them ignored (a
// caught signal is reset to its default by exec; an ignored one would stay
// ignored), and so that one sent to the job before it exists is not lost.
var resetSignals = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGPIPE, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM,
	syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU}

// JobInit is what the helper does, in order: join the cgroups Procs, bind
// the Spec's Mounts (MountRoot+Prefix on Path) in its private mount
// namespace, set Nice and SCHED_IDLE, start a session (with Spec.Tty: make
// fd 0 its controlling terminal, of that size), set the umask, become
// Spec's user (uid 0 only with AllowRoot), change to Spec.Dir, look up
// Argv[0] in Spec.Env's PATH and exec it with Spec.Env.
type JobInit struct {
	Spec      Spec     // the job: uid, gid, groups, argv, env, dir, umask, tty, mounts
	MountRoot string   // where the global namespace is mounted on this host, e.g. "/sprite"
	Procs     []string // cgroup.procs files to join first (JobCgroup.Procs)
	Nice      int      // e.g. 19
	Idle      bool     // SCHED_IDLE (best effort)
	AllowRoot bool     // else a job with uid 0 is refused
}

// StartJobInit starts the helper `self _jobinit` (self is the sprite
// binary, normally /proc/self/exe; a test binary whose TestMain runs
// RunJobInit when its first argument is "_jobinit" works too) with cwd
// "/", its own mount namespace, stdin, stdout and stderr as fds 0-2 (a
// pty slave for a terminal), and returns the started command once the job's
// exec succeeded: its Process is the job (the caller Waits for it). When
// the helper failed to set up or exec the job it returns the helper's error
// and has reaped it. It blocks while the helper sets up, which may include
// file system calls through MountRoot.
func StartJobInit(self string, ji JobInit, stdin, stdout, stderr *os.File) (*exec.Cmd, error) {
	cmd, err := startJobInit(self, ji, stdin, stdout, stderr)
	if err != nil {
		host, _ := os.Hostname()
		return nil, fmt.Errorf("start job %s on %s: %w", ji.Spec.ID, host, err)
	}
	return cmd, nil
}

func startJobInit(self string, ji JobInit, stdin, stdout, stderr *os.File) (*exec.Cmd, error) {
	cfg, err := wire.Marshal(ji)
	if err != nil {
		return nil, err
	}
	// The config goes in a memfd: no pipe to fill, no writer goroutine.
	mfd, err := unix.MemfdCreate("sprite-jobinit", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd for the job's config: %w", err)
	}
	cfgFile := os.NewFile(uintptr(mfd), "jobinit-config")
	defer cfgFile.Close()
	if _, err := cfgFile.Write(cfg); err != nil {
		return nil, fmt.Errorf("write the job's config: %w", err)
	}
	if _, err := cfgFile.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("write the job's config: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("status pipe: %w", err)
	}
	defer statusR.Close()
	cmd := &exec.Cmd{
		Path:       self,
		Args:       []string{self, JobInitCommand},
		Env:        jobInitEnv,
		Dir:        "/",
		Stdin:      stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		ExtraFiles: []*os.File{cfgFile, statusW},
		SysProcAttr: &syscall.SysProcAttr{
			Unshareflags: syscall.CLONE_NEWNS,
		},
	}
	err = cmd.Start()
	statusW.Close()
	if err != nil {
		return nil, fmt.Errorf("run helper %s: %w", self, err)
	}
	msg, rerr := io.ReadAll(io.LimitReader(statusR, 4096))
	if len(msg) == 0 && rerr == nil {
		return cmd, nil // the exec closed the status pipe
	}
	_ = cmd.Process.Kill()
	werr := cmd.Wait()
	if len(msg) == 0 {
		return nil, fmt.Errorf("read the helper's status: %v (helper: %v)", rerr, werr)
	}
	return nil, errors.New(strings.TrimSpace(string(msg)))
}

// RunJobInit is the helper's main (`sprite _jobinit`): it sets up the job
// described on fd 3 and execs it, so it never returns on success. On
// failure it writes the error as one line to the status pipe (fd 4; stderr
// when there is none) and returns it: the caller then exits with
// ExitSetupFailed.
func RunJobInit() error {
	// Nice and the scheduling policy belong to a thread; the thread that
	// sets them must be the one that execs.
	runtime.LockOSThread()
	sigs := make(chan os.Signal, len(resetSignals))
	signal.Notify(sigs, resetSignals...)
	if slices.Contains(os.Args[1:], spareArg) {
		return runSpare(sigs)
	}
	status := os.NewFile(statusFD, "status")
	if _, err := unix.FcntlInt(statusFD, unix.F_GETFD, 0); err != nil {
		status = os.Stderr
	} else {
		syscall.CloseOnExec(statusFD)
	}
	err := runJobInit(sigs)
	fmt.Fprintf(status, "%s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	return err
}

func runJobInit(sigs <-chan os.Signal) error {
	ji, err := readJobInit()
	if err != nil {
		return err
	}
	return setupAndExec(ji, sigs)
}

// setupAndExec sets the job up as JobInit says and execs it.
func setupAndExec(ji JobInit, sigs <-chan os.Signal) error {
	host, _ := os.Hostname()
	s := &ji.Spec
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return errors.New("the job has no command (empty argv)")
	}
	for _, p := range ji.Procs {
		if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", filepath.Dir(p), err)
		}
	}
	if err := bindMounts(ji.MountRoot, s.Mounts); err != nil {
		return err
	}
	if ji.Nice != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, ji.Nice); err != nil {
			return fmt.Errorf("set nice %d: %w", ji.Nice, err)
		}
	}
	if ji.Idle {
		// Best effort: a kernel without SCHED_IDLE leaves the job at nice.
		// sched_setattr sets the nice value too.
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE, Nice: int32(ji.Nice)}, 0)
		// And the idle I/O class: disk time only when nobody else wants it.
		_, _, _ = unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, ioprioClassIdle<<ioprioClassShift)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if s.Tty != nil {
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
			return fmt.Errorf("make stdin the controlling terminal: %w (is fd 0 a pty slave?)", err)
		}
		if err := unix.IoctlSetWinsize(0, unix.TIOCSWINSZ, &unix.Winsize{Row: s.Tty.Rows, Col: s.Tty.Cols}); err != nil {
			return fmt.Errorf("set the terminal's size: %w", err)
		}
	}
	syscall.Umask(int(s.Umask & 0o777))
	if s.UID == 0 && !ji.AllowRoot {
		return fmt.Errorf("refusing to run a job as root (uid 0) on host %s: this host does not accept foreign root jobs", host)
	}
	groups := make([]int, len(s.Groups))
	for i, g := range s.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("set groups %v: %w", s.Groups, err)
	}
	if err := syscall.Setgid(int(s.GID)); err != nil {
		return fmt.Errorf("set gid %d: %w", s.GID, err)
	}
	if err := syscall.Setuid(int(s.UID)); err != nil {
		return fmt.Errorf("set uid %d: %w", s.UID, err)
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	if err := syscall.Chdir(dir); err != nil {
		return fmt.Errorf("working directory %s: %v on host %s", dir, err, host)
	}
	path, err := lookPath(s.Argv[0], s.Env)
	if err != nil {
		return err
	}
	select {
	case sig := <-sigs:
		if sig != syscall.SIGTSTP && sig != syscall.SIGTTIN && sig != syscall.SIGTTOU && sig != syscall.SIGPIPE {
			return fmt.Errorf("interrupted by %v before the job started", sig)
		}
	default:
	}
	closeFDs()
	for try := 0; ; try++ {
		err = syscall.Exec(path, s.Argv, s.Env)
		// A binary just written elsewhere may still be open for writing
		// for a moment (ETXTBSY).
		if err != syscall.ETXTBSY || try >= 20 {
			break
		}
		time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
	}
	return fmt.Errorf("exec %s: %w", path, err)
}

func readJobInit() (JobInit, error) {
	var ji JobInit
	f := os.NewFile(configFD, "config")
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	f.Close()
	if err != nil {
		return ji, fmt.Errorf("read the job's config on fd %d: %w (sprite %s is started by the daemon only)", configFD, err, JobInitCommand)
	}
	if len(b) > maxConfig {
		return ji, fmt.Errorf("the job's config is over %d bytes", maxConfig)
	}
	if err := wire.Unmarshal(b, &ji); err != nil {
		return ji, fmt.Errorf("read the job's config: %w", err)
	}
	return ji, nil
}

// bindMounts makes the mount namespace private and binds root+Prefix on
// Path for each mount, shallow paths first so deeper ones land on top.
func bindMounts(root string, mounts []Mount) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if len(mounts) == 0 {
		return nil
	}
	if !cleanAbs(root) {
		return fmt.Errorf("mount root %q is not a clean absolute path", root)
	}
	ms := append([]Mount(nil), mounts...)
	sort.SliceStable(ms, func(a, b int) bool {
		return strings.Count(ms[a].Path, "/") < strings.Count(ms[b].Path, "/")
	})
	for _, m := range ms {
		if !cleanAbs(m.Prefix) || !cleanAbs(m.Path) {
			return fmt.Errorf("mount %q on %q: prefix and path must be clean absolute paths", m.Prefix, m.Path)
		}
		if m.Path == "/" {
			return fmt.Errorf("mount %s on /: a home's directory goes on its own path, not on /", m.Prefix)
		}
		src := filepath.Join(root, m.Prefix)
		if _, err := os.Stat(m.Path); err != nil {
			return fmt.Errorf("mount %s on %s: the directory does not exist on this host (%v); create it here to run jobs that use it",
				src, m.Path, err)
		}
		if err := unix.Mount(src, m.Path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", src, m.Path, err)
		}
	}
	return nil
}

func cleanAbs(p string) bool { return filepath.IsAbs(p) && filepath.Clean(p) == p }

// lookPath finds the program like exec.LookPath, with PATH from env and
// relative names relative to the current directory (the job's).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return name, nil
	}
	path, ok := defaultPath, false
	for i := len(env) - 1; i >= 0 && !ok; i-- {
		if v, found := strings.CutPrefix(env[i], "PATH="); found {
			path, ok = v, true
		}
	}
	var denied error
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		if !filepath.IsAbs(p) && !strings.HasPrefix(p, ".") {
			p = "./" + p
		}
		err := executable(p)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, syscall.EACCES) && denied == nil {
			denied = fmt.Errorf("%s: %w", p, err)
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("%s: command not found (PATH=%s)", name, path)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return syscall.EISDIR
	}
	if err := unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return err
	}
	return nil
}

// closeFDs marks every descriptor above 2 close-on-exec (the status pipe
// is already), so the job inherits only its stdio.
func closeFDs() {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
