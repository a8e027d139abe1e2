package migrate

import (
	"context"
	"sync"
	"syscall"
	"time"

	"sprite/idle"
)

// Eviction on the target: the moment the idle detector sees the owner's
// input, every foreign job here is frozen by this daemon alone (no network
// round trip before it), and each job's home is told on the job's stream
// (EventFrozen). The home decides what happens next (package homenode):
// restart elsewhere (it kills the frozen job), wait for the host to be idle
// again (the executor thaws it: EventThawed), or checkpoint (not available
// where `criu check` fails: restart).

// maxEvictions is how many eviction records the executor keeps.
const maxEvictions = 1000

// Eviction is one job evicted from this host, with the moments that
// measure the owner's experience (unix ns): the input that caused it
// (0 for `sprite evict`), the job frozen, the job gone.
type Eviction struct {
	ID      string `cbor:"1,keyasint" json:"id"`
	Home    string `cbor:"2,keyasint" json:"home"`
	Reason  string `cbor:"3,keyasint" json:"reason"`
	InputNs int64  `cbor:"4,keyasint,omitempty" json:"input_ns,omitempty"`
	// StartNs is when the executor began freezing.
	StartNs  int64  `cbor:"5,keyasint" json:"start_ns"`
	FrozenNs int64  `cbor:"6,keyasint" json:"frozen_ns"`
	GoneNs   int64  `cbor:"7,keyasint,omitempty" json:"gone_ns,omitempty"`
	Thawed   bool   `cbor:"8,keyasint,omitempty" json:"thawed,omitempty"`
	How      string `cbor:"9,keyasint" json:"how"` // "cgroup freezer" or "SIGSTOP"
}

// onInput evicts on every owner input (called by the idle detector on its
// input goroutine: freezing is local and quick).
func (e *Executor) onInput(t time.Time) {
	e.Evict("the owner of "+e.d.Self().Name+" returned", t)
}

// watchOwner thaws waiting jobs when the host is idle again, until ctx
// ends.
func (e *Executor) watchOwner(ctx context.Context, det *idle.Detector) {
	ch, stop := det.Subscribe()
	defer stop()
	prev := det.State().Activity
	for {
		select {
		case <-ctx.Done():
			return
		case st := <-ch:
			if st.Activity == idle.ActIdle && prev != idle.ActIdle {
				e.thawAll()
			}
			prev = st.Activity
		}
	}
}

// Evict freezes every foreign job here and tells their homes. It returns
// once all are frozen; it makes no network call before that.
func (e *Executor) Evict(reason string, input time.Time) int {
	start := time.Now()
	e.mu.Lock()
	var js []*job
	for _, j := range e.jobs {
		if j.started && !j.home && !j.frozen {
			j.frozen = true
			js = append(js, j)
		}
	}
	e.mu.Unlock()
	if len(js) == 0 {
		return 0
	}
	recs := make([]Eviction, len(js))
	var wg sync.WaitGroup
	for i, j := range js {
		wg.Go(func() {
			how := "cgroup freezer"
			if j.cg == nil || j.cg.Freeze() != nil {
				how = "SIGSTOP"
				syscall.Kill(-j.pid, syscall.SIGSTOP)
			}
			recs[i] = Eviction{ID: j.spec.ID, Home: j.spec.Home, Reason: reason, StartNs: start.UnixNano(),
				FrozenNs: time.Now().UnixNano(), How: how}
			if !input.IsZero() {
				recs[i].InputNs = input.UnixNano()
			}
		})
	}
	wg.Wait()
	e.mu.Lock()
	for _, r := range recs {
		e.evictions = append(e.evictions, r)
	}
	if n := len(e.evictions); n > maxEvictions {
		e.evictions = append([]Eviction(nil), e.evictions[n-maxEvictions:]...)
	}
	e.mu.Unlock()
	for _, r := range recs {
		e.log.Info("evicted foreign job: frozen", "id", r.ID, "home", r.Home, "reason", reason, "how", r.How,
			"freeze", time.Duration(r.FrozenNs-r.StartNs), "since_input", sinceInput(r))
	}
	// Tell the homes; a slow stream must not hold up the others.
	for _, j := range js {
		e.wg.Go(func() {
			ev := Event{Kind: EventFrozen, Host: e.d.Self().Name, Reason: reason}
			if why := e.checkpointUnavailable(); why != "" {
				ev.Data = []byte("checkpoint unavailable here: " + why)
			}
			j.out.send(ev)
		})
	}
	return len(js)
}

func sinceInput(r Eviction) time.Duration {
	if r.InputNs == 0 {
		return 0
	}
	return time.Duration(r.FrozenNs - r.InputNs)
}

// thawAll resumes the frozen jobs still here (their homes chose to wait).
func (e *Executor) thawAll() {
	e.mu.Lock()
	var js []*job
	for _, j := range e.jobs {
		if j.frozen {
			j.frozen = false
			js = append(js, j)
		}
	}
	for i := range e.evictions {
		for _, j := range js {
			if e.evictions[i].ID == j.spec.ID && e.evictions[i].GoneNs == 0 {
				e.evictions[i].Thawed = true
			}
		}
	}
	e.mu.Unlock()
	for _, j := range js {
		if j.cg == nil || j.cg.Thaw() != nil {
			syscall.Kill(-j.pid, syscall.SIGCONT)
		}
		e.log.Info("foreign job thawed: this host is idle again", "id", j.spec.ID, "home", j.spec.Home)
		e.wg.Go(func() { j.out.send(Event{Kind: EventThawed, Host: e.d.Self().Name}) })
	}
}

// gone records when an evicted job left this host.
func (e *Executor) gone(id string) {
	now := time.Now().UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.evictions) - 1; i >= 0; i-- {
		if r := &e.evictions[i]; r.ID == id && r.GoneNs == 0 {
			r.GoneNs = now
			e.log.Info("evicted foreign job gone", "id", id, "after_freeze", time.Duration(now-r.FrozenNs))
			return
		}
	}
}

// Evictions returns the recent eviction records, oldest first.
func (e *Executor) Evictions() []Eviction {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Eviction(nil), e.evictions...)
}
