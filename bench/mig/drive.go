package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"sprite/migrate"
)

// The driver runs inside h1 as alice, in /home/alice, and times every way
// of running `true`, one way after the other: a way's warm-up runs, then
// its timed runs, back to back. (Taking turns run by run would charge
// each way for the cleanup of the one before it: sshd's session teardown
// on h2 would land on the runs after ssh.)

// ways, in the order they run; ssh last, so that
// nothing runs beside the tail of its last sessions.
const (
	wayLocal = "local"
	wayStart = "start"
	wayCLI   = "cli"
	wayAPI   = "api"
	wayAPIIO = "apiio"
	waySSH   = "ssh"
)

var ways = []string{wayLocal, wayStart, wayAPI, wayAPIIO, wayCLI, waySSH}

// samples is what the driver prints: each way's times in nanoseconds.
type samples map[string][]int64

type driver struct {
	host     string   // the target of sprite mig
	ssh      []string // ssh's argv up to the command
	truePath string   // /bin/true, looked up once (a shell hashes it too)
	null     *os.File // /dev/null, read-write
}

func drive(args []string) error {
	fs := flag.NewFlagSet("drive", flag.ContinueOnError)
	n := fs.Int("n", 200, "timed runs of each way")
	sshN := fs.Int("ssh-n", 200, "timed runs of ssh")
	warm := fs.Int("warm", 10, "untimed runs of each way before its timed ones")
	host := fs.String("host", "h2", "the target host")
	key := fs.String("key", "", "ssh's private key")
	dest := fs.String("dest", "", "ssh's user@address")
	port := fs.Int("port", 22, "sshd's port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tp, err := exec.LookPath("true")
	if err != nil {
		return fmt.Errorf("true: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	d := &driver{host: *host, truePath: tp, null: null, ssh: []string{"ssh",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-p", fmt.Sprint(*port), "-i", *key, *dest}}
	if err := d.ready(30 * time.Second); err != nil {
		return err
	}
	res := samples{}
	for _, w := range ways {
		runs := *n
		if w == waySSH {
			runs = *sshN
		}
		for i := range *warm + runs {
			dt, err := d.once(w)
			if err != nil {
				return fmt.Errorf("%s, run %d of %d (with %d warm-up): %w", w, i+1, *warm+runs, *warm, err)
			}
			if i >= *warm {
				res[w] = append(res[w], dt.Nanoseconds())
			}
		}
		fmt.Fprintf(os.Stderr, "  driver: %s: %d runs\n", w, runs)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// ready waits until sprite mig and ssh both reach the target (the prefix
// tables fill and sshd starts listening after lab up returns), and checks
// that each runs its command there and not here.
func (d *driver) ready(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	check := func(name string, f func() (string, error)) error {
		for {
			got, err := f()
			if err == nil && got == d.host {
				return nil
			}
			if time.Now().After(deadline) {
				if err == nil {
					err = fmt.Errorf("it ran on %q, not on %s", got, d.host)
				}
				return fmt.Errorf("%s did not reach %s within %v: %w", name, d.host, limit, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := check("sprite mig", func() (string, error) {
		return output(exec.Command("sprite", "mig", "--host", d.host, "--", "hostname"))
	}); err != nil {
		return err
	}
	if err := check("the Go API", func() (string, error) {
		var out bytes.Buffer
		c := migrate.Command("hostname")
		c.Host, c.Stdout = d.host, &out
		if err := c.Run(); err != nil {
			return "", err
		}
		if c.Local {
			return "", fmt.Errorf("it ran at home: %s", c.LocalReason)
		}
		return strings.TrimSpace(out.String()), nil
	}); err != nil {
		return err
	}
	return check("ssh", func() (string, error) {
		return output(exec.Command(d.ssh[0], append(d.ssh[1:], "hostname")...))
	})
}

// output runs cmd and returns its stdout, failing on any stderr (sprite
// mig says there when it runs the command at home).
func output(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", cmd, err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		return "", fmt.Errorf("%s said: %s", cmd, stderr.Bytes())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// once runs `true` one way and returns how long it took, start to exit.
func (d *driver) once(way string) (time.Duration, error) {
	var cmd *exec.Cmd
	switch way {
	case wayLocal:
		cmd = exec.Command(d.truePath)
	case wayStart:
		// The CLI's process start alone: help prints the usage (on
		// stderr, discarded) and exits.
		t0 := time.Now()
		err := exec.Command("sprite", "help").Run()
		return time.Since(t0), err
	case wayCLI:
		cmd = exec.Command("sprite", "mig", "--host", d.host, "--", "true")
	case waySSH:
		cmd = exec.Command(d.ssh[0], append(d.ssh[1:], "true")...)
	case wayAPI, wayAPIIO:
		c := migrate.Command("true")
		c.Host = d.host
		if way == wayAPIIO {
			// stdio as the CLI's: files (/dev/null, as the CLI runs here)
			c.Stdin, c.Stdout, c.Stderr = d.null, d.null, d.null
		}
		t0 := time.Now()
		err := c.Run()
		dt := time.Since(t0)
		if err == nil && (c.Local || c.RanOn != d.host) {
			err = fmt.Errorf("ran on %q (at home: %v %s), not on %s", c.RanOn, c.Local, c.LocalReason, d.host)
		}
		return dt, err
	default:
		return 0, fmt.Errorf("no way %q", way)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // stdin and stdout: /dev/null
	t0 := time.Now()
	err := cmd.Run()
	dt := time.Since(t0)
	if err != nil {
		return dt, fmt.Errorf("%s: %w: %s", cmd, err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		return dt, fmt.Errorf("%s said: %s", cmd, stderr.Bytes())
	}
	return dt, nil
}
