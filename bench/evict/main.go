// Command evict measures eviction: how long after the owner of a host
// presses a key its foreign work is frozen, and how long until it is gone:
//
//	sudo bash scripts/bench evict    (or bin/bench-evict -trials 100 -jobs 1,4,16)
//
// For each job count N it brings up a 3-host lab with bin/sprite (built by
// scripts/setup; `sprite lab up --hosts 3 --idle-after 1s`, no CPU quota):
// h1 is the home, h2 the target whose owner types, h3 an idle host where
// evicted jobs restart. Each trial:
//
//  1. starts N CPU-bound jobs from h1 as alice in /home/alice, one
//     `sprite mig -n --hold --host h2 -- sh -c 'while :; do :; done'` each,
//     and waits until h1's `sprite ps --json` shows the N running on h2;
//  2. takes t0 = time.Now() on the machine (the lab's hosts share its
//     clock) and runs `sprite lab type h2`, which writes a key into h2's
//     console (a real terminal in h2) and returns once it was read; t1 is
//     taken when the command returns;
//  3. polls h2's `sprite evictions --json` (from 250 ms after the
//     keystroke on, so as not to compete with the eviction) until each of
//     the N jobs has a new record with gone_ns: keystroke→frozen is
//     frozen_ns - t0 and keystroke→gone is gone_ns - t0, per job and per
//     trial (the latest of its N jobs: all foreign work frozen, all gone);
//  4. waits until the N jobs run again elsewhere (h3 or home), kills them
//     (`sprite kill -KILL`), and waits until h1 lists no job and sees h2
//     idle again.
//
// The keystroke time is t0, before the type command starts: the command's
// own runtime (a process start, the lab's state file, a unix socket to h2's
// init, the write and the read back) counts against sprite. The detector's
// own view of the keystroke (input_ns) is reported beside it.
//
// It prints a table, writes docs/bench/evict.md with the machine's load and
// docs/bench/evict.svg (the latencies' distributions); -raw also keeps every
// measurement as JSON, and -render FILE writes the report and the plot
// again from such a file without running anything. Only one lab may
// exist on the machine, and others queue on /tmp/sprite-lab.lock: each job
// count holds that lock around its own lab (up, trials, down), and for no
// more than about -max-hold at a time (a new lab goes on with the rest of
// the trials), so a long run lets others in between. When an ancestor
// already holds it (`flock /tmp/sprite-lab.lock sudo bash scripts/bench
// evict`), the run is under that lock throughout. Each lab is torn down when
// its trials end, also on failure or interrupt.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sprite/bench/internal/benchlab"
)

const hostsDir = "/var/lib/sprite-lab/hosts"

// maxFailures is how many failed trials a job count tolerates (each one
// goes on in a new lab) before the run gives up.
const maxFailures = 3

func main() {
	trials := flag.Int("trials", 100, "trials per job count")
	jobs := flag.String("jobs", "1,4,16", "the job counts, comma-separated")
	out := flag.String("out", "docs/bench/evict.md", "where to write the results (the plot goes beside it, .svg)")
	sprite := flag.String("sprite", "bin/sprite", "the sprite binary")
	lock := flag.String("lock", "/tmp/sprite-lab.lock", "the `file` to flock around each lab ('' to take none)")
	maxHold := flag.Duration("max-hold", 8*time.Minute, "hold a lab (and its lock) at most about this long, then let others in and go on in a new one")
	raw := flag.String("raw", "", "also write every measurement to this JSON `file`")
	from := flag.String("render", "", "run nothing: write the report and the plot from a -raw `file`")
	flag.Parse()
	counts, err := parseCounts(*jobs)
	switch {
	case err != nil:
	case *from != "":
		var meta runMeta
		var rs []result
		if meta, rs, err = readRaw(*from); err == nil {
			err = report(meta, rs, *out)
		}
	default:
		err = orchestrate(*sprite, *lock, counts, *trials, *maxHold, *out, *raw)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench evict: %v\n", err)
		os.Exit(1)
	}
}

