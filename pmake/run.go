package pmake

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"sprite/api"
	"sprite/internal/term"
	"sprite/migrate/rexec"
)

// ShellFlags is the .SHELLFLAGS pmake gives make. Make expands it for each
// recipe line in the context of the target being made, so the job shell
// learns the target ($@, for --stats) and whether it is in PMAKE_NOEXPORT;
// make's $(shell ...) while it reads the makefiles expands $@ to nothing.
const ShellFlags = "--job-shell --target='$@' $(if $(filter $(PMAKE_NOEXPORT),$@),--home) -c"

const usage = `Usage: pmake [-j N] [-L N] [--stats] [make options] [targets]
GNU make with every recipe line on an idle host of the sprite cluster.
  -j N, --jobs=N    jobs at once (default: the idle hosts' slots + this host's CPUs,
                    the largest first)
  -L N, --local=N   at most N jobs at home (make's -L is --check-symlink-times)
  --stats           after the build: each job's host, time and status (stderr)
  --export-links    links and archives (cc -o without -c, ld, ar, ranlib) run on
                    idle hosts too; by default they stay home (PMAKE_EXPORT_LINKS=1)
  PMAKE_NOEXPORT=T  targets (make patterns) whose recipes stay home
pmake passes -Otarget unless -O is given. GNU make's own options follow.

`

// Main is pmake: it runs GNU make with every recipe line going through the
// job shell, and returns the exit status to exit with.
func Main(args []string) int {
	o, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pmake: %v\n", err)
		return 2
	}
	for _, a := range args {
		if a == "--help" || a == "-h" {
			fmt.Print(usage)
			break
		}
	}
	code, err := run(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pmake: %v\n", err)
		return 2
	}
	return code
}

func run(o Options) (int, error) {
	makeName := os.Getenv(EnvMake)
	if makeName == "" {
		makeName = "make"
	}
	if _, err := exec.LookPath(makeName); err != nil {
		return 0, fmt.Errorf("find %s: %w (pmake runs GNU make: apt-get install make)", makeName, err)
	}
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the pmake binary: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return 0, fmt.Errorf("working directory: %w", err)
	}
	dir := wd
	if o.Dir != "" {
		dir = o.Dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(wd, dir)
		}
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	hostname, _ := os.Hostname()
	run, err := os.MkdirTemp("", "pmake-")
	if err != nil {
		return 0, fmt.Errorf("make the run directory: %w", err)
	}
	defer os.RemoveAll(run)
	if err := os.Mkdir(filepath.Join(run, slotsDir), 0o700); err != nil {
		return 0, fmt.Errorf("make the run directory: %w", err)
	}
	socket := os.Getenv(EnvSocket)
	if socket == "" {
		socket = rexec.DefaultSocket
	}

	cpus := runtime.NumCPU()
	var sess *session
	if !o.DryRun {
		sess, cpus = startSession(socket, run, dir, o.Jobs, cpus)
	}
	defer func() { sess.close() }()
	jobs := o.Jobs
	var q *queue
	if jobs == 0 {
		jobs = sess.slots() + cpus
		if s, home := sess, cpus; s != nil && o.Local < 0 {
			// Largest job first (queue.go): make starts a window of
			// jobs, and pmake picks which of them run.
			if q, err = openQueue(run, func() capacity { return capacity{remote: s.slots(), home: home} }); err != nil {
				fmt.Fprintf(os.Stderr, "pmake: %v: jobs run in make's order\n", err)
			} else {
				jobs = Window(jobs)
			}
		}
	}
	defer q.close()

	margs := append([]string(nil), o.MakeArgs...)
	switch {
	case o.DryRun:
		// Nothing will run but recursive makes: make exactly as asked,
		// so that -n, -q, -p print what make prints.
		if o.Jobs > 0 {
			margs = append(margs, "-j"+strconv.Itoa(o.Jobs))
		}
		if o.Shell != "" {
			margs = append(margs, "SHELL="+o.Shell)
		}
	default:
		margs = append(margs, "-j"+strconv.Itoa(jobs))
		if !o.OutputSync {
			margs = append(margs, "-Otarget")
		}
		margs = append(margs, "SHELL="+self, ".SHELLFLAGS="+ShellFlags)
	}
	env := append(os.Environ(), EnvRun+"="+run, EnvHost+"="+hostname, EnvMake+"="+makeName)
	if sess != nil {
		env = append(env, EnvSession+"="+sess.id)
	} else {
		env = append(env, EnvSession+"=")
	}
	if o.Local >= 0 {
		env = append(env, EnvLocal+"="+strconv.Itoa(o.Local))
	}
	if o.ExportLinks {
		env = append(env, EnvExportLinks+"=1")
	}
	if q != nil {
		env = append(env, EnvQueue+"=1")
	}
	if o.Shell != "" {
		env = append(env, EnvShell+"="+o.Shell)
	}

	cmd := exec.Command(makeName, margs...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var status *statusLine
	var copies sync.WaitGroup
	var pipeW *os.File
	if term.IsTerminal(os.Stderr) && !o.DryRun {
		// Make's output passes through the status line. Its stdout too
		// when that is the same terminal (one pipe keeps the order).
		status = newStatusLine(os.Stderr)
		pr, pw, err := os.Pipe()
		if err != nil {
			return 0, fmt.Errorf("pipe for make's output: %w", err)
		}
		cmd.Stderr, pipeW = pw, pw
		if sameFile(1, 2) {
			cmd.Stdout = pw
		}
		copies.Go(func() { io.Copy(status, pr); pr.Close() })
	}

	sigs := make(chan os.Signal, 4)
	for _, s := range forwarded {
		if !signal.Ignored(s) {
			signal.Notify(sigs, s)
		}
	}
	defer signal.Stop(sigs)
	start := time.Now()
	err = cmd.Start()
	if pipeW != nil {
		pipeW.Close() // make holds it now; the copy ends when make's copies close
	}
	if err != nil {
		copies.Wait()
		return 0, fmt.Errorf("start %s: %w", makeName, err)
	}
	exited := make(chan struct{})
	interrupted := make(chan syscall.Signal, 1) // the terminal's last SIGINT or SIGQUIT
	go func() {
		// SIGINT and SIGQUIT from a terminal reach make and the jobs
		// directly; a signal sent to pmake alone is passed to make.
		var got syscall.Signal
		defer func() { interrupted <- got }()
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGTERM || s == syscall.SIGHUP {
					cmd.Process.Signal(s)
				} else {
					got = s.(syscall.Signal)
				}
			case <-exited:
				return
			}
		}
	}()
	if status != nil {
		go showProgress(status, sess, run, exited)
	}
	werr := cmd.Wait()
	close(exited)
	wall := time.Since(start)
	copies.Wait() // make's last words, before the stats
	if status != nil {
		status.clear()
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return 0, fmt.Errorf("%s: %w", makeName, werr)
	}
	sess.close()
	sess = nil
	if o.Stats {
		recs, _ := readRecords(filepath.Join(run, eventsFile))
		WriteStats(os.Stderr, Jobs(recs), start, wall)
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if sig := interruptedBy(ws, <-interrupted, sigs); sig != 0 {
		os.RemoveAll(run)
		return dieBy(sig), nil
	}
	return ws.ExitStatus(), nil
}

