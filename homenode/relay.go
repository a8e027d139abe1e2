package homenode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"sprite/migrate"
	"sprite/rpc"
	"sprite/wire"
)

// maxHeld bounds the output a home holds for one attempt of a job with
// HoldOutput; past it the output is delivered and the job can no longer
// be restarted invisibly.
const maxHeld = 64 << 20

// How one attempt of a job ended.
const (
	endExit    = iota // the job exited: its exit is the job's
	endEvicted        // the home ended it to run it elsewhere
	endLost           // its target went away
)

type ending struct {
	kind int
	exit migrate.Exit
	why  string // for the restart notice and the log
}

// inputRelay copies the caller's stdin and control messages to the job's
// current target stream.
type inputRelay struct {
	mu    sync.Mutex
	ts    *rpc.ClientStream // guarded by mu; the current attempt's stream
	bytes int64             // guarded by mu; stdin bytes sent to any attempt
	eof   bool              // guarded by mu; the caller's stdin has ended
}

// run relays until the caller's stream ends; then cancel ends the job.
func (r *inputRelay) run(c *rpc.Call, cancel context.CancelFunc) {
	for {
		f, err := c.Recv()
		if err != nil {
			cancel()
			return
		}
		r.mu.Lock()
		switch f.Type {
		case wire.FrameData:
			r.bytes += int64(len(f.Payload))
			r.ts.SendData(f.Payload) // a dead attempt's stream: dropped, as its job is
		case wire.FrameMsg:
			var in migrate.Input
			if wire.Unmarshal(f.Payload, &in) == nil && in.Kind != migrate.InputSignal {
				r.eof = r.eof || in.Kind == migrate.InputEOF
				r.ts.Send(in)
			}
		}
		r.mu.Unlock()
	}
}

// switchTo makes ts the current stream (a restarted attempt); a caller
// whose stdin has already ended gets it ended there too.
func (r *inputRelay) switchTo(ts *rpc.ClientStream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ts = ts
	if r.eof {
		ts.Send(migrate.Input{Kind: migrate.InputEOF})
	}
}

// restartable reports whether the job may be run again from the start:
// it has not consumed input from home (output already delivered is the
// caller's to judge: jobs without HoldOutput get a notice line).
func (j *job) restartable() bool {
	j.in.mu.Lock()
	defer j.in.mu.Unlock()
	return j.in.bytes == 0
}

// relay copies one attempt's events to the caller until it ends. It acts
// on eviction: by the job's policy it ends the attempt (restart), or
// waits for the host to thaw it up to the grace period.
func (s *Service) relay(ctx context.Context, c *rpc.Call, j *job, ts *rpc.ClientStream, host string) ending {
	var held []migrate.Event
	heldBytes, gone := 0, false
	deliver := func(ev migrate.Event) {
		if !gone && c.Send(ev) != nil {
			gone = true // the caller left; its input relay cancels the job
		}
	}
	var grace *time.Timer
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	j.killing.Store(false)
	for {
		f, err := ts.Recv()
		if err == io.EOF {
			var exit migrate.Exit
			err = ts.Finish(&exit)
			switch {
			case j.killing.Load():
				return ending{kind: endEvicted, why: s.evictWhy(j, host)}
			case err != nil:
				return ending{kind: endLost, exit: s.lostExit(j.rec.ID, host, err), why: lostWhy(host, err)}
			}
			for _, ev := range held {
				deliver(ev)
			}
			return ending{kind: endExit, exit: exit}
		}
		if err != nil {
			ts.Finish(nil)
			if j.killing.Load() {
				return ending{kind: endEvicted, why: s.evictWhy(j, host)}
			}
			return ending{kind: endLost, exit: s.lostExit(j.rec.ID, host, err), why: lostWhy(host, err)}
		}
		var ev migrate.Event
		if f.Type != wire.FrameMsg || wire.Unmarshal(f.Payload, &ev) != nil {
			continue
		}
		switch ev.Kind {
		case migrate.EventStdout, migrate.EventStderr:
			if j.killing.Load() {
				continue // a dying attempt's output: its rerun prints it
			}
			if !j.req.HoldOutput || heldBytes+len(ev.Data) > maxHeld {
				for _, h := range held {
					deliver(h)
				}
				held, heldBytes = nil, 0
				deliver(ev)
				continue
			}
			ev.Data = append([]byte(nil), ev.Data...)
			held, heldBytes = append(held, ev), heldBytes+len(ev.Data)
		case migrate.EventFrozen:
			s.setState(j, migrate.StateFrozen)
			grace = s.onFrozen(ctx, c, j, host, ev, deliver)
		case migrate.EventThawed:
			s.setState(j, migrate.StateRunning)
			if grace != nil {
				grace.Stop()
			}
			s.log.Info("job resumed: its host is idle again", "id", j.rec.ID, "host", host)
		}
	}
}

