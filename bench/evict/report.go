package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The brief's goals: p99 keystroke→frozen and keystroke→all gone.
const (
	goalFrozen = 50 * time.Millisecond
	goalGone   = time.Second
)

// result is one job count's trials.
type result struct {
	jobs                  int
	trials                []trial
	failures              []string // failed trials, each followed by a new lab
	loadBefore, loadAfter string
}

// perTrial is f of every trial.
func (r result) perTrial(f func(trial) time.Duration) []time.Duration {
	var ds []time.Duration
	for _, t := range r.trials {
		ds = append(ds, f(t))
	}
	return ds
}

// perJob is f of every job of every trial, given its trial's keystroke.
func (r result) perJob(f func(e eviction, t0 int64) int64) []time.Duration {
	var ds []time.Duration
	for _, t := range r.trials {
		for _, e := range t.evs {
			ds = append(ds, time.Duration(f(e, t.t0.UnixNano())))
		}
	}
	return ds
}

// stats summarise durations: nearest-rank percentiles.
type stats struct {
	n                   int
	p50, p99, max, mean time.Duration
}

func summarize(ds []time.Duration) stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return stats{}
	}
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return stats{n: len(s), p50: pct(0.50), p99: pct(0.99), max: s[len(s)-1], mean: sum / time.Duration(len(s))}
}

// fmtMs writes a duration in milliseconds with a precision that suits it.
func fmtMs(d time.Duration) string {
	m := ms(d)
	switch {
	case m < -10 || m > 100:
		return fmt.Sprintf("%.0f", m)
	case m < -1 || m > 10:
		return fmt.Sprintf("%.1f", m)
	}
	return fmt.Sprintf("%.2f", m)
}

