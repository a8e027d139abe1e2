package idledb

import (
	"errors"
	"time"
)

// grantSub is one watcher of a requester's grants: a channel of one, the
// latest holding wins, and events not yet taken are joined so none is lost.
type grantSub struct {
	ch     chan Grants
	closed bool
}

func (s *grantSub) sendLocked(g Grants) {
	if s.closed {
		return
	}
	select {
	case old := <-s.ch:
		if old.Event != "" && g.Event != "" {
			g.Event = old.Event + "; " + g.Event
		} else if g.Event == "" {
			g.Event = old.Event
		}
	default:
	}
	s.ch <- g
}

func (s *grantSub) closeLocked() {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// tellLocked sends r's holding and what changed to its watchers.
func (db *DB) tellLocked(r *requester, event string) {
	if len(r.subs) == 0 {
		return
	}
	g := db.grantsLocked(r, event)
	for s := range r.subs {
		s.sendLocked(g)
	}
}

// ErrNoRequester means Watch was called for a requester that does not
// exist (yet, or any more).
var ErrNoRequester = errors.New("no such requester; request hosts first")

// Watch follows requester id of host from: the channel receives its holding
// after every change (a grant, a withdrawal and why) and is closed when the
// requester is gone. Call stop when done.
func (db *DB) Watch(from, id string) (<-chan Grants, func(), error) {
	rid, err := requesterID(from, id)
	if err != nil {
		return nil, nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	r := db.reqs[rid]
	if r == nil {
		return nil, nil, ErrNoRequester
	}
	s := &grantSub{ch: make(chan Grants, 1)}
	r.subs[s] = struct{}{}
	s.sendLocked(db.grantsLocked(r, ""))
	return s.ch, func() {
		db.mu.Lock()
		defer db.mu.Unlock()
		delete(r.subs, s)
		s.closeLocked()
	}, nil
}

// HostWatch follows changes of hosts' facts (activity, grant, foreign
// jobs, up/down; not every load figure). Changes are coalesced per host:
// a slow reader sees the latest facts of every host that changed, never a
// backlog.
type HostWatch struct {
	db      *DB
	c       chan struct{}
	pending map[string]struct{} // guarded by db.mu
}

// WatchHosts starts a HostWatch; Close it when done.
func (db *DB) WatchHosts() *HostWatch {
	w := &HostWatch{db: db, c: make(chan struct{}, 1), pending: map[string]struct{}{}}
	db.mu.Lock()
	db.hostSubs[w] = struct{}{}
	db.mu.Unlock()
	return w
}

// C is signalled when Take has something.
func (w *HostWatch) C() <-chan struct{} { return w.c }

// Take returns the current facts of the hosts changed since the last Take.
func (w *HostWatch) Take() []HostFacts {
	db := w.db
	db.mu.Lock()
	defer db.mu.Unlock()
	now := db.opts.Now()
	out := make([]HostFacts, 0, len(w.pending))
	for n := range w.pending {
		if h := db.hosts[n]; h != nil {
			out = append(out, factsLocked(h, now))
		}
	}
	clear(w.pending)
	sortFacts(out)
	return out
}

// Close ends the watch.
func (w *HostWatch) Close() {
	w.db.mu.Lock()
	delete(w.db.hostSubs, w)
	w.db.mu.Unlock()
}

// markLocked notes that h's facts changed.
func (db *DB) markLocked(h *host, _ time.Time) {
	for w := range db.hostSubs {
		w.pending[h.rec.Name] = struct{}{}
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
}
