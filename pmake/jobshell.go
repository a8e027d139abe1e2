package pmake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sprite/internal/term"
	"sprite/migrate/rexec"
)

// The environment pmake gives make, and make its job shells.
const (
	EnvRun     = "PMAKE_RUN"     // the run directory (events, hosts, slots)
	EnvSession = "PMAKE_SESSION" // the session id; "" builds at home
	EnvHost    = "PMAKE_HOST"    // the home's host name
	EnvLocal   = "PMAKE_LOCAL"   // -L N; absent: no cap
	EnvMake    = "PMAKE_MAKE"    // the make program pmake runs
	EnvShell   = "PMAKE_SHELL"   // the shell recipe lines run under (default /bin/sh)
	EnvSocket  = "PMAKE_SOCKET"  // the daemon's socket, for tests ("" is the default)
	EnvQueue   = "PMAKE_QUEUE"   // "1": take a ticket from RUN/queue first (queue.go)
	// EnvExportLinks set (to anything but "" or "0") exports links and
	// archives too (--export-links; linkstep.go).
	EnvExportLinks = "PMAKE_EXPORT_LINKS"
)

// JobShellFlag is the first argument of a job shell.
const JobShellFlag = "--job-shell"

// IsJobShell reports whether args (os.Args) are a job shell's: make runs
// $(SHELL) $(.SHELLFLAGS) LINE, and pmake's .SHELLFLAGS begin with
// --job-shell, which is no make option.
func IsJobShell(args []string) bool { return len(args) > 1 && args[1] == JobShellFlag }

// killGrace is how long a job has to end after a forwarded signal before
// it is killed.
const killGrace = 5 * time.Second

// jobArgs is a job shell's command line:
// SELF --job-shell --target=T [--home] [SHELL FLAGS...] -c LINE [ARGS...]
type jobArgs struct {
	self, target, line string
	home, hasTarget    bool
	shFlags, extra     []string
}

func parseJobArgs(args []string) (jobArgs, error) {
	j := jobArgs{self: args[0]}
	i := 2
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--target="):
			j.target, j.hasTarget = a[len("--target="):], true
		case a == "--home":
			j.home = true
		case a == "-c":
			if i+1 >= len(args) {
				return j, errors.New("-c without a command line")
			}
			j.line, j.extra = args[i+1], args[i+2:]
			return j, nil
		default:
			j.shFlags = append(j.shFlags, a)
		}
	}
	return j, errors.New("no -c: the job shell runs only make's recipe lines")
}

// JobShell runs one recipe line for make and returns its exit status, or
// ends this process by the signal that ended the job. recursive is
// JobserverInherited's verdict, taken first thing in main.
func JobShell(args []string, recursive bool) int {
	j, err := parseJobArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pmake job shell: %v\n", err)
		return 2
	}
	shell := os.Getenv(EnvShell)
	if shell == "" {
		shell = "/bin/sh"
	}
	line := ReplaceShell(StripOneShell(j.line), j.self, shell)
	if line == ":" {
		return 0 // make's own shortcut for a Bourne shell
	}
	argv := append(append(append([]string{shell}, j.shFlags...), "-c", line), j.extra...)
	if simple := SimpleArgv(line); simple != nil && len(j.shFlags) == 0 && len(j.extra) == 0 && shell == "/bin/sh" {
		argv = simple // what make itself would exec without a shell
	}
	run := os.Getenv(EnvRun)
	hostname, _ := os.Hostname()
	switch {
	case run == "" || os.Getenv(EnvHost) != hostname:
		// Not under a pmake on this host (a make inside a remote job,
		// or $(SHELL) run by hand): be the shell.
		return execShell(argv)
	case recursive || RunsMake(line, os.Getenv(EnvMake)):
		return execShell(argv) // a recursive make stays home, with the jobserver
	case !j.hasTarget || j.target == "":
		return execShell(argv) // $(shell ...) while make reads the makefiles
	}
	if _, err := os.Stat(run); err != nil {
		return execShell(argv)
	}
	js := &jobShell{run: run, target: j.target, argv: argv, line: line,
		id: fmt.Sprintf("%d.%d", os.Getpid(), time.Now().UnixNano())}
	return js.main(j.home)
}