func (s stats) cells() string {
	return fmtMs(s.p50) + " | " + fmtMs(s.p99) + " | " + fmtMs(s.max)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// Each trial's figures, from its keystroke t0 (before `sprite lab type`).
var (
	allFrozen  = func(t trial) time.Duration { return t.frozen() }
	allGone    = func(t trial) time.Duration { return t.gone() }
	detected   = func(t trial) time.Duration { return t.input() }
	typeCmd    = func(t trial) time.Duration { return t.typed }
	fromT1     = func(t trial) time.Duration { return t.frozen() - t.typed }
	inputToAll = func(t trial) time.Duration { return t.frozen() - t.input() }
	frozenGone = func(t trial) time.Duration {
		var first int64
		for _, e := range t.evs {
			if first == 0 || e.FrozenNs < first {
				first = e.FrozenNs
			}
		}
		return t.gone() - time.Duration(first-t.t0.UnixNano())
	}
	jobFrozen = func(e eviction, t0 int64) int64 { return e.FrozenNs - t0 }
	jobGone   = func(e eviction, t0 int64) int64 { return e.GoneNs - t0 }
)

func render(m runMeta, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Eviction benchmark: owner keystroke to foreign work frozen and gone\n\n")
	fmt.Fprintf(&b, "Run %s on %s (%d CPUs, %s/%s): `sudo bash scripts/bench evict` (-trials %d; %s in all, waits for the shared lab lock included).\n",
		m.Date.UTC().Format("2006-01-02 15:04 UTC"), m.Host, m.CPUs, runtime.GOOS, runtime.GOARCH,
		m.Trials, m.Took.Round(time.Second))
	fmt.Fprintf(&b, "Machine load average (1, 5, 15 min): %s before, %s after", m.LoadBefore, m.LoadAfter)
	for _, r := range rs {
		fmt.Fprintf(&b, "; %d job(s): %s before, %s after", r.jobs, r.loadBefore, r.loadAfter)
	}
	fmt.Fprintf(&b, " (a busy machine inflates every figure).\n\n")
	fmt.Fprintf(&b, "A 3-host lab for each job count (`sprite lab up --hosts 3 --idle-after 1s`, no CPU quota). Each trial\n"+
		"starts N CPU-bound jobs (`sh -c 'while :; do :; done'`) from h1 as alice with `sprite mig -n --hold --host h2`,\n"+
		"waits until h1's `sprite ps` shows them running on h2, takes the keystroke time t0 on the machine and runs\n"+
		"`sprite lab type h2` (a key written into h2's console, a real terminal in h2). The times come from h2's\n"+
		"`sprite evictions --json` records (frozen_ns, gone_ns, input_ns; the lab's hosts share the machine's clock).\n"+
		"A trial's figure is its latest job's: all N frozen, all N gone. t0 is taken *before* the type command, so\n"+
		"its own runtime (a Go process start, the lab's state, a unix socket to h2's init, the write, the read back)\n"+
		"counts against sprite. The jobs then run again elsewhere; they are killed and h2 is idle again before the next trial.\n\n")

	fmt.Fprintf(&b, "Keystroke→all frozen and keystroke→all gone, per trial, in ms:\n\n")
	fmt.Fprintf(&b, "| jobs on h2 | trials | frozen p50 | frozen p99 | frozen max | gone p50 | gone p99 | gone max | gone mean | goal: p99 frozen ≤ 50 ms, gone ≤ 1 s |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rs {
		f, g := summarize(r.perTrial(allFrozen)), summarize(r.perTrial(allGone))
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | frozen %s, gone %s |\n", r.jobs, len(r.trials), f.cells(), g.cells(),
			fmtMs(g.mean), verdict(f.p99 <= goalFrozen), verdict(g.p99 <= goalGone))
	}
	fmt.Fprintf(&b, "\nThe goal column counts from t0, before `sprite lab type` starts; the tables below split that time.\n")
	b.WriteString(overGoal(rs))
	fmt.Fprintf(&b, "\nPeers (brief): Sprite evicted in 3 s on average; HTCondor takes minutes. The plot, evict.svg, has each\n"+
		"job count's distributions.\n\n![keystroke to frozen and gone, per job count](evict.svg)\n\n")

	fmt.Fprintf(&b, "## Where the time goes\n\nPer trial, p50 / p99 in ms:\n\n")
	fmt.Fprintf(&b, "| jobs | `sprite lab type` runtime | keystroke→detector's input time | input→all frozen | first frozen→all gone | all frozen from the type command's return (t1) |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|\n")
	pp := func(s stats) string { return fmtMs(s.p50) + " / " + fmtMs(s.p99) }
	for _, r := range rs {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", r.jobs, pp(summarize(r.perTrial(typeCmd))),
			pp(summarize(r.perTrial(detected))), pp(summarize(r.perTrial(inputToAll))),
			pp(summarize(r.perTrial(frozenGone))), pp(summarize(r.perTrial(fromT1))))
	}
	fmt.Fprintf(&b, "\nPer job (every job of every trial), p50 / p99 / max in ms, and where the evicted jobs ran again:\n\n")
	fmt.Fprintf(&b, "| jobs | job-trials | keystroke→frozen | keystroke→gone | how frozen | ran again on |\n|---:|---:|---:|---:|---|---|\n")
	for _, r := range rs {
		f, g := summarize(r.perJob(jobFrozen)), summarize(r.perJob(jobGone))
		hows, where := map[string]int{}, map[string]int{}
		for _, t := range r.trials {
			for _, e := range t.evs {
				hows[e.How]++
			}
			for _, h := range t.restarted {
				where[h]++
			}
		}
		fmt.Fprintf(&b, "| %d | %d | %s / %s / %s | %s / %s / %s | %s | %s |\n", r.jobs, f.n,
			fmtMs(f.p50), fmtMs(f.p99), fmtMs(f.max), fmtMs(g.p50), fmtMs(g.p99), fmtMs(g.max), counts(hows), counts(where))
	}
	for _, r := range rs {
		if len(r.failures) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%d job(s): %d trial(s) failed, each followed by a new lab (a trial measured before it failed counts):\n\n", r.jobs, len(r.failures))
		for _, f := range r.failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	b.WriteString(notes)
	return b.String()
}

// overGoal lists the trials over a goal, each with its time split at the
// moment h2's detector read the key: what the type command took to deliver
// it, and what sprite took from there.
func overGoal(rs []result) string {
	var b strings.Builder
	for _, r := range rs {
		var over []string
		for i, t := range r.trials {
			if t.frozen() <= goalFrozen && t.gone() <= goalGone {
				continue
			}
			over = append(over, fmt.Sprintf("trial %d: all frozen %s ms, all gone %s ms after t0; h2 read the key %s ms after t0 "+
				"(the type command ran %s ms), froze all %s ms after that",
				i+1, fmtMs(t.frozen()), fmtMs(t.gone()), fmtMs(t.input()), fmtMs(t.typed), fmtMs(t.frozen()-t.input())))
		}
		if len(over) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%d job(s): %d of %d trials over a goal:\n\n", r.jobs, len(over), len(r.trials))
		for _, o := range over {
			fmt.Fprintf(&b, "- %s\n", o)
		}
	}
	return b.String()
}

// counts writes a tally as "a 3, b 1", largest first.
func counts(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