// interruptedBy says which signal pmake dies by after make ended with ws:
// the one that killed make, or the terminal's SIGINT or SIGQUIT (got, or
// one still queued in sigs) when make failed after it. GNU make 4.3 at
// times loses a race with its children's deaths after a ^C and exits 2
// ("wait: No child processes. Stop."); the shell that ran pmake must still
// see death by SIGINT, or a script goes on to its next command.
func interruptedBy(ws syscall.WaitStatus, got syscall.Signal, sigs <-chan os.Signal) syscall.Signal {
	if ws.Signaled() {
		return ws.Signal()
	}
	for more := true; more; {
		select {
		case s := <-sigs:
			if s == syscall.SIGINT || s == syscall.SIGQUIT {
				got = s.(syscall.Signal)
			}
		default:
			more = false
		}
	}
	if got != 0 && ws.ExitStatus() != 0 {
		return got
	}
	return 0
}

// startSession decides where the build may go and opens the session: no
// daemon, a directory outside the global namespace or a failing session
// each mean one line on stderr and a build at home. It returns the session
// (nil for none) and this host's CPUs.
func startSession(socket, run, dir string, jobs, cpus int) (*session, int) {
	home, err := localCPUs(socket)
	if err != nil {
		if errors.Is(err, api.ErrNoDaemon) {
			fmt.Fprintln(os.Stderr, "pmake: no sprite daemon on this host: building here only")
		} else {
			fmt.Fprintf(os.Stderr, "pmake: ask the sprite daemon: %v: building here only\n", err)
		}
		return nil, cpus
	}
	cpus = home.cpus
	if in, ok := inNamespace(socket, home.name, dir); ok && !in {
		fmt.Fprintf(os.Stderr, "pmake: %s is not in the global namespace (no directory %s exports holds it; see `sprite exports`): building here only\n", dir, home.name)
		return nil, cpus
	}
	n := wantHosts
	if jobs > 0 {
		n = jobs
	}
	s, err := openSession(socket, run, home.name, n)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pmake: no idle hosts (%v): building here only\n", err)
		return nil, cpus
	}
	return s, cpus
}

// showProgress redraws the status line from the job shells' records until
// make exits.
func showProgress(st *statusLine, sess *session, run string, exited <-chan struct{}) {
	t := &tail{path: filepath.Join(run, eventsFile)}
	p := newProgress()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return
		case <-tick.C:
			p.add(t.read())
			st.set(p.text(len(sess.Hosts())))
		}
	}
}