// execShell replaces this process by the line's command (the shell, or the
// command itself for a simple line): every descriptor make gave us (the
// jobserver's included) stays open, and make sees the command's own exit.
func execShell(argv []string) int {
	path, err := exec.LookPath(argv[0])
	if err == nil {
		err = syscall.Exec(path, argv, os.Environ())
	}
	notFound(argv[0], err)
	return 127
}

// notFound says, as make does, that a command could not be run.
func notFound(name string, err error) {
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	if errors.Is(err, exec.ErrNotFound) {
		err = syscall.ENOENT
	}
	mk := os.Getenv(EnvMake)
	if mk == "" {
		mk = "make"
	}
	msg := err.Error()
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:] // as strerror(3) says it
	}
	fmt.Fprintf(os.Stderr, "%s: %s: %s\n", filepath.Base(mk), name, msg)
}

type jobShell struct {
	run, target, line, id string
	argv                  []string
	start                 time.Time
}

func (js *jobShell) record(r Record) {
	r.Job, r.Target = js.id, js.target
	appendRecord(filepath.Join(js.run, eventsFile), r) // stats only: a lost record is no failure
}

func (js *jobShell) main(home bool) int {
	session := os.Getenv(EnvSession)
	why, homeTicket := "", false
	switch {
	case home:
		why = "PMAKE_NOEXPORT"
	case session == "":
		why = "no session"
	case os.Getenv(EnvLocal) == "" && !exportLinks() && IsLinkStep(js.line):
		why = "a link (--export-links)"
	}
	if v := os.Getenv(EnvLocal); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			slot := AcquireSlot(js.run, n)
			defer slot.Release()
			if !slot.Remote && why == "" {
				why = "-L: no free host slot"
			}
		}
	} else if os.Getenv(EnvQueue) == "1" {
		wd, _ := os.Getwd()
		var t net.Conn
		if t, homeTicket = takeTicket(js.run, Estimate(js.line, wd)); t != nil {
			defer t.Close()
		}
	}
	if why == "" && os.Getenv(EnvLocal) == "" {
		// What the daemon would answer, without asking it: a build
		// with no idle host pays no call per job, nor does a job with
		// a home ticket (queue.go: every slot on the hosts is taken).
		switch {
		case len(readHosts(js.run)) == 0:
			why = whyNoHosts
		case homeTicket:
			why = whyHostsBusy
		}
	}
	js.start = time.Now()
	if why != "" {
		return js.runHome(why, nil)
	}
	return js.runRemote(session)
}

// The reasons a job runs at home without asking the daemon, in the
// daemon's words: the session holds no host (RUN/hosts is empty), or the
// job got a home ticket (queue.go).
const (
	whyNoHosts   = "the session holds no idle host"
	whyHostsBusy = "every host of the session is busy"
)

func exportLinks() bool {
	v := os.Getenv(EnvExportLinks)
	return v != "" && v != "0"
}

// signals a job shell passes on to its job.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// notifyForwarded subscribes to the signals to pass on that this process
// does not ignore (make started in the background ignores SIGINT; so does
// its job then).
func notifyForwarded(sigs ...os.Signal) chan os.Signal {
	ch := make(chan os.Signal, 4)
	for _, s := range sigs {
		if !signal.Ignored(s) {
			signal.Notify(ch, s)
		}
	}
	return ch
}

// runHome runs the line here as a child. SIGINT and SIGQUIT from the
// terminal reach the child directly (it is in make's process group); a
// SIGTERM or SIGHUP sent to the job shell alone is passed on.
func (js *jobShell) runHome(why string, h *held) int {
	if h != nil {
		h.reset()
	}
	cmd := exec.Command(js.argv[0], js.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := notifyForwarded(syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		signal.Stop(sigs)
		notFound(js.argv[0], err)
		return 127
	}
	js.record(Record{Kind: "start", Host: Home, Line: short(js.line, 200), At: js.start.UnixNano(), Why: why})
	var gotSig atomic.Int32
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				sig := s.(syscall.Signal)
				gotSig.Store(int32(sig))
				if sig == syscall.SIGTERM || sig == syscall.SIGHUP {
					cmd.Process.Signal(sig)
				}
			case <-done:
				return
			}
		}
	}()
	cmd.Wait()
	close(done)
	signal.Stop(sigs)
	got := syscall.Signal(gotSig.Load())
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	js.end(Home, ws.Signaled(), int(ws.Signal()), ws.ExitStatus())
	if ws.Signaled() {
		return dieBy(ws.Signal())
	}
	if got != 0 {
		return dieBy(got)
	}
	return ws.ExitStatus()
}

