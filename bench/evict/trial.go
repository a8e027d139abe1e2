package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"sprite/bench/internal/benchlab"
)

const (
	home   = "h1" // alice's home, where the jobs start
	target = "h2" // the host whose owner types
	spare  = "h3" // an idle host for the evicted jobs
)

// firstLook is how long after the keystroke the target's eviction records
// are first read.
const firstLook = 250 * time.Millisecond

// spin is the job: a CPU-bound shell loop.
const spin = "while :; do :; done"

// psJob is one object of `sprite ps --json`.
type psJob struct {
	ID    string `json:"id"`
	Host  string `json:"host"`
	State string `json:"state"`
}

// eviction is one object of `sprite evictions --json`.
type eviction struct {
	ID       string `json:"id"`
	InputNs  int64  `json:"input_ns"`
	StartNs  int64  `json:"start_ns"`
	FrozenNs int64  `json:"frozen_ns"`
	GoneNs   int64  `json:"gone_ns"`
	How      string `json:"how"`
}

// hostRow is one object of `sprite hosts --json`.
type hostRow struct {
	Name        string  `json:"name"`
	State       string  `json:"state"`
	Activity    string  `json:"activity"`
	Load        float64 `json:"load"`
	ForeignJobs int     `json:"foreign_jobs"`
}

// trial is one keystroke and the N jobs it evicted.
type trial struct {
	t0        time.Time     // just before `sprite lab type`
	typed     time.Duration // how long `sprite lab type` took
	evs       []eviction    // one per job
	restarted []string      // where each job ran again
	steps     []string      // how long each step of the trial took, for the log
	measured  bool          // the eviction is measured (whatever came after)
}

// step notes that the step what ended now, since the last one.
func (t *trial) step(what string, since *time.Time) {
	now := time.Now()
	t.steps = append(t.steps, fmt.Sprintf("%s %.2fs", what, now.Sub(*since).Seconds()))
	*since = now
}

// frozen is keystroke→all frozen: the latest job's.
func (t trial) frozen() time.Duration { return t.latest(func(e eviction) int64 { return e.FrozenNs }) }

// gone is keystroke→all gone.
func (t trial) gone() time.Duration { return t.latest(func(e eviction) int64 { return e.GoneNs }) }

// input is keystroke→the detector's input time (the same for every job).
func (t trial) input() time.Duration { return t.latest(func(e eviction) int64 { return e.InputNs }) }

func (t trial) latest(f func(eviction) int64) time.Duration {
	var m int64
	for _, e := range t.evs {
		m = max(m, f(e))
	}
	return time.Duration(m - t.t0.UnixNano())
}

// labHosts runs sprite commands in the lab.
type labHosts struct {
	sprite string
}

