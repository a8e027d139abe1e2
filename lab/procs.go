package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procArgs returns the argv of process pid, or nil if it is gone.
func procArgs(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
}

// hostInitName returns the host name if argv is a host init's, else "".
func hostInitName(argv []string) string {
	if len(argv) < 3 || argv[1] != "lab" || argv[2] != "_hostinit" {
		return ""
	}
	for i, a := range argv {
		if a == "--name" && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return "?"
}

// isHostInit reports whether pid is alive and the init of host name.
func isHostInit(pid int, name string) bool {
	return pid > 0 && alive(pid) && hostInitName(procArgs(pid)) == name
}

// hostInits finds every running host init on the machine, by argv.
func hostInits() map[int]string {
	found := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if n := hostInitName(procArgs(pid)); n != "" && alive(pid) {
			found[pid] = n
		}
	}
	return found
}

// alive reports whether pid exists and is not a zombie. A zombie has given
// up its namespaces, so for the lab it is gone.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// killAndWait sends SIGKILL to every pid and waits until all are gone.
func killAndWait(pids []int, timeout time.Duration) error {
	for _, p := range pids {
		if p > 0 {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, p := range pids {
			if p > 0 && alive(p) {
				left = append(left, strconv.Itoa(p))
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %s still run %v after SIGKILL (stuck in the kernel?); look at /proc/PID/stack and run `sprite lab down` again",
				strings.Join(left, ", "), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPids parses a file of one pid per line (cgroup.procs).
func readPids(path string) []int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// signalInit sends sig to h's init after checking that it is one.
func signalInit(h *Host, sig syscall.Signal) error {
	if !isHostInit(h.InitPID, h.Name) {
		return fmt.Errorf("host %s: its init (pid %d) is not running; the host is dead, run `sprite lab down` and `sprite lab up` again", h.Name, h.InitPID)
	}
	if err := syscall.Kill(h.InitPID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("host %s: signal init: %w", h.Name, err)
	}
	return nil
}

// ancestors lists this process and its ancestors, which Down must not kill
// even when they sit in a lab netns or cgroup (a test that entered one).
func ancestors() map[int]bool {
	as := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !as[pid]; {
		as[pid] = true
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			break
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			break
		}
		pid, _ = strconv.Atoi(f[1])
	}
	return as
}