func parseCounts(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-jobs %q: want positive job counts separated by commas, like 1,4,16", s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func orchestrate(sprite, lock string, counts []int, trials int, maxHold time.Duration, out, raw string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs root: run with sudo (sudo bash scripts/bench evict)")
	}
	if trials < 1 {
		return fmt.Errorf("-trials %d: want at least 1", trials)
	}
	// A copy of its own: every lab of the run gets the same binary, even
	// when bin/sprite is rebuilt meanwhile.
	b, err := os.ReadFile(sprite)
	if err != nil {
		return fmt.Errorf("sprite binary: %w (build it: go build -o bin/sprite ./cmd/sprite)", err)
	}
	dir, err := os.MkdirTemp("", "sprite-bench-evict")
	if err != nil {
		return fmt.Errorf("a directory for the sprite binary: %w", err)
	}
	defer os.RemoveAll(dir)
	sprite = filepath.Join(dir, "sprite")
	if err := os.WriteFile(sprite, b, 0o755); err != nil {
		return fmt.Errorf("copy the sprite binary: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	loadBefore := benchlab.Loadavg()
	host, _ := os.Hostname()
	meta := func() runMeta {
		return runMeta{Date: start, Host: host, CPUs: runtime.NumCPU(), Trials: trials,
			LoadBefore: loadBefore, LoadAfter: benchlab.Loadavg(), Took: time.Since(start)}
	}
	var results []result
	for _, n := range counts {
		r, err := phase(ctx, sprite, lock, n, trials, maxHold)
		if err != nil {
			return fmt.Errorf("%d job(s): %w", n, err)
		}
		results = append(results, r)
		if raw != "" { // after each job count, so that a failed run keeps what it measured
			if err := writeRaw(raw, meta(), results); err != nil {
				fmt.Fprintf(os.Stderr, "bench evict: %v\n", err)
			}
		}
	}
	return report(meta(), results, out)
}

// report prints the results and writes them to out, and the plot beside.
func report(meta runMeta, results []result, out string) error {
	doc := render(meta, results)
	fmt.Print(doc)
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("write the results: %w", err)
	}
	svg := strings.TrimSuffix(out, filepath.Ext(out)) + ".svg"
	if err := os.WriteFile(svg, []byte(plot(results)), 0o644); err != nil {
		return fmt.Errorf("write the plot: %w", err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", out, svg)
	return nil
}

// phase runs the trials of one job count. It holds the lab lock from
// before its lab comes up until after it is down, for at most about
// maxHold at a time: then it tears the lab down, lets others in and goes
// on in a new lab.
func phase(ctx context.Context, sprite, lock string, n, trials int, maxHold time.Duration) (result, error) {
	r := result{jobs: n, loadBefore: benchlab.Loadavg()}
	for len(r.trials) < trials {
		if err := labRun(ctx, sprite, lock, &r, trials, maxHold); err != nil {
			return r, err
		}
	}
	r.loadAfter = benchlab.Loadavg()
	return r, nil
}

// labRun brings up a lab and runs trials in it until r has enough, or it
// has held the lab lock for maxHold.
func labRun(ctx context.Context, sprite, lock string, r *result, trials int, maxHold time.Duration) (err error) {
	unlock, err := flockFile(ctx, lock)
	if err != nil {
		return err
	}
	defer unlock()
	held := time.Now()
	fmt.Fprintf(os.Stderr, "== %d job(s), trials %d..%d: lab up (3 hosts, idle after 1s)\n", r.jobs, len(r.trials)+1, trials)
	benchlab.Run(sprite, "lab", "down")
	if err := benchlab.Run(sprite, "lab", "up", "--hosts", "3", "--idle-after", "1s"); err != nil {
		benchlab.Down(sprite)
		return fmt.Errorf("lab up: %w", err)
	}
	defer func() {
		if derr := benchlab.Down(sprite); derr != nil && err == nil {
			err = derr
		}
		fmt.Fprintf(os.Stderr, "== lab down after holding the lab lock for %v\n", time.Since(held).Round(time.Second))
	}()
	l := &labHosts{sprite: sprite}
	if err := l.waitReady(ctx); err != nil {
		return err
	}
	for len(r.trials) < trials && time.Since(held) < maxHold {
		i := len(r.trials) + 1
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before trial %d: %w", i, err)
		}
		tr, err := l.trial(ctx, r.jobs)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("trial %d: %w", i, err)
		}
		if err != nil {
			// The lab's state is unknown: go on in a new one. A trial
			// whose eviction was measured before it failed still counts.
			first, _, _ := strings.Cut(err.Error(), "\n")
			r.failures = append(r.failures, fmt.Sprintf("trial %d (measured: %v): %s", i, tr.measured, first))
			fmt.Fprintf(os.Stderr, "  trial %3d failed: %v\n%s", i, err, logTails())
			if len(r.failures) > maxFailures {
				return fmt.Errorf("%d trials failed, the last: %w", len(r.failures), err)
			}
			if tr.measured {
				r.trials = append(r.trials, tr)
			}
			return nil
		}
		r.trials = append(r.trials, tr)
		fmt.Fprintf(os.Stderr, "  trial %3d: frozen %6.2f ms, gone %6.1f ms (type cmd %5.1f ms, detector +%5.1f ms; %s)\n",
			i, ms(tr.frozen()), ms(tr.gone()), ms(tr.typed), ms(tr.input()), strings.Join(tr.steps, ", "))
	}
	return nil
}

// logTails is the end of each host's daemon log, for a failed trial.
func logTails() string {
	var b strings.Builder
	for _, h := range []string{"h1", "h2", "h3"} {
		log, err := os.ReadFile(filepath.Join(hostsDir, h, "state", "daemon.log"))
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "--- %s's daemon.log (end):\n%s", h, benchlab.Tail(log, 15))
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
