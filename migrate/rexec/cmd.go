package rexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"sprite/api"
	"sprite/rpc"
	"sprite/wire"
)

// DefaultSocket is the local daemon's socket (daemon.DefaultSocket).
const DefaultSocket = "/run/sprite/sprite.sock"

// ErrLost means a job did not finish: its target went away and its home
// could not run it again.
var ErrLost = errors.New("job lost")

// Cmd is a command run through this host's sprite daemon on an idle host
// (or on Host), shaped like os/exec's Cmd. Its stdin, stdout and stderr
// stay here; Signal reaches the job wherever it runs. When no host can take
// it (none idle, the working directory outside the global namespace, no
// daemon) it runs here with os/exec and says so on Notices.
type Cmd struct {
	Path   string   // the program, looked up in PATH on the target
	Args   []string // Args[0] is the command name, as in os/exec
	Env    []string // nil: this process's environment
	Dir    string   // "": this process's working directory
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	Host    string   // the target; "" asks the idle database
	Session string   // place on this session's hosts (see homenode)
	Policy  string   // eviction policy: restart (default), wait, checkpoint
	Tty     *Winsize // run on a terminal of this size on the target (Stdin, Stdout: the caller's raw terminal)
	// HoldOutput asks the home to deliver the job's output only when it
	// exits, so that a job restarted after an eviction prints once.
	HoldOutput bool
	// Notices receives the lines that say where the job went when that is
	// not what the caller asked (ran at home, restarted elsewhere); nil
	// discards them.
	Notices io.Writer
	Socket  string // the daemon's socket; "" is DefaultSocket

	// ID is the job's global id (home.pid) and RanOn where it runs, once
	// Start has returned; ID is "" for a job run here.
	ID, RanOn string
	// Local is true when the job runs here, with LocalReason saying why.
	Local       bool
	LocalReason string

	ProcessState *ProcessState

	ctx    context.Context
	stream *rpc.ClientStream
	sendMu sync.Mutex // guards sends on stream
	local  *exec.Cmd
	done   chan struct{} // closed when the receive loop has the exit
	// stopKill unregisters the context's kill once the job has ended.
	stopKill func() bool
	exit     Exit
	err      error // receive loop's failure; valid after done
	copyWG   sync.WaitGroup
}

// Command returns a Cmd for name and its arguments.
func Command(name string, arg ...string) *Cmd {
	return CommandContext(context.Background(), name, arg...)
}

// CommandContext is Command with a context: when it ends before the job,
// the job is killed (SIGKILL) wherever it runs.
func CommandContext(ctx context.Context, name string, arg ...string) *Cmd {
	return &Cmd{Path: name, Args: append([]string{name}, arg...), ctx: ctx}
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Start places the job and starts it; it returns once the job runs.
func (c *Cmd) Start() error {
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	req, err := c.request()
	if err != nil {
		return err
	}
	cl := &api.Client{Socket: c.Socket}
	if cl.Socket == "" {
		cl.Socket = DefaultSocket
	}
	s, err := cl.Open(c.ctx, MethodLocalRun, req)
	if err != nil {
		if errors.Is(err, api.ErrNoDaemon) {
			return c.startLocal("no sprite daemon on this host")
		}
		return fmt.Errorf("start %s: %w", c.Path, err)
	}
	ev, err := firstEvent(s)
	if err != nil {
		return fmt.Errorf("start %s: %w", c.Path, err)
	}
	if ev.Kind == EventLocal {
		s.Finish(nil)
		return c.startLocal(ev.Reason)
	}
	c.stream, c.ID, c.RanOn = s, ev.ID, ev.Host
	c.done = make(chan struct{})
	if c.Stdin != nil {
		c.copyWG.Go(c.sendStdin)
	}
	go c.receive()
	c.stopKill = context.AfterFunc(c.ctx, func() { c.Signal(os.Kill) })
	return nil
}

// firstEvent reads the placement: placed, local, or the call's error.
func firstEvent(s *rpc.ClientStream) (Event, error) {
	f, err := s.Recv()
	if err == io.EOF {
		return Event{}, s.Finish(nil)
	}
	if err != nil {
		s.Finish(nil)
		return Event{}, err
	}
	var ev Event
	if err := wire.Unmarshal(f.Payload, &ev); err != nil || (ev.Kind != EventPlaced && ev.Kind != EventLocal) {
		s.Finish(nil)
		return Event{}, fmt.Errorf("daemon sent %q before placing the job (is it an older sprite?)", ev.Kind)
	}
	return ev, nil
}

func (c *Cmd) request() (Request, error) {
	if len(c.Args) == 0 {
		c.Args = []string{c.Path}
	}
	argv := append([]string{c.Path}, c.Args[1:]...)
	dir := c.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return Request{}, fmt.Errorf("start %s: working directory: %w", c.Path, err)
		}
		dir = wd
	}
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	return Request{Argv: argv, Env: env, Dir: dir, Umask: currentUmask(), Tty: c.Tty,
		Host: c.Host, Session: c.Session, Policy: c.Policy, NoStdin: c.Stdin == nil, HoldOutput: c.HoldOutput}, nil
}

