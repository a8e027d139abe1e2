package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The signals a host init understands (see the package doc).
const (
	sigStart    = syscall.SIGUSR2
	sigStop     = syscall.SIGUSR1
	sigKill     = syscall.SIGHUP
	stopTimeout = 10 * time.Second
)

// DaemonState is what a host init reports about its daemon in daemon.json.
type DaemonState struct {
	Running  bool   `json:"running"`
	PID      int    `json:"pid,omitempty"` // inside the host
	Starts   int    `json:"starts"`
	LastExit string `json:"last_exit,omitempty"`
}

// supervisor is the host init's loop: reap, start and stop the daemon.
type supervisor struct {
	name, dir string
	sigs      chan os.Signal
	st        DaemonState
}

func newSupervisor(name, dir string) *supervisor {
	s := &supervisor{name: name, dir: dir, sigs: make(chan os.Signal, 16)}
	signal.Notify(s.sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, sigStart, sigStop, sigKill)
	s.publish()
	return s
}

func (s *supervisor) run() error {
	for sig := range s.sigs {
		switch sig {
		case syscall.SIGCHLD:
			s.reap()
		case sigStart:
			s.start()
		case sigStop:
			s.stop(syscall.SIGTERM)
		case sigKill:
			s.stop(syscall.SIGKILL)
		case syscall.SIGTERM, syscall.SIGINT:
			s.shutdown()
			return nil
		}
	}
	return nil
}

func (s *supervisor) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s lab init %s: %s\n", time.Now().Format(time.RFC3339Nano), s.name, fmt.Sprintf(format, args...))
}

// start starts `sprite daemon` unless it runs.
func (s *supervisor) start() {
	if s.st.Running {
		return
	}
	log, err := os.OpenFile("/var/lib/sprite/daemon.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		s.failed(fmt.Sprintf("open daemon.log: %v", err))
		return
	}
	defer log.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		s.failed(fmt.Sprintf("open %s: %v", os.DevNull, err))
		return
	}
	defer null.Close()
	p, err := os.StartProcess(SpriteBin, []string{"sprite", "daemon"}, &os.ProcAttr{
		Dir:   "/",
		Env:   hostEnv("root", "/root"),
		Files: []*os.File{null, log, log},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fmt.Fprintf(log, "lab init %s: start %s daemon: %v\n", s.name, SpriteBin, err)
		s.failed(fmt.Sprintf("start: %v", err))
		return
	}
	s.st = DaemonState{Running: true, PID: p.Pid, Starts: s.st.Starts + 1, LastExit: s.st.LastExit}
	_ = p.Release()
	s.logf("daemon started, pid %d", s.st.PID)
	s.publish()
}

// failed records a start that did not happen as a start that exited.
func (s *supervisor) failed(why string) {
	s.st = DaemonState{Starts: s.st.Starts + 1, LastExit: why}
	s.logf("daemon: %s", why)
	s.publish()
}

func (s *supervisor) stop(sig syscall.Signal) {
	if s.st.Running {
		_ = syscall.Kill(s.st.PID, sig)
		s.logf("daemon pid %d: sent %s", s.st.PID, unix.SignalName(sig))
	}
}

// reap collects every exited child; PID 1 inherits the host's orphans.
func (s *supervisor) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		if s.st.Running && pid == s.st.PID {
			s.exited(ws)
		}
	}
}

func (s *supervisor) exited(ws unix.WaitStatus) {
	why := fmt.Sprintf("exit status %d", ws.ExitStatus())
	if ws.Signaled() {
		why = "killed by " + unix.SignalName(ws.Signal())
	}
	s.logf("daemon pid %d: %s", s.st.PID, why)
	if f, err := os.OpenFile("/var/lib/sprite/daemon.log", os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(f, "%s lab init %s: daemon (pid %d) ended: %s\n", time.Now().Format(time.RFC3339), s.name, s.st.PID, why)
		f.Close()
	}
	s.st = DaemonState{Starts: s.st.Starts, LastExit: why}
	s.publish()
}

// shutdown stops the daemon, SIGKILL after stopTimeout; the host ends when
// init returns.
func (s *supervisor) shutdown() {
	s.stop(syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	for s.st.Running && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		s.reap()
	}
	s.stop(syscall.SIGKILL)
	s.logf("shutting down")
}

// publish writes daemon.json for the machine side to read.
func (s *supervisor) publish() {
	b, _ := json.Marshal(s.st)
	p := filepath.Join(s.dir, "daemon.json")
	err := os.WriteFile(p+".tmp", b, 0o644)
	if err == nil {
		err = os.Rename(p+".tmp", p)
	}
	if err != nil {
		s.logf("publish daemon state: %v", err)
	}
}

// readDaemonState reads what h's init last published.
func readDaemonState(h *Host) (DaemonState, error) {
	var st DaemonState
	b, err := os.ReadFile(filepath.Join(h.Dir, "daemon.json"))
	if err != nil {
		return st, fmt.Errorf("host %s: read daemon state: %w", h.Name, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("host %s: parse daemon state: %w", h.Name, err)
	}
	return st, nil
}

// hostEnv is the environment of commands in a host. GOMAXPROCS passes
// through, so that `GOMAXPROCS=1 sprite lab up` compares daemon settings
// (docs/config.md, procs).
func hostEnv(user, home string) []string {
	env := []string{"PATH=" + HostPATH, "HOME=" + home, "USER=" + user, "LOGNAME=" + user}
	for _, k := range []string{"TERM", "LANG", "LC_ALL", "TZ", "GOMAXPROCS"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
