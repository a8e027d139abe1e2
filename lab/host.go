package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const readyTimeout = 10 * time.Second

// startHost starts h's init in new namespaces, puts it into its cgroup,
// wires its network and waits until the host is ready. It fills h.InitPID.
func startHost(h *Host) error {
	pid, goW, readyR, err := spawnInit(h)
	if err != nil {
		return fmt.Errorf("host %s: start init: %w", h.Name, err)
	}
	defer goW.Close()
	defer readyR.Close()
	h.InitPID = pid
	if err := joinCgroup(h.Cgroup, pid); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	if err := setupHostNet(h, pid); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	if _, err := goW.Write([]byte{1}); err != nil {
		return fmt.Errorf("host %s: init went away (%v); see %s", h.Name, err, h.InitLog())
	}
	return waitReady(h, readyR)
}

// spawnInit starts `sprite lab _hostinit` in new PID, mount, UTS and network
// namespaces, in its own session, logging to init.log. It returns the init's
// pid and the parent's ends of the go and ready pipes.
func spawnInit(h *Host) (pid int, goW, readyR *os.File, err error) {
	log, err := os.OpenFile(h.InitLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, nil, nil, err
	}
	defer log.Close()
	goR, goW, err := os.Pipe()
	if err != nil {
		return 0, nil, nil, err
	}
	defer goR.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		goW.Close()
		return 0, nil, nil, err
	}
	defer readyW.Close()
	cmd := exec.Command(SpriteBin, "lab", "_hostinit", "--name", h.Name, "--dir", h.Dir)
	cmd.Dir = "/"
	cmd.Env = hostEnv("root", "/root")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{goR, readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWNET,
		Setsid:     true,
	}
	if err := cmd.Start(); err != nil {
		goW.Close()
		readyR.Close()
		return 0, nil, nil, err
	}
	go cmd.Wait() // reap it if it dies while this process lives
	return cmd.Process.Pid, goW, readyR, nil
}

// waitReady reads the init's verdict from the ready pipe.
func waitReady(h *Host, readyR *os.File) error {
	_ = readyR.SetReadDeadline(time.Now().Add(readyTimeout))
	line, err := bufio.NewReader(readyR).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "ok" {
		return nil
	}
	if strings.HasPrefix(line, "error: ") {
		return fmt.Errorf("host %s: init: %s", h.Name, strings.TrimPrefix(line, "error: "))
	}
	return fmt.Errorf("host %s: init did not get ready (%v); its log %s says: %s",
		h.Name, err, h.InitLog(), tail(h.InitLog(), 5))
}

// tail returns the last n lines of a file, on one line.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := string(bytes.Join(lines, []byte(" | ")))
	if s == "" {
		return "(nothing)"
	}
	return s
}
