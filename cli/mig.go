package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sprite/internal/term"
	"sprite/migrate"
)

func init() {
	register("mig", "run a command on an idle host as if it ran here", migMain)
}

// forwarded are the signals `sprite mig` passes to its job.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGTSTP, syscall.SIGCONT}

func migMain(args []string) error {
	fs := flag.NewFlagSet("mig", flag.ContinueOnError)
	host := fs.String("host", "", "run on this `host` instead of one the idle database grants")
	quiet := fs.Bool("quiet", false, "say nothing when the command runs at home")
	policy := fs.String("policy", "", "eviction `policy`: restart (default), wait or checkpoint")
	noTty := fs.Bool("T", false, "no terminal on the target even when stdin and stdout are terminals")
	noStdin := fs.Bool("n", false, "stdin from /dev/null (a job that reads no input can always be rerun elsewhere)")
	usage := fs.Bool("rusage", false, "say on stderr where the job ran and its CPU time and peak memory, as they came home")
	hold := fs.Bool("hold", false, "deliver the job's output when it exits, so that a job rerun after an eviction prints once")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sprite mig [--host H] [--quiet] [--policy P] [-n] [-T] [--hold] -- CMD [ARGS...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError{2}
	}
	cmd := migrate.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if *noStdin {
		cmd.Stdin = nil
	}
	cmd.Host, cmd.Policy, cmd.HoldOutput = *host, *policy, *hold
	if !*quiet {
		cmd.Notices = os.Stderr
	}
	tty := !*noTty && !*noStdin && !*hold && term.IsTerminal(os.Stdin) && term.IsTerminal(os.Stdout)
	if tty {
		ws, err := winsize(os.Stdin)
		if err == nil {
			cmd.Tty = &ws
		}
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return err
	}
	if cmd.Tty != nil && !cmd.Local {
		restore, err := term.MakeRaw(os.Stdin)
		if err == nil {
			defer restore()
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			if *usage && cmd.ProcessState != nil {
				ps := cmd.ProcessState
				where := ps.Host()
				if where == "" {
					where = "home"
				}
				fmt.Fprintf(os.Stderr, "sprite mig: %s on %s: %s, user %v sys %v maxrss %d KiB\n",
					cmd.Path, where, ps, ps.UserTime(), ps.SystemTime(), ps.MaxRSS())
			}
			return migExit(cmd, err)
		case sig := <-sigs:
			forward(cmd, sig.(syscall.Signal))
		}
	}
}

// forward passes one signal to the job; job control stops this process
// too, as a local command would be stopped.
func forward(cmd *migrate.Cmd, sig syscall.Signal) {
	switch sig {
	case syscall.SIGWINCH:
		if ws, err := winsize(os.Stdin); err == nil {
			cmd.Resize(ws)
		}
	case syscall.SIGTSTP:
		cmd.Signal(syscall.SIGSTOP) // the remote job has no terminal to stop it
		syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	default:
		if err := cmd.Signal(sig); err != nil && !cmd.Local {
			fmt.Fprintf(os.Stderr, "sprite mig: %v\n", err)
		}
	}
}

// migExit ends this process as the job ended: the same exit status, or
// death by the same signal.
func migExit(cmd *migrate.Cmd, err error) error {
	var ee *migrate.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee) && ee.Signaled():
		dieBySignal(ee.Signal())
		return exitError{128 + int(ee.Signal())} // a signal whose default is not to die
	case errors.As(err, &ee):
		return exitError{ee.ExitCode()}
	case errors.Is(err, migrate.ErrLost):
		fmt.Fprintf(os.Stderr, "sprite mig: %v\n", err)
		return exitError{255}
	default:
		return err
	}
}

// dieBySignal ends this process by sig, as the job ended, so that the
// shell at home reports the same death. Go keeps its own handlers for
// synchronous signals (SEGV, BUS, FPE, ILL) even after signal.Reset, so
// the default action is restored with rt_sigaction directly.
func dieBySignal(sig syscall.Signal) {
	signal.Reset(sig)
	runtime.LockOSThread()
	var dfl [4]uint64 // struct sigaction: handler SIG_DFL, no flags, no restorer, empty mask
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	var set unix.Sigset_t
	set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	unix.Tgkill(os.Getpid(), unix.Gettid(), sig)
	time.Sleep(100 * time.Millisecond) // a stop or ignored signal: fall through to an exit status
}

// winsize is the size of the terminal f.
func winsize(f *os.File) (migrate.Winsize, error) {
	rows, cols, err := term.Size(f)
	return migrate.Winsize{Rows: rows, Cols: cols}, err
}