// send writes one message or data frame; stdin and Resize share the stream.
func (c *Cmd) send(v any, data []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if data != nil {
		return c.stream.SendData(data)
	}
	return c.stream.Send(v)
}

func (c *Cmd) sendStdin() {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Stdin.Read(buf)
		if n > 0 {
			if c.send(nil, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			c.send(Input{Kind: InputEOF}, nil)
			return
		}
	}
}

// receive copies the job's output until its exit arrives.
func (c *Cmd) receive() {
	defer close(c.done)
	for {
		f, err := c.stream.Recv()
		if err == io.EOF {
			c.err = c.stream.Finish(&c.exit)
			return
		}
		if err != nil {
			c.stream.Finish(nil)
			c.err = fmt.Errorf("job %s on %s: %w", c.ID, c.RanOn, err)
			return
		}
		var ev Event
		if err := wire.Unmarshal(f.Payload, &ev); err != nil {
			continue // a newer daemon's message; skip it
		}
		c.event(ev)
	}
}

func (c *Cmd) event(ev Event) {
	var w io.Writer
	switch ev.Kind {
	case EventStdout:
		w = c.Stdout
	case EventStderr:
		w = c.Stderr
	case EventNotice:
		if c.Notices != nil {
			fmt.Fprintf(c.Notices, "sprite: %s\n", ev.Reason)
		}
		if ev.Host != "" {
			c.RanOn = ev.Host
		}
		return
	case EventStarted:
		if ev.Host != "" {
			c.RanOn = ev.Host
		}
		return
	default:
		return
	}
	if w != nil {
		w.Write(ev.Data) // like a pipe whose reader went away: the job goes on
	}
}

// Wait waits for the job to end and returns nil for exit status 0, an
// *ExitError for any other end, or an error wrapping ErrLost.
func (c *Cmd) Wait() error {
	if c.local != nil {
		return c.waitLocal()
	}
	if c.done == nil {
		return errors.New("sprite: Wait without Start")
	}
	<-c.done
	c.stopKill() // the job has ended: its id may be another job's soon
	if c.err != nil {
		return c.err
	}
	c.ProcessState = &ProcessState{exit: c.exit}
	if c.exit.Lost != "" {
		return fmt.Errorf("job %s: %w: %s", c.ID, ErrLost, c.exit.Lost)
	}
	if !c.ProcessState.Success() {
		return &ExitError{ProcessState: c.ProcessState}
	}
	return nil
}

// Signal sends sig to the job wherever it runs.
func (c *Cmd) Signal(sig os.Signal) error {
	if c.local != nil {
		return c.local.Process.Signal(sig)
	}
	sn, ok := sig.(syscall.Signal)
	if !ok || c.ID == "" {
		return fmt.Errorf("signal job: not a started remote job, or %v is not a syscall signal", sig)
	}
	cl := &api.Client{Socket: c.Socket}
	if cl.Socket == "" {
		cl.Socket = DefaultSocket
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := cl.Call(ctx, MethodLocalKill, KillArgs{ID: c.ID, Signal: int(sn)}, nil); err != nil {
		return fmt.Errorf("signal job %s: %w", c.ID, err)
	}
	return nil
}

// Resize tells the job's terminal its new size.
func (c *Cmd) Resize(w Winsize) error {
	if c.stream == nil {
		return nil
	}
	return c.send(Input{Kind: InputResize, Size: &w}, nil)
}

func argvString(argv []string) string { return strings.Join(argv, " ") }

// callTimeout bounds a control call (a signal) to the local daemon.
const callTimeout = 10 * time.Second
