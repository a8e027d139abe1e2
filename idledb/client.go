package idledb

import (
	"context"
	"errors"
	"slices"
	"time"

	"sprite/api"
	"sprite/rpc"
	"sprite/transport"
	"sprite/wire"
)

// Client is the Go API to the idle database for the other parts of sprite
// (the idle reporter, placement, pmake's daemon side): on the database's
// own host it calls the DB in process, elsewhere over QUIC.
type Client struct {
	Self   string // this host
	DBHost string // the database's host ("" means none configured)
	Node   *transport.Node
	// Lookup finds a live host's address (daemon.Members.Lookup).
	Lookup func(name string) (api.HostInfo, bool)
	// Local returns the in-process database, or nil on other hosts.
	Local func() *DB
}

func (c *Client) local() *DB {
	if c.Local == nil || c.DBHost != c.Self {
		return nil
	}
	return c.Local()
}

func (c *Client) addr() (string, error) {
	if c.DBHost == "" {
		return "", ErrNoDatabase
	}
	info, ok := c.Lookup(c.DBHost)
	if !ok {
		return "", rpc.Errorf(wire.CodeUnavailable, "idle database host %s is down or not yet known; check `sprite hosts` and its daemon", c.DBHost)
	}
	return info.Addr, nil
}

func (c *Client) call(ctx context.Context, method string, args, reply any) error {
	addr, err := c.addr()
	if err != nil {
		return err
	}
	return c.Node.Call(ctx, c.DBHost, addr, method, args, reply)
}

// Report sends this host's idleness.
func (c *Client) Report(ctx context.Context, r Report) (ReportReply, error) {
	if db := c.local(); db != nil {
		return db.Report(c.Self, r)
	}
	var rep ReportReply
	return rep, c.call(ctx, MethodReport, r, &rep)
}

// openTimeout bounds opening a report stream.
const openTimeout = 3 * time.Second

// ReportStream carries this host's reports over one long-lived stream, so
// a report costs one message instead of a call.
type ReportStream struct {
	local  *DB // on the database's own host
	self   string
	s      *rpc.ClientStream
	cancel context.CancelFunc
	done   chan struct{} // closed when the database ended the stream
	err    error         // why; set before done is closed
}

// OpenReports opens a report stream to the database, which lives until
// Close or ctx ends; opening gives up after openTimeout. It fails with
// code 2 (no such method) against a database that predates report streams.
// The stream's reader goroutine ends with the stream.
func (c *Client) OpenReports(ctx context.Context) (*ReportStream, error) {
	if db := c.local(); db != nil {
		return &ReportStream{local: db, self: c.Self}, nil
	}
	addr, err := c.addr()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	give := time.AfterFunc(openTimeout, cancel)
	s, err := c.Node.Open(ctx, c.DBHost, addr, MethodReports, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	_, err = s.Recv() // the database's ReportReply
	if !give.Stop() && err == nil {
		err = context.DeadlineExceeded
	}
	if err != nil {
		err = s.Finish(nil)
		cancel()
		if err == nil {
			err = errors.New("idle database ended the report stream at once")
		}
		return nil, err
	}
	r := &ReportStream{s: s, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			if _, err := s.Recv(); err != nil {
				r.err = s.Finish(nil)
				if r.err == nil {
					r.err = errors.New("idle database ended the report stream")
				}
				return
			}
		}
	}()
	return r, nil
}

// Send sends one report; an error means the stream is dead: Close it and
// open another.
func (r *ReportStream) Send(rep Report) error {
	if r.local != nil {
		_, err := r.local.Report(r.self, rep)
		return err
	}
	select {
	case <-r.done:
		return r.err
	default:
	}
	return r.s.Send(rep)
}

// Close ends the stream and waits for its reader.
func (r *ReportStream) Close() {
	if r.local != nil {
		return
	}
	r.s.CloseSend()
	select {
	case <-r.done:
	case <-time.After(time.Second):
		r.cancel() // the database does not answer: drop the stream
		<-r.done
	}
	r.cancel()
}

// Request sets a standing demand for q.N idle hosts and returns what is
// granted now. Keep it alive with Renew, or use Hold.
func (c *Client) Request(ctx context.Context, q Request) (Grants, error) {
	if db := c.local(); db != nil {
		return db.Request(c.Self, q)
	}
	var g Grants
	return g, c.call(ctx, MethodRequest, q, &g)
}

// Renew extends the lease of requester id.
func (c *Client) Renew(ctx context.Context, id string) (Grants, error) {
	if db := c.local(); db != nil {
		return db.Renew(c.Self, id)
	}
	var g Grants
	return g, c.call(ctx, MethodRenew, Renew{ID: id}, &g)
}

// Release gives back hosts (none: all, and forgets the requester).
func (c *Client) Release(ctx context.Context, id string, hosts ...string) error {
	if db := c.local(); db != nil {
		return db.Release(c.Self, Release{ID: id, Hosts: hosts})
	}
	return c.call(ctx, MethodRelease, Release{ID: id, Hosts: hosts}, nil)
}

// Hosts returns every host's facts.
func (c *Client) Hosts(ctx context.Context) ([]HostFacts, error) {
	if db := c.local(); db != nil {
		return db.Hosts(), nil
	}
	var f []HostFacts
	return f, c.call(ctx, MethodHosts, nil, &f)
}