// onFrozen decides, by the job's policy, what to do with a job its host
// froze; it may return a grace timer that ends the attempt later.
func (s *Service) onFrozen(ctx context.Context, c *rpc.Call, j *job, host string, ev migrate.Event, deliver func(migrate.Event)) *time.Timer {
	policy := j.req.Policy
	s.log.Info("job frozen by its host", "id", j.rec.ID, "host", host, "reason", ev.Reason, "policy", policy)
	if !j.restartable() {
		deliver(migrate.Event{Kind: migrate.EventNotice, Reason: fmt.Sprintf(
			"job %s is frozen on %s (%s); it has read input from home, so it cannot be rerun: it resumes when %s is idle again", j.rec.ID, host, ev.Reason, host)})
		return nil
	}
	switch policy {
	case "wait":
		grace := s.d.Config().EvictGrace.Duration
		return time.AfterFunc(grace, func() {
			s.log.Info("job still frozen after the grace period: restarting it", "id", j.rec.ID, "host", host, "grace", grace)
			s.endAttempt(ctx, j, host)
		})
	case "checkpoint":
		s.log.Warn("checkpoint not possible: restarting the job instead", "id", j.rec.ID, "host", host, "why", string(ev.Data))
	}
	s.endAttempt(ctx, j, host)
	return nil
}

// endAttempt kills the job's current attempt on host; relay then sees
// the attempt end as an eviction, and run starts the job again.
func (s *Service) endAttempt(ctx context.Context, j *job, host string) {
	j.killing.Store(true)
	if err := s.signalOn(ctx, host, j.rec.ID, syscall.SIGKILL); err != nil {
		s.log.Warn("could not kill an evicted job; its host kills it when the stream ends", "id", j.rec.ID, "host", host, "err", err)
	}
}

// signalOn sends a signal to a job on its target.
func (s *Service) signalOn(ctx context.Context, host, id string, sig syscall.Signal) error {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	args := migrate.SignalArgs{ID: id, Signal: int(sig)}
	if host == s.d.Self().Name {
		return rpc.Invoke(cctx, s.selfConn(cctx), migrate.MethodSignal, args, nil, wire.DefaultMaxFrame)
	}
	info, up := s.d.Members.Lookup(host)
	if !up {
		return fmt.Errorf("host %s is not up", host)
	}
	return s.d.Node.Call(cctx, host, info.Addr, migrate.MethodSignal, args, nil)
}

func (s *Service) evictWhy(j *job, host string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.moveTo != "" {
		return "moved by sprite migrate"
	}
	return "evicted from " + host + " (its owner returned)"
}

func lostWhy(host string, err error) string {
	var re *rpc.Error
	if errors.As(err, &re) {
		return fmt.Sprintf("%s ended it: %s", host, re.Message)
	}
	return "lost with " + host + " (" + err.Error() + ")"
}

func (s *Service) setState(j *job, state string) {
	s.mu.Lock()
	j.rec.State = state
	s.mu.Unlock()
}
