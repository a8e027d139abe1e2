package fs

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// notifier tells client hosts to drop cached names, attributes and data.
// Each client has a queue drained by one goroutine (owned by the notifier,
// ended by stop), so a slow or dead client delays only itself; pending
// items for one client coalesce. now and allNow deliver synchronously, for
// the cases where an acknowledgement must wait for the caches to be gone.
//
// notifier.mu and queue.mu are never held together, nor across a call.
type notifier struct {
	send Sender
	log  *slog.Logger
	ctx  context.Context
	end  context.CancelFunc
	wg   sync.WaitGroup

	mu       sync.Mutex
	interest map[string]map[string]bool // guarded by mu; prefix -> client hosts that asked
	queues   map[string]*queue          // guarded by mu; by client host
	recent   map[Item]mark              // guarded by mu; who last changed an entry through this server
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
}

const sendTimeout = 2 * time.Second

func newNotifier(send Sender, log *slog.Logger) *notifier {
	ctx, end := context.WithCancel(context.Background())
	return &notifier{send: send, log: log, ctx: ctx, end: end,
		interest: map[string]map[string]bool{}, queues: map[string]*queue{}, recent: map[Item]mark{}}
}

func (n *notifier) stop() { n.end(); n.wg.Wait() }

// interested records that client uses prefix, so it hears of changes.
func (n *notifier) interested(prefix, client string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.interest[prefix]
	if m == nil {
		m = map[string]bool{}
		n.interest[prefix] = m
	}
	m[client] = true
}

func (n *notifier) clients(prefix, except string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for c := range n.interest[prefix] {
		if c != except {
			out = append(out, c)
		}
	}
	return out
}

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
// interested client but the one that made the change through this server.
func (n *notifier) changed(it Item) {
	except := ""
	n.mu.Lock()
	if m, ok := n.recent[it]; ok && time.Since(m.at) < markFor {
		except = m.client
	}
	n.mu.Unlock()
	n.all(it.Prefix, except, it)
}

// all queues it for every interested client but except.
func (n *notifier) all(prefix, except string, it Item) {
	if n.send == nil {
		return
	}
	for _, c := range n.clients(prefix, except) {
		q := n.queue(c)
		q.mu.Lock()
		q.pending[it] = true
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// allNow delivers it to every interested client but except, waiting up to
// wait.
func (n *notifier) allNow(ctx context.Context, prefix, except string, it Item, wait time.Duration) {
	n.now(ctx, n.clients(prefix, except), it, wait)
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
		q = &queue{pending: map[Item]bool{}, wake: make(chan struct{}, 1)}
		n.queues[client] = q
		n.wg.Go(func() { n.drain(client, q) })
	}
	return q
}

// drain sends client's pending items until the notifier stops. A client
// that cannot be reached loses its interest: it asks again, and so becomes
// interested again, when it next uses the domain.
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
		q.mu.Unlock()
		if more {
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
		ctx, cancel := context.WithTimeout(n.ctx, sendTimeout)
		err := n.send(ctx, client, Invalidate{Items: items})
		cancel()
		if err != nil && n.ctx.Err() == nil {
			n.log.Debug("fs: invalidations not delivered; client forgotten until it comes back", "client", client, "items", len(items), "err", err)
			n.forget(client)
		}
	}
}

func (n *notifier) forget(client string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.interest {
		delete(m, client)
	}
}
