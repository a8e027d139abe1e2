package idle

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Activities: why a host is or is not idle.
const (
	ActIdle   = "idle"   // lendable
	ActActive = "active" // owner input within the threshold
	ActBusy   = "busy"   // non-foreign load at or above the host's CPUs
	ActNever  = "never"  // the owner said never
)

// Config configures a Detector.
type Config struct {
	IdleAfter   time.Duration // no input for this long (default 30s)
	CPUs        float64       // the host's CPUs (load threshold)
	StateDir    string        // where the owner's policy lives
	LoadSource  string        // LoadProc (default) or LoadAvg
	LoadTau     time.Duration // decay of the proc load (default 10s)
	SampleEvery time.Duration // load sampling period (default 1s)
	Paths       Paths         // input devices (default DefaultPaths)
	Proc        string        // /proc
	// ForeignFilter, if set, says whether a pid is foreign work, which
	// does not count as load.
	ForeignFilter func(pid int) bool
	Log           *slog.Logger
}

func (c *Config) setDefaults() {
	if c.IdleAfter <= 0 {
		c.IdleAfter = 30 * time.Second
	}
	if c.CPUs <= 0 {
		c.CPUs = 1
	}
	if c.LoadSource == "" {
		c.LoadSource = LoadProc
	}
	if c.LoadTau <= 0 {
		c.LoadTau = 10 * time.Second
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = time.Second
	}
	if c.Paths == (Paths{}) {
		c.Paths = DefaultPaths
	}
	if c.Proc == "" {
		c.Proc = "/proc"
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// State is the host's idleness at one moment.
type State struct {
	Idle     bool
	Activity string    // ActIdle, ActActive, ActBusy, ActNever
	Since    time.Time // when Activity began
	// LastInput is the last owner input seen (zero: none since boot).
	LastInput   time.Time
	Load        float64
	CPUs        float64
	ForeignJobs int
	Policy      Policy
}

// IdleFor is how long the host has been idle at now (0 if it is not).
func (s State) IdleFor(now time.Time) time.Duration {
	if !s.Idle {
		return 0
	}
	return now.Sub(s.Since)
}

// Detector follows owner input and load and says when the host is idle.
type Detector struct {
	cfg   Config
	input *inputWatch
	load  *loadMeter

	mu       sync.Mutex
	st       State                   // guarded by mu
	loadBusy bool                    // guarded by mu; the hysteresis latch
	timer    *time.Timer             // guarded by mu; re-evaluates at the threshold
	subs     map[chan State]struct{} // guarded by mu
	onInput  []func(time.Time)       // guarded by mu; called by Touch outside mu
	stopped  bool                    // guarded by mu; Run has ended: arm no timer
}

// New prepares a detector: it opens inotify, watches the devices present
// now, estimates the last input from their access times and loads the
// owner's policy. Run starts it.
func New(cfg Config) (*Detector, error) {
	cfg.setDefaults()
	if cfg.LoadSource != LoadProc && cfg.LoadSource != LoadAvg {
		return nil, fmt.Errorf("idle load source %q: use %q or %q", cfg.LoadSource, LoadProc, LoadAvg)
	}
	pol, err := LoadPolicy(cfg.StateDir)
	if err != nil {
		cfg.Log.Warn("using the default idle policy", "err", err)
	}
	d := &Detector{cfg: cfg, subs: map[chan State]struct{}{}}
	d.load = &loadMeter{source: cfg.LoadSource, proc: cfg.Proc, self: os.Getpid(), tau: cfg.LoadTau, foreign: cfg.ForeignFilter}
	d.input, err = newInputWatch(cfg.Paths, d.Touch)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	d.st = State{CPUs: cfg.CPUs, Policy: pol, LastInput: d.input.lastAccess(), Since: now}
	if d.st.LastInput.After(now) {
		d.st.LastInput = now
	}
	d.load.prime()
	d.st.Load = d.load.avg
	d.loadBusy = d.st.Load >= cfg.CPUs
	d.mu.Lock()
	d.evaluateLocked(now)
	d.mu.Unlock()
	return d, nil
}

// Run follows input and load until ctx ends.
func (d *Detector) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { d.input.run(ctx) })
	wg.Go(func() { d.sampleLoad(ctx) })
	<-ctx.Done()
	wg.Wait()
	d.mu.Lock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
}

