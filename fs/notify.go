package fs

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// notifier tells client hosts to drop cached names, attributes and data:
// those that may cache what changed (interest.go). Each client has a queue
// drained by one goroutine (owned by the notifier, ended by stop), so a
// slow or dead client delays only itself; pending items for one client
// coalesce. now and allNow deliver synchronously, for the cases where an
// acknowledgement must wait for the caches to be gone.
//
// notifier.mu and queue.mu are never held together, nor across a call.
// Server.mu may be held when notifier.mu is taken (a dropped handle
// unpins), never the other way round.
type notifier struct {
	send Sender
	log  *slog.Logger
	ctx  context.Context
	end  context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	items   map[Item]*cachers // guarded by mu; who may cache what (interest.go)
	sweepAt int               // guarded by mu; items' size that triggers a sweep
	queues  map[string]*queue // guarded by mu; by client host
	recent  map[Item]mark     // guarded by mu; who last changed an entry through this server
}

// mark says that client changed an entry at a time: the local-change event
// that follows is that client's own doing, and its cache already knows.
type mark struct {
	client string
	at     time.Time
}

// markFor is how long a change through the server masks its own inotify
// event from the client that made it.
const markFor = 2 * time.Second

type queue struct {
	mu      sync.Mutex
	pending map[Item]bool // guarded by mu
	wake    chan struct{}
	// added counts the items queued; sent is what added was when the
	// queue last emptied into a send that has ended (delivered or given
	// up); sentNow is closed, and replaced, each time sent moves. All
	// guarded by mu (flush).
	added, sent uint64
	sentNow     chan struct{}
}

const sendTimeout = 2 * time.Second

func newNotifier(send Sender, log *slog.Logger) *notifier {
	ctx, end := context.WithCancel(context.Background())
	return &notifier{send: send, log: log, ctx: ctx, end: end,
		items: map[Item]*cachers{}, sweepAt: interestSweep, queues: map[string]*queue{}, recent: map[Item]mark{}}
}

func (n *notifier) stop() { n.end(); n.wg.Wait() }

// mark records that client is about to change it through this server.
func (n *notifier) mark(client string, items ...Item) {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.recent) > 1<<16 {
		for it, m := range n.recent {
			if now.Sub(m.at) > markFor {
				delete(n.recent, it)
			}
		}
	}
	for _, it := range items {
		n.recent[it] = mark{client, now}
	}
}

// changed queues it, an entry changed on this host's disk, for every
// client that may cache it but the one that made the change through this
// server; entries says that the change is one of its directory's entries.
func (n *notifier) changed(it Item, entries bool) {
	except := ""
	n.mu.Lock()
	if m, ok := n.recent[it]; ok && time.Since(m.at) < markFor {
		except = m.client
	}
	n.mu.Unlock()
	if n.send == nil {
		return
	}
	for _, c := range n.cachersOf(it, entries, except) {
		q := n.queue(c)
		q.mu.Lock()
		q.pending[it] = true
		q.added++
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// allNow delivers it to every client that may cache it but except,
// waiting up to wait.
func (n *notifier) allNow(ctx context.Context, except string, it Item, wait time.Duration) {
	n.now(ctx, n.cachersOf(it, false, except), it, wait)
}

// now delivers it to clients in parallel and waits for them, up to wait.
func (n *notifier) now(ctx context.Context, clients []string, it Item, wait time.Duration) {
	n.deliver(ctx, clients, Invalidate{Items: []Item{it}}, wait)
}

// recall is now with Invalidate.Recall: the clients also send their
// write-behind data for it before they answer.
func (n *notifier) recall(ctx context.Context, clients []string, it Item, wait time.Duration) {
	n.deliver(ctx, clients, Invalidate{Items: []Item{it}, Recall: true}, wait)
}

func (n *notifier) deliver(ctx context.Context, clients []string, inv Invalidate, wait time.Duration) {
	if n.send == nil || len(clients) == 0 {
		return
	}
	it := inv.Items[0]
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			if err := n.send(ctx, c, inv); err != nil {
				n.log.Debug("fs: invalidation not delivered", "client", c, "path", it.Prefix+"/"+it.Path, "err", err)
			}
		})
	}
	wg.Wait()
}

func (n *notifier) queue(client string) *queue {
	n.mu.Lock()
	defer n.mu.Unlock()
	q := n.queues[client]
	if q == nil {
		q = &queue{pending: map[Item]bool{}, wake: make(chan struct{}, 1), sentNow: make(chan struct{})}
		n.queues[client] = q
		n.wg.Go(func() { n.drain(client, q) })
	}
	return q
}

// drain sends client's pending items until the notifier stops. A client
// that cannot be reached is forgotten (but for its open files) until it
// asks again.
func (n *notifier) drain(client string, q *queue) {
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-q.wake:
		}
		q.mu.Lock()
		items := make([]Item, 0, len(q.pending))
		for it := range q.pending {
			items = append(items, it)
			if len(items) == 1024 {
				break
			}
		}
		for _, it := range items {
			delete(q.pending, it)
		}
		more := len(q.pending) > 0
		upTo := q.added // all that was queued goes with this send, unless more
		q.mu.Unlock()
		if more {
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
		var err error
		if len(items) > 0 { // none: a wake for items an earlier send took
			ctx, cancel := context.WithTimeout(n.ctx, sendTimeout)
			err = n.send(ctx, client, Invalidate{Items: items})
			cancel()
		}
		if !more {
			q.mu.Lock()
			q.sent = upTo
			close(q.sentNow)
			q.sentNow = make(chan struct{})
			q.mu.Unlock()
		}
		if err != nil && n.ctx.Err() == nil {
			n.log.Debug("fs: invalidations not delivered; client forgotten until it comes back", "client", client, "items", len(items), "err", err)
			n.forget(client)
		}
	}
}

// flush waits until client's queue has sent what it held when flush was
// called (Server.Settle).
func (n *notifier) flush(ctx context.Context, client string) error {
	n.mu.Lock()
	q := n.queues[client]
	n.mu.Unlock()
	if q == nil {
		return nil // nothing was ever queued for client
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	target := q.added
	for q.sent < target {
		ch := q.sentNow
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			q.mu.Lock()
			return ctx.Err()
		}
		q.mu.Lock()
	}
	return nil
}