// exec runs argv on host as user ("" for root) and returns its stdout.
func (l *labHosts) exec(ctx context.Context, host, user string, argv ...string) ([]byte, error) {
	args := []string{"lab", "exec", host}
	if user != "" {
		args = append(args, "--user", user)
	}
	cmd := exec.CommandContext(ctx, l.sprite, append(append(args, "--"), argv...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s on %s: %w: %s", strings.Join(argv, " "), host, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

func (l *labHosts) json(ctx context.Context, v any, host, user string, argv ...string) error {
	out, err := l.exec(ctx, host, user, argv...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("%s on %s: %w: %q", strings.Join(argv, " "), host, err, out)
	}
	return nil
}

// ps is alice's jobs as her home lists them.
func (l *labHosts) ps(ctx context.Context) ([]psJob, error) {
	var js []psJob
	return js, l.json(ctx, &js, home, "alice", "sprite", "ps", "--json")
}

func (l *labHosts) evictions(ctx context.Context) ([]eviction, error) {
	var evs []eviction
	return evs, l.json(ctx, &evs, target, "", "sprite", "evictions", "--json")
}

func (l *labHosts) hosts(ctx context.Context) (map[string]hostRow, error) {
	var rows []hostRow
	if err := l.json(ctx, &rows, home, "", "sprite", "hosts", "--json"); err != nil {
		return nil, err
	}
	m := map[string]hostRow{}
	for _, r := range rows {
		m[r.Name] = r
	}
	return m, nil
}

// poll calls f every period until it reports done or fails, or timeout;
// what names the wait in the error, and f's last word says why it waits.
func poll(ctx context.Context, what string, timeout, period time.Duration, f func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, why, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v (%s)", what, timeout, why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(period):
		}
	}
}

// waitReady waits until h1 sees every host up and the target and the
// spare idle, with alice's home on h1.
func (l *labHosts) waitReady(ctx context.Context) error {
	if _, err := l.exec(ctx, home, "alice", "test", "-d", "/home/alice"); err != nil {
		return fmt.Errorf("alice's home on %s: %w", home, err)
	}
	return poll(ctx, "the lab's hosts up and idle as "+home+" sees them", 60*time.Second, 250*time.Millisecond, func() (bool, string, error) {
		hs, err := l.hosts(ctx)
		if err != nil {
			return false, err.Error(), nil // the daemon may still be starting
		}
		for _, h := range []string{home, target, spare} {
			if hs[h].State != "up" {
				return false, fmt.Sprintf("%s is %q", h, hs[h].State), nil
			}
		}
		for _, h := range []string{target, spare} {
			if hs[h].Activity != "idle" {
				return false, fmt.Sprintf("%s is %q", h, hs[h].Activity), nil
			}
		}
		return true, "", nil
	})
}

// trial starts n jobs on the target, types there and measures the
// eviction, then cleans up for the next trial.
func (l *labHosts) trial(ctx context.Context, n int) (t trial, err error) {
	script := fmt.Sprintf(`cd /home/alice || exit 1
i=0
while [ $i -lt %d ]; do
	i=$((i+1))
	sprite mig -n --hold --host %s -- sh -c '%s' &
done
wait`, n, target, spin)
	starter := exec.Command(l.sprite, "lab", "exec", home, "--user", "alice", "--", "sh", "-c", script)
	starter.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer // read once the starter has ended
	starter.Stdout, starter.Stderr = &out, &out
	if err := starter.Start(); err != nil {
		return t, fmt.Errorf("start the jobs: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- starter.Wait() }()
	last := time.Now()
	defer func() {
		if cerr := l.cleanup(ctx, &t, &last, exited, starter.Process.Pid); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			err = fmt.Errorf("%w\nthe jobs' `sprite mig` said: %s", err, benchlab.Tail(out.Bytes(), 10))
		}
	}()

	// 1. n jobs running on the target.
	var ids []string
	err = poll(ctx, fmt.Sprintf("%d job(s) running on %s", n, target), 30*time.Second, 100*time.Millisecond, func() (bool, string, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, "", fmt.Errorf("the jobs' `sprite mig` ended before they ran: %v", err)
		default:
		}
		js, err := l.ps(ctx)
		if err != nil {
			return false, "", err
		}
		ids = ids[:0]
		for _, j := range js {
			if j.Host == target && j.State == "running" {
				ids = append(ids, j.ID)
			}
		}
		return len(ids) == n && len(js) == n, fmt.Sprintf("ps: %v", js), nil
	})
	if err != nil {
		return t, err
	}
	t.step("started", &last)

	// 2. The keystroke.
	t.t0 = time.Now()
	typeOut, err := exec.CommandContext(ctx, l.sprite, "lab", "type", target).CombinedOutput()
	t.typed = time.Since(t.t0)
	if err != nil {
		return t, fmt.Errorf("sprite lab type %s: %w: %s", target, err, bytes.TrimSpace(typeOut))
	}

	// 3. Every job frozen and gone, by the target's records. The first
	// look waits a little: each look is a `sprite lab exec` (three process
	// starts), which would compete for the CPUs with the eviction.
	select {
	case <-ctx.Done():
		return t, ctx.Err()
	case <-time.After(firstLook):
	}
	err = poll(ctx, fmt.Sprintf("%d eviction record(s) with gone_ns on %s", n, target), 20*time.Second, 100*time.Millisecond, func() (bool, string, error) {
		evs, err := l.evictions(ctx)
		if err != nil {
			return false, "", err
		}
		t.evs = t.evs[:0]
		for _, e := range evs {
			if e.StartNs >= t.t0.UnixNano() && e.GoneNs > 0 && slices.Contains(ids, e.ID) {
				t.evs = append(t.evs, e)
			}
		}
		return len(t.evs) == n, fmt.Sprintf("jobs %v; records since the keystroke: %d gone of %v", ids, len(t.evs), evs), nil
	})
	if err != nil {
		return t, err
	}
	t.step("evicted", &last)
	for _, e := range t.evs {
		if e.InputNs == 0 {
			return t, fmt.Errorf("%s's eviction of %s has no input time: it was not the owner's keystroke (%+v)", target, e.ID, e)
		}
	}

	// 4. Every job running again elsewhere.
	err = poll(ctx, "the evicted jobs running again off "+target, 30*time.Second, 100*time.Millisecond, func() (bool, string, error) {
		js, err := l.ps(ctx)
		if err != nil {
			return false, "", err
		}
		t.restarted = t.restarted[:0]
		for _, j := range js {
			if j.State == "running" && j.Host != target {
				t.restarted = append(t.restarted, j.Host)
			}
		}
		return len(t.restarted) == n, fmt.Sprintf("ps: %v", js), nil
	})
	if err == nil {
		t.step("restarted", &last)
		t.measured = true
	}
	return t, err
}

// cleanup kills alice's jobs, waits for their `sprite mig`s (the starter)
// to end and for the target to be idle again.
func (l *labHosts) cleanup(ctx context.Context, t *trial, last *time.Time, exited chan error, pgid int) error {
	err := poll(ctx, "alice's jobs killed", 30*time.Second, 200*time.Millisecond, func() (bool, string, error) {
		js, err := l.ps(ctx)
		if err != nil {
			return false, "", err
		}
		if len(js) == 0 {
			return true, "", nil
		}
		args := []string{"sprite", "kill", "-KILL"}
		for _, j := range js {
			args = append(args, j.ID)
		}
		l.exec(ctx, home, "alice", args...) // a job may end meanwhile
		return false, fmt.Sprintf("ps: %v", js), nil
	})
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
		if err == nil {
			err = fmt.Errorf("the jobs' `sprite mig`s did not end within 10s of their jobs' kill")
		}
	}
	if err != nil {
		return err
	}
	t.step("killed", last)
	var seen []string // why it waited, for the log
	defer func() { t.step("idle"+waited(seen), last) }()
	// Only h2's idleness, not its foreign job count: that count can stay
	// wrong after jobs end at once (migrate's Executor.foreign computes it
	// under its lock but reports it after, so two reports can cross).
	return poll(ctx, target+" idle again", 30*time.Second, 200*time.Millisecond, func() (bool, string, error) {
		hs, err := l.hosts(ctx)
		if err != nil {
			return false, "", err
		}
		why := fmt.Sprintf("%s %s, load %.2f, %d foreign job(s)", target, hs[target].Activity, hs[target].Load, hs[target].ForeignJobs)
		if hs[target].Activity != "idle" {
			seen = append(seen, why)
		}
		return hs[target].Activity == "idle", why, nil
	})
}

// waited summarises why a wait waited: the first and last reasons.
func waited(seen []string) string {
	switch len(seen) {
	case 0:
		return ""
	case 1:
		return " (" + seen[0] + ")"
	}
	return fmt.Sprintf(" (%s ... %s, %d looks)", seen[0], seen[len(seen)-1], len(seen))
}