func (js *jobShell) end(host string, signaled bool, sig, code int) {
	st := strconv.Itoa(code)
	if signaled {
		st = "sig " + strconv.Itoa(sig)
	}
	js.record(Record{Kind: "end", Host: host, At: time.Now().UnixNano(), Ms: time.Since(js.start).Milliseconds(), Status: st})
}

// runRemote runs the line through the remote-execution API on one of the
// session's hosts (or at home, when the daemon finds none free).
func (js *jobShell) runRemote(session string) int {
	cmd := rexec.CommandContext(context.Background(), js.argv[0], js.argv[1:]...)
	cmd.Env = os.Environ()
	cmd.Stdin = jobStdin()
	cmd.Session = session
	cmd.Policy = "restart"
	cmd.Socket = os.Getenv(EnvSocket)
	var h *held
	if term.IsTerminal(os.Stdout) {
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	} else {
		// Held twice: the home delivers a job's output when it exits (a
		// job it restarts after an eviction prints once), and the job
		// shell holds it too (a job it runs again here prints once).
		h = newHeld()
		cmd.Stdout, cmd.Stderr = h.stdout(), h.stderr()
		cmd.HoldOutput = true
	}
	sigs := notifyForwarded(forwarded...)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "pmake: %v; running it at home\n", err)
		signal.Stop(sigs)
		return js.runHome("start failed", h)
	}
	host, why := cmd.RanOn, ""
	if cmd.Local || host == "" {
		host, why = Home, cmd.LocalReason
	}
	js.record(Record{Kind: "start", Host: host, Line: short(js.line, 200), At: js.start.UnixNano(), Why: why})
	var gotSig atomic.Int32
	done := make(chan struct{})
	go func() {
		var kill <-chan time.Time
		for {
			select {
			case s := <-sigs:
				sig := s.(syscall.Signal)
				gotSig.Store(int32(sig))
				cmd.Signal(sig)
				kill = time.After(killGrace)
			case <-kill:
				cmd.Signal(os.Kill)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	got := syscall.Signal(gotSig.Load())
	var ee *rexec.ExitError
	if err != nil && !errors.As(err, &ee) && got == 0 {
		// Lost (its host died and the home could not rerun it) or the
		// daemon went away: run it again here; its output so far is
		// dropped, so it prints once.
		fmt.Fprintf(os.Stderr, "pmake: %v; running it again at home\n", err)
		signal.Stop(sigs)
		js.start = time.Now()
		return js.runHome("lost on "+host, h)
	}
	if h != nil {
		h.flush()
	}
	if ps := cmd.ProcessState; ps != nil {
		if ran := ps.Host(); ran != "" {
			host = ran
		}
		js.end(host, ps.Signaled(), int(ps.Signal()), ps.ExitCode())
		if ps.Signaled() {
			return dieBy(ps.Signal())
		}
		if got != 0 {
			return dieBy(got)
		}
		return ps.ExitCode()
	}
	js.end(host, got != 0, int(got), -1)
	if got != 0 {
		return dieBy(got)
	}
	fmt.Fprintf(os.Stderr, "pmake: %v\n", err)
	return 2
}

// jobStdin is the job's stdin: none (/dev/null) when make's is a terminal
// or /dev/null, else make's (a pipe or file the user gave make). A job that
// may run on any host must not read the terminal: with -j make itself
// gives a terminal to one job at a time only.
func jobStdin() io.Reader {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice != 0 {
		return nil
	}
	return os.Stdin
}

// dieBy ends this process by sig, as a shell whose command died by sig
// reports it to make; no core file of the job shell. If sig is ignored
// here it returns 128+sig, the shell's exit status for it.
func dieBy(sig syscall.Signal) int {
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	signal.Reset(sig)
	if !signal.Ignored(sig) {
		syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Second)
	}
	return 128 + int(sig)
}