// History returns a host's idle periods.
func (c *Client) History(ctx context.Context, host string) ([]Period, error) {
	if db := c.local(); db != nil {
		return db.History(host)
	}
	var p []Period
	return p, c.call(ctx, MethodHistory, HistoryRequest{Host: host}, &p)
}

// Watch follows requester id's holding. The channel closes when the
// requester is gone, the database goes away, or ctx ends; the goroutine
// feeding it is owned by ctx.
func (c *Client) Watch(ctx context.Context, id string) (<-chan Grants, error) {
	if db := c.local(); db != nil {
		ch, stop, err := db.Watch(c.Self, id)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, stop)
		return ch, nil
	}
	return stream[Grants](ctx, c, MethodWatch, Renew{ID: id})
}

// WatchHosts follows changes of hosts' facts: the first message is every
// host, then the hosts that changed.
func (c *Client) WatchHosts(ctx context.Context) (<-chan []HostFacts, error) {
	if db := c.local(); db != nil {
		out := make(chan []HostFacts, 1)
		w := db.WatchHosts()
		go func() {
			defer close(out)
			defer w.Close()
			out <- db.Hosts()
			for {
				select {
				case <-ctx.Done():
					return
				case <-w.C():
					select {
					case out <- w.Take():
					case <-ctx.Done():
						return
					}
				}
			}
		}()
		return out, nil
	}
	return stream[[]HostFacts](ctx, c, MethodWatchHosts, nil)
}

// stream opens a streaming call and decodes its messages onto a channel.
func stream[T any](ctx context.Context, c *Client, method string, args any) (<-chan T, error) {
	addr, err := c.addr()
	if err != nil {
		return nil, err
	}
	s, err := c.Node.Open(ctx, c.DBHost, addr, method, args)
	if err != nil {
		return nil, err
	}
	out := make(chan T, 1)
	go func() {
		defer close(out)
		defer s.Finish(nil)
		for {
			f, err := s.Recv()
			if err != nil {
				return
			}
			var v T
			if wire.Unmarshal(f.Payload, &v) != nil {
				return
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Session is a standing request held by Hold.
type Session struct {
	// C receives the holding after every change; only the latest is kept
	// (events not yet read are joined). It closes when the session ends.
	C  <-chan Grants
	id string
	c  *Client
}

// Hold requests q and keeps the request alive until ctx ends: it renews
// the lease every third of it, follows grant changes, and requests again
// when the database lost the requester (its lease ran out) or restarted.
// When ctx ends it releases everything. The session's goroutine is owned
// by ctx; C closes when it has finished.
func (c *Client) Hold(ctx context.Context, q Request) *Session {
	out := make(chan Grants, 1)
	s := &Session{C: out, id: q.ID, c: c}
	go func() {
		defer close(out)
		c.hold(ctx, q, out)
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c.Release(rctx, q.ID)
		cancel()
	}()
	return s
}

// Release gives back some of the session's hosts.
func (s *Session) Release(ctx context.Context, hosts ...string) error {
	if len(hosts) == 0 {
		return nil // the whole session ends with its context
	}
	return s.c.Release(ctx, s.id, hosts...)
}

// sender hands holdings to a session's channel, skipping repeats that say
// nothing new (a watch's first message after a request).
type sender struct {
	out  chan Grants
	last []Grant
	sent bool
}

func (s *sender) send(g Grants) {
	if s.sent && g.Event == "" && slices.Equal(s.last, g.Hosts) {
		return
	}
	s.last, s.sent = g.Hosts, true
	latest(s.out, g)
}

func latest(out chan Grants, g Grants) {
	select {
	case old := <-out:
		if old.Event != "" && g.Event != "" {
			g.Event = old.Event + "; " + g.Event
		} else if g.Event == "" {
			g.Event = old.Event
		}
	default:
	}
	out <- g
}

func (c *Client) hold(ctx context.Context, q Request, out chan Grants) {
	const retry = time.Second
	snd := &sender{out: out}
	told := false
	for ctx.Err() == nil {
		g, err := c.Request(ctx, q)
		if err != nil {
			if !told && ctx.Err() == nil { // say once why nothing comes
				snd.send(Grants{ID: q.ID, Want: q.N, Hosts: []Grant{}, Event: "waiting for the idle database: " + err.Error()})
				told = true
			}
			sleep(ctx, retry)
			continue
		}
		told = false
		snd.send(g)
		wctx, cancel := context.WithCancel(ctx)
		ch, err := c.Watch(wctx, q.ID)
		if err != nil {
			cancel()
			sleep(ctx, retry)
			continue
		}
		c.follow(wctx, q.ID, ch, snd, time.Duration(g.LeaseMs)*time.Millisecond/3)
		cancel()
	}
}

// follow relays grant changes and renews the lease until the watch ends,
// the requester is unknown to the database, or ctx ends.
func (c *Client) follow(ctx context.Context, id string, ch <-chan Grants, snd *sender, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case g, ok := <-ch:
			if !ok {
				return
			}
			snd.send(g)
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, every)
			_, err := c.Renew(rctx, id)
			cancel()
			var re *rpc.Error
			if errors.As(err, &re) && re.Code == wire.CodeNotFound {
				return
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
