package migrate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"sprite/wire"
)

// Spare job inits. Starting the sprite binary costs a few milliseconds
// (the Go runtime and its packages), most of a remote `true`. So the
// executor keeps a few job inits started ahead of need (`sprite _jobinit
// --spare`), each already in its own mount namespace, blocked reading a
// unix socket. A job hands one its config and its three stdio fds
// (SCM_RIGHTS) and reads the outcome on the same socket: EOF when the exec
// succeeded (the socket is close-on-exec), else the error. A spare whose
// daemon died reads EOF and exits.

// spareArg marks a job init started ahead of its job.
const spareArg = "--spare"

// spare is a started job init waiting for its job.
type spare struct {
	cmd  *exec.Cmd
	sock *os.File // our end of the socket pair
}

// startSpare starts one job init that waits for its job.
func startSpare(self string) (*spare, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start a spare job init: socket pair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "spare"), os.NewFile(uintptr(fds[1]), "spare-child")
	defer theirs.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("start a spare job init: %w", err)
	}
	defer null.Close()
	cmd := &exec.Cmd{
		Path: self, Args: []string{self, JobInitCommand, spareArg}, Env: jobInitEnv, Dir: "/",
		Stdin: null, Stdout: null, Stderr: null,
		ExtraFiles:  []*os.File{theirs},
		SysProcAttr: &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS},
	}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, fmt.Errorf("start a spare job init %s: %w", self, err)
	}
	return &spare{cmd: cmd, sock: ours}, nil
}

// run gives the spare its job; it returns the job's process once exec
// succeeded, or the setup's error.
func (sp *spare) run(ji JobInit, stdin, stdout, stderr *os.File) (*exec.Cmd, error) {
	defer sp.sock.Close()
	cfg, err := wire.Marshal(ji)
	if err != nil {
		sp.discard()
		return nil, err
	}
	if len(cfg) > maxSpareConfig {
		sp.discard()
		return nil, errSpareTooBig
	}
	rights := unix.UnixRights(int(stdin.Fd()), int(stdout.Fd()), int(stderr.Fd()))
	if err := unix.Sendmsg(int(sp.sock.Fd()), cfg, rights, nil, 0); err != nil {
		sp.discard()
		return nil, fmt.Errorf("hand the job to a spare job init: %w", err)
	}
	msg, rerr := io.ReadAll(io.LimitReader(sp.sock, 4096))
	if len(msg) == 0 && rerr == nil {
		return sp.cmd, nil
	}
	sp.discard()
	if len(msg) == 0 {
		return nil, fmt.Errorf("read the job init's status: %v", rerr)
	}
	host, _ := os.Hostname()
	return nil, fmt.Errorf("start job %s on %s: %s", ji.Spec.ID, host, strings.TrimSpace(string(msg)))
}

// discard kills a spare that will not run a job and reaps it.
func (sp *spare) discard() {
	sp.sock.Close()
	sp.cmd.Process.Kill()
	sp.cmd.Wait()
}

// maxSpareConfig is the largest job config a spare takes in one message
// (a socket's datagram limit); larger ones start a job init of their own.
const maxSpareConfig = 200 << 10

var errSpareTooBig = errors.New("job config too large for a spare job init")

// runSpare is the spare's side: wait for the job, take its stdio as fds
// 0-2, report on the socket (fd 3, close-on-exec) and set it up.
func runSpare(sigs <-chan os.Signal) error {
	const sockFD = 3
	syscall.CloseOnExec(sockFD)
	sock := os.NewFile(sockFD, "spare")
	buf := make([]byte, maxSpareConfig)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := unix.Recvmsg(sockFD, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		os.Exit(0) // the daemon went away before giving a job: nothing to report
	}
	report := func(err error) error {
		fmt.Fprintf(sock, "%s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return err
	}
	fds, err := receivedFDs(oob[:oobn])
	if err != nil {
		return report(err)
	}
	for i, fd := range fds {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return report(fmt.Errorf("take the job's fd %d: %w", i, err))
		}
		unix.Close(fd)
	}
	var ji JobInit
	if err := wire.Unmarshal(buf[:n], &ji); err != nil {
		return report(fmt.Errorf("read the job's config: %w", err))
	}
	return report(setupAndExec(ji, sigs))
}

func receivedFDs(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("the job's stdio did not arrive (%d control messages, %v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 3 {
		return nil, fmt.Errorf("the job's stdio did not arrive (%d fds, %v)", len(fds), err)
	}
	return fds, nil
}

// spares is how many job inits the executor keeps started ahead of need.
const spares = 2

// jobInit starts a job through a spare job init when one is ready, else
// through a new one, and asks for the spare to be replaced.
func (e *Executor) jobInit(ji JobInit, stdin, stdout, stderr *os.File) (*exec.Cmd, error) {
	select {
	case sp := <-e.spares:
		select {
		case e.refill <- struct{}{}:
		default:
		}
		cmd, err := sp.run(ji, stdin, stdout, stderr)
		if err == nil || !errors.Is(err, errSpareTooBig) && !strings.HasPrefix(err.Error(), "hand the job") {
			return cmd, err
		}
		// The spare could not take it: start one of its own.
	default:
		select {
		case e.refill <- struct{}{}:
		default:
		}
	}
	return StartJobInit(e.self, ji, stdin, stdout, stderr)
}

// keepSpares keeps the pool of spare job inits full until ctx ends, then
// kills what is left in it.
func (e *Executor) keepSpares(done <-chan struct{}) {
	defer func() {
		for {
			select {
			case sp := <-e.spares:
				sp.discard()
			default:
				return
			}
		}
	}()
	for {
		for len(e.spares) < cap(e.spares) {
			sp, err := startSpare(e.self)
			if err != nil {
				e.log.Warn("no spare job init: jobs start a little slower", "err", err)
				break
			}
			e.spares <- sp
		}
		select {
		case <-done:
			return
		case <-e.refill:
		}
	}
}

// jobInitEnv keeps the job init's Go runtime small: fewer threads make its
// exec (which must stop them all) and its credential changes (applied to
// every thread) faster.
var jobInitEnv = []string{"GOMAXPROCS=1", "GOGC=off"}
