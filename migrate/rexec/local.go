package rexec

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// startLocal runs the job here with os/exec: the home found no host for it.
func (c *Cmd) startLocal(reason string) error {
	c.Local, c.LocalReason = true, reason
	if c.Notices != nil {
		fmt.Fprintf(c.Notices, "sprite: running %s at home: %s\n", c.Path, reason)
	}
	cmd := exec.CommandContext(c.ctx, c.Path, c.Args[1:]...)
	cmd.Args[0] = c.Args[0]
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	c.local = cmd
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s at home: %w", c.Path, err)
	}
	return nil
}

func (c *Cmd) waitLocal() error {
	err := c.local.Wait()
	ps := c.local.ProcessState
	if ps == nil {
		return err
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	ru, _ := ps.SysUsage().(*syscall.Rusage)
	c.ProcessState = &ProcessState{exit: ExitFromWait(ws, ru, "")}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &ExitError{ProcessState: c.ProcessState}
	}
	return err
}