func (d *Detector) sampleLoad(ctx context.Context) {
	t := time.NewTicker(d.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			v, err := d.load.sample(now)
			if err != nil {
				d.cfg.Log.Warn("cannot read the load; keeping the last value", "err", err)
				continue
			}
			d.mu.Lock()
			d.st.Load = v
			switch {
			case !d.loadBusy && v >= d.cfg.CPUs:
				d.loadBusy = true
			case d.loadBusy && v < d.cfg.CPUs/2:
				d.loadBusy = false
			}
			d.evaluateLocked(time.Now())
			d.mu.Unlock()
		}
	}
}

// Touch records owner input at t (the inotify reader and Hooks call it),
// then runs the OnInput functions.
func (d *Detector) Touch(t time.Time) {
	d.mu.Lock()
	if t.After(d.st.LastInput) {
		d.st.LastInput = t
	}
	d.evaluateLocked(t)
	fns := d.onInput
	d.mu.Unlock()
	for _, f := range fns {
		f(t)
	}
}

// OnInput makes f run after every owner input (the executor freezes
// foreign work there: every input counts, not only the one that makes
// the host active). f runs on the input reader's goroutine without the
// detector's lock, so it must be quick and must not call back into Touch.
func (d *Detector) OnInput(f func(time.Time)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onInput = append(d.onInput, f)
}

// evaluateLocked recomputes the state at now, tells subscribers of a
// change, and arms the timer for the moment input gets old enough.
func (d *Detector) evaluateLocked(now time.Time) {
	act := ActIdle
	quietAt := d.st.LastInput.Add(d.cfg.IdleAfter)
	switch {
	case d.st.Policy.Mode == ModeNever:
		act = ActNever
	case !d.st.LastInput.IsZero() && now.Before(quietAt):
		act = ActActive
	case d.loadBusy:
		act = ActBusy
	}
	if act == ActActive {
		d.armLocked(quietAt.Sub(now))
	}
	if act == d.st.Activity {
		return
	}
	since := now
	if d.st.Activity == "" && act == ActIdle && !d.st.LastInput.IsZero() && quietAt.Before(now) {
		since = quietAt // first evaluation: idle since the input got old
	}
	d.st.Activity, d.st.Idle, d.st.Since = act, act == ActIdle, since
	d.cfg.Log.Debug("idle state", "activity", act, "load", d.st.Load)
	d.notifyLocked()
}

func (d *Detector) armLocked(after time.Duration) {
	if d.stopped {
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(after, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.evaluateLocked(time.Now())
		})
		return
	}
	d.timer.Reset(after)
}

func (d *Detector) notifyLocked() {
	for ch := range d.subs {
		select {
		case <-ch: // drop the stale state: the latest wins
		default:
		}
		ch <- d.st
	}
}

// State returns the current state.
func (d *Detector) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// Subscribe returns a channel that receives the state after every change
// (only the latest is kept), and a function that ends the subscription.
func (d *Detector) Subscribe() (<-chan State, func()) {
	ch := make(chan State, 1)
	d.mu.Lock()
	d.subs[ch] = struct{}{}
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		delete(d.subs, ch)
		d.mu.Unlock()
	}
}

// SetPolicy applies and persists the owner's policy.
func (d *Detector) SetPolicy(p Policy) error {
	if err := p.Check(); err != nil {
		return err
	}
	if err := SavePolicy(d.cfg.StateDir, p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.Policy = p
	before := d.st.Activity
	d.evaluateLocked(time.Now())
	if d.st.Activity == before {
		d.notifyLocked() // the policy travels with every report
	}
	return nil
}

// SetForeignJobs records how many foreign jobs run here (the executor
// calls it); it is reported, not used to decide idleness.
func (d *Detector) SetForeignJobs(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.ForeignJobs == n {
		return
	}
	d.st.ForeignJobs = n
	d.notifyLocked()
}

// Ignore stops (on) or resumes (off) treating reads of a terminal as owner
// input: for terminals that foreign work reads.
func (d *Detector) Ignore(path string, on bool) { d.input.ignore(path, on) }

// Watched lists the input devices being watched.
func (d *Detector) Watched() []string { return d.input.watched() }

// Hook is a desktop idle source (such as logind's IdleHint): it calls
// touch whenever it learns of owner activity, until ctx ends.
type Hook func(ctx context.Context, touch func(time.Time))

// RunHook runs h until ctx ends; the caller owns the goroutine.
func (d *Detector) RunHook(ctx context.Context, h Hook) { h(ctx, d.Touch) }
