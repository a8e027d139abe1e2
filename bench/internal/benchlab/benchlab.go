// Package benchlab holds what every benchmark does with its lab: run a
// command with its output on stderr, run a script inside a lab host, and
// tear the lab down.
package benchlab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Run runs a command on this machine with its output on stderr.
func Run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// Sh runs a shell script in lab host host as user ("" for root), through
// the sprite binary at sprite.
func Sh(sprite, host, user, script string) error {
	args := []string{"lab", "exec", host}
	if user != "" {
		args = append(args, "--user", user)
	}
	return Run(sprite, append(args, "--", "sh", "-c", script)...)
}

// Down tears the lab down.
func Down(sprite string) error {
	if err := Run(sprite, "lab", "down"); err != nil {
		return fmt.Errorf("lab down: %w (run `sudo %s lab down` before the next lab)", err, sprite)
	}
	return nil
}

// Tail is the last n lines of b.
func Tail(b []byte, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "") + "\n"
}

// Loadavg is the machine's load average over 1, 5 and 15 minutes (a busy
// machine inflates every figure; benchmarks record it).
func Loadavg() string {
	la, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(la))[:3], " ")
}
