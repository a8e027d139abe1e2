// Package benchlab holds what every benchmark does with its lab: run a
// command with its output on stderr, run a script inside a lab host, and
// tear the lab down.
package benchlab

import (
	"fmt"
	"os"
	"os/exec"
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
