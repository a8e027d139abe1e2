package rexec

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcessState is how a job ended, shaped like os.ProcessState.
type ProcessState struct {
	exit Exit
}

// ExitCode is the exit status, or -1 when the job died by a signal.
func (p *ProcessState) ExitCode() int { return p.exit.Code }

// Exited reports whether the job called exit.
func (p *ProcessState) Exited() bool { return p.exit.Signal == 0 && p.exit.Lost == "" }

// Success reports whether the job exited with status 0.
func (p *ProcessState) Success() bool { return p.Exited() && p.exit.Code == 0 }

// Signaled reports whether a signal killed the job; Signal says which.
func (p *ProcessState) Signaled() bool { return p.exit.Signal != 0 }

// Signal is the signal that killed the job (0 if none).
func (p *ProcessState) Signal() syscall.Signal { return syscall.Signal(p.exit.Signal) }

// CoreDump reports whether the dying job dumped core.
func (p *ProcessState) CoreDump() bool { return p.exit.Core }

// UserTime and SystemTime are the job's CPU times.
func (p *ProcessState) UserTime() time.Duration {
	return time.Duration(p.exit.UserUs) * time.Microsecond
}
func (p *ProcessState) SystemTime() time.Duration {
	return time.Duration(p.exit.SysUs) * time.Microsecond
}

// MaxRSS is the job's peak resident size in KiB.
func (p *ProcessState) MaxRSS() int64 { return p.exit.MaxRSSKB }

// Host is where the job ran ("" for a job run at home).
func (p *ProcessState) Host() string { return p.exit.Host }

// Exit is the raw record.
func (p *ProcessState) Exit() Exit { return p.exit }

func (p *ProcessState) String() string {
	switch {
	case p.exit.Lost != "":
		return "lost: " + p.exit.Lost
	case p.Signaled():
		s := "signal: " + p.Signal().String()
		if p.exit.Core {
			s += " (core dumped)"
		}
		return s
	default:
		return "exit status " + strconv.Itoa(p.exit.Code)
	}
}

// ExitError is a job that did not exit with status 0.
type ExitError struct{ *ProcessState }

func (e *ExitError) Error() string { return e.ProcessState.String() }

// ExitFromWait turns a wait status and rusage into an Exit.
func ExitFromWait(ws syscall.WaitStatus, ru *syscall.Rusage, host string) Exit {
	e := Exit{Code: ws.ExitStatus(), Host: host}
	if ws.Signaled() {
		e.Code, e.Signal, e.Core = -1, int(ws.Signal()), ws.CoreDump()
	}
	if ru != nil {
		e.UserUs = ru.Utime.Sec*1e6 + int64(ru.Utime.Usec)
		e.SysUs = ru.Stime.Sec*1e6 + int64(ru.Stime.Usec)
		e.MaxRSSKB = ru.Maxrss
	}
	return e
}

// currentUmask reads this process's umask without changing it.
func currentUmask() uint32 {
	if v, ok := procStatusField(os.Getpid(), "Umask"); ok {
		if n, err := strconv.ParseUint(v, 8, 32); err == nil {
			return uint32(n)
		}
	}
	old := syscall.Umask(0o22) // kernels before 4.7: racy, but only here
	syscall.Umask(old)
	return uint32(old)
}

// procStatusField reads one field of /proc/<pid>/status.
func procStatusField(pid int, name string) (string, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// ProcGroups is the supplementary groups of a process (from /proc), for a
// home that learns its caller's pid from the socket.
func ProcGroups(pid int) ([]uint32, error) {
	v, ok := procStatusField(pid, "Groups")
	if !ok {
		return nil, fmt.Errorf("read groups of pid %d: no Groups line in /proc/%d/status", pid, pid)
	}
	var out []uint32
	for _, f := range strings.Fields(v) {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("read groups of pid %d: %q: %w", pid, f, err)
		}
		out = append(out, uint32(n))
	}
	return out, nil
}
