package lab

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

const (
	daemonStartTimeout = 15 * time.Second
	daemonStopTimeout  = 15 * time.Second
	pollEvery          = 20 * time.Millisecond
)

// DaemonState returns what host's init says about its daemon.
func (l *Lab) DaemonState(host string) (DaemonState, error) {
	h, err := l.Host(host)
	if err != nil {
		return DaemonState{}, err
	}
	return readDaemonState(h)
}

// StartDaemon has host's init start `sprite daemon` unless it runs, and
// waits until the daemon's socket accepts connections.
func (l *Lab) StartDaemon(ctx context.Context, host string) error {
	h, err := l.Host(host)
	if err != nil {
		return err
	}
	before, err := readDaemonState(h)
	if err != nil {
		return err
	}
	if !before.Running {
		if err := requestStart(ctx, h, before.Starts); err != nil {
			return err
		}
	}
	return waitSocket(ctx, h)
}

// requestStart signals the init to start the daemon and waits until it did.
func requestStart(ctx context.Context, h *Host, starts int) error {
	if err := signalInit(h, sigStart); err != nil {
		return err
	}
	return poll(ctx, daemonStartTimeout, func() (bool, error) {
		st, err := readDaemonState(h)
		if err != nil || st.Starts <= starts {
			return false, err
		}
		if !st.Running {
			return false, fmt.Errorf("host %s: the daemon ended at once (%s); see %s", h.Name, st.LastExit, h.DaemonLog())
		}
		return true, nil
	}, fmt.Sprintf("host %s: the init did not start the daemon; see %s", h.Name, h.InitLog()))
}

// waitSocket waits until h's daemon answers on its socket.
func waitSocket(ctx context.Context, h *Host) error {
	sock := filepath.Join("/proc", strconv.Itoa(h.InitPID), "root", SocketPath)
	return poll(ctx, daemonStartTimeout, func() (bool, error) {
		st, err := readDaemonState(h)
		if err != nil {
			return false, err
		}
		if !st.Running {
			return false, fmt.Errorf("host %s: the daemon ended (%s) before it answered; see %s", h.Name, st.LastExit, h.DaemonLog())
		}
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	}, fmt.Sprintf("host %s: the daemon does not answer on %s; see %s", h.Name, SocketPath, h.DaemonLog()))
}

// StopDaemon has host's init stop its daemon, with SIGTERM, or SIGKILL if
// kill, and waits until it is gone.
func (l *Lab) StopDaemon(ctx context.Context, host string, kill bool) error {
	h, err := l.Host(host)
	if err != nil {
		return err
	}
	st, err := readDaemonState(h)
	if err != nil || !st.Running {
		return err
	}
	sig, what := syscall.Signal(sigStop), "SIGTERM; try `sprite lab stop --kill "+h.Name+"`"
	if kill {
		sig, what = sigKill, "SIGKILL (stuck in the kernel?)"
	}
	if err := signalInit(h, sig); err != nil {
		return err
	}
	return poll(ctx, daemonStopTimeout, func() (bool, error) {
		st, err := readDaemonState(h)
		return err == nil && !st.Running, err
	}, fmt.Sprintf("host %s: the daemon (pid %d in the host) did not end on %s", h.Name, st.PID, what))
}

// poll calls f every pollEvery until it reports done or fails, ctx ends or
// timeout passes (then the error says timeoutMsg).
func poll(ctx context.Context, timeout time.Duration, f func() (bool, error), timeoutMsg string) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (waited %v)", timeoutMsg, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", timeoutMsg, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}
