// Package e2e holds sprite's end-to-end tests: each brings up a lab of real
// workstations (network, PID, mount and UTS namespaces, real daemons, real
// QUIC) with the sprite binary and checks behaviour across hosts through
// the CLI, as a user would. They need root.
//
// Harness is shared by the tests of later parts (file system, remote
// execution, pmake): build once, one lab per test package, always torn down.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Harness drives a lab through the sprite binary.
type Harness struct {
	// Bin is the sprite binary built for the tests.
	Bin string
}

// Build compiles sprite (and pmake beside it) into dir.
func Build(dir string) (*Harness, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	for _, m := range []string{"sprite", "pmake"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, m), "./cmd/"+m)
		cmd.Dir = root
		if m == "pmake" {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as scripts/setup builds it
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", m, err, out)
		}
	}
	return &Harness{Bin: filepath.Join(dir, "sprite")}, nil
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs sprite with args on this machine (for `lab ...`).
func (h *Harness) Run(ctx context.Context, args ...string) Result {
	cmd := exec.CommandContext(ctx, h.Bin, args...)
	// A command that leaves a child holding its output (a test's stray
	// background job) must not hang the test past its context.
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		r.Code, r.Stderr = -1, err.Error()
	}
	return r
}

// Exec runs argv inside lab host host (as root).
func (h *Harness) Exec(host string, argv ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return h.Run(ctx, append([]string{"lab", "exec", host, "--"}, argv...)...)
}

// ExecAs runs argv inside host as user.
func (h *Harness) ExecAs(host, user string, argv ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return h.Run(ctx, append([]string{"lab", "exec", host, "--user", user, "--"}, argv...)...)
}

// Up brings up a lab of n hosts with extra `lab up` flags.
func (h *Harness) Up(n int, flags ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h.Run(ctx, "lab", "down")
	r := h.Run(ctx, append([]string{"lab", "up", "--hosts", fmt.Sprint(n)}, flags...)...)
	if r.Code != 0 {
		return fmt.Errorf("lab up: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	return nil
}

// Down tears the lab down.
func (h *Harness) Down() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r := h.Run(ctx, "lab", "down"); r.Code != 0 {
		return fmt.Errorf("lab down: exit %d\n%s", r.Code, r.Stderr)
	}
	return nil
}

// HostRow is one object of `sprite hosts --json`.
type HostRow struct {
	Name  string  `json:"name"`
	State string  `json:"state"`
	CPUs  float64 `json:"cpus"`
	Arch  string  `json:"arch"`
	Addr  string  `json:"addr"`
}

// Hosts returns `sprite hosts --json` as seen from host.
func (h *Harness) Hosts(host string) (map[string]HostRow, error) {
	r := h.Exec(host, "sprite", "hosts", "--json")
	if r.Code != 0 {
		return nil, fmt.Errorf("sprite hosts on %s: exit %d: %s", host, r.Code, r.Stderr)
	}
	var rows []HostRow
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
		return nil, fmt.Errorf("sprite hosts --json on %s: %w\n%s", host, err, r.Stdout)
	}
	m := map[string]HostRow{}
	for _, row := range rows {
		m[row.Name] = row
	}
	return m, nil
}

// WaitState polls host's view until target has state, or timeout. It
// returns how long that took.
func (h *Harness) WaitState(host, target, state string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	var last map[string]HostRow
	for time.Since(start) < timeout {
		hs, err := h.Hosts(host)
		if err == nil {
			last = hs
			if hs[target].State == state {
				return time.Since(start), nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("%s did not see %s %s within %s; last view %v", host, target, state, timeout, last)
}

// DaemonLog returns host's daemon log.
func DaemonLog(host string) string {
	b, _ := os.ReadFile(filepath.Join("/var/lib/sprite-lab/hosts", host, "state", "daemon.log"))
	return string(b)
}

// Contains reports whether s has every one of subs.
func Contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
