package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"sprite/api"
	"sprite/pki"
	"sprite/rpc"
	"sprite/transport"
	"sprite/wire"
)

// MethodHello is the membership heartbeat between daemons.
const MethodHello = "cluster.hello"

// Hello is both the argument and the result of MethodHello: who I am and
// whom I know.
type Hello struct {
	From  api.HostInfo   `cbor:"1,keyasint"`
	Known []api.HostInfo `cbor:"2,keyasint,omitempty"`
}

// maxKnown bounds how many hosts one hello may carry.
const maxKnown = 4096

// member is what this host knows of another.
type member struct {
	info     api.HostInfo
	up       bool
	lastSeen time.Time
	rtt      time.Duration
	pinged   time.Time // the last hello this host sent it that was answered
}

// Members tracks the cluster: who exists, at which address, up or down.
// Every Heartbeat it says hello to each known host that has not said hello
// to it within the last 1.5 heartbeats (heardFrom); a host that has not
// answered for DownAfter is down. Hellos carry the sender's list, so a host
// that knows one seed soon knows everyone.
type Members struct {
	self      api.HostInfo
	node      *transport.Node
	log       *slog.Logger
	heartbeat time.Duration
	downAfter time.Duration
	seeds     []string
	peersFile string

	mu    sync.Mutex
	hosts map[string]*member // guarded by mu; by name, never self
}

// NewMembers makes the table and loads peers remembered from a previous run.
func NewMembers(self api.HostInfo, node *transport.Node, cfg *Config, stateDir string, log *slog.Logger) *Members {
	m := &Members{
		self: self, node: node, log: log, heartbeat: cfg.Heartbeat.Duration, downAfter: cfg.DownAfter.Duration,
		seeds: cfg.Seeds, peersFile: filepath.Join(stateDir, "peers.json"), hosts: map[string]*member{},
	}
	m.load()
	return m
}

// Handle answers a hello: the caller's identity comes from its certificate,
// and a host speaking for another name is refused.
func (m *Members) Handle(ctx context.Context, p rpc.Peer, h Hello) (Hello, error) {
	if h.From.Name != p.Host {
		m.log.Warn("refused hello: host claims another name", "peer", p.Host, "claims", h.From.Name, "remote", p.Addr)
		return Hello{}, rpc.Errorf(wire.CodePermission, "hello: your certificate is for %q but you said %q", p.Host, h.From.Name)
	}
	if err := checkInfo(h.From); err != nil {
		return Hello{}, rpc.Errorf(wire.CodeBadRequest, "hello: %v", err)
	}
	m.saw(h.From, 0)
	m.learn(h.Known)
	return Hello{From: m.self, Known: m.known()}, nil
}

func checkInfo(i api.HostInfo) error {
	if err := pki.ValidName(i.Name); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(i.Addr); err != nil {
		return fmt.Errorf("host %s: bad address %q", i.Name, i.Addr)
	}
	return nil
}

// saw records an answer from a host.
func (m *Members) saw(info api.HostInfo, rtt time.Duration) {
	if info.Name == m.self.Name {
		return
	}
	m.mu.Lock()
	e := m.hosts[info.Name]
	isNew := e == nil
	if isNew {
		e = &member{}
		m.hosts[info.Name] = e
	}
	wasUp := e.up
	e.info, e.up, e.lastSeen = info, true, time.Now()
	if rtt > 0 { // an answer to this host's hello
		e.rtt, e.pinged = rtt, e.lastSeen
	}
	m.mu.Unlock()
	if !wasUp {
		m.log.Info("host up", "host", info.Name, "addr", info.Addr, "cpus", info.CPUs, "arch", info.Arch)
	}
	if isNew {
		m.save()
	}
}

// learn adds hosts heard of from others; they count as down until they
// answer themselves.
func (m *Members) learn(known []api.HostInfo) {
	if len(known) > maxKnown {
		known = known[:maxKnown]
	}
	added := false
	m.mu.Lock()
	for _, k := range known {
		if k.Name == m.self.Name || checkInfo(k) != nil {
			continue
		}
		if e := m.hosts[k.Name]; e == nil {
			m.hosts[k.Name] = &member{info: k}
			added = true
		} else if !e.up && e.info.Addr != k.Addr {
			e.info.Addr = k.Addr
		}
	}
	m.mu.Unlock()
	if added {
		m.save()
	}
}

func (m *Members) known() []api.HostInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.HostInfo, 0, len(m.hosts))
	for _, e := range m.hosts {
		out = append(out, e.info)
	}
	return out
}

// List returns every host, this one first, then by name.
func (m *Members) List() []api.HostStatus {
	m.mu.Lock()
	out := []api.HostStatus{{HostInfo: m.self, State: api.StateUp, Self: true, LastSeen: time.Now().UnixMilli()}}
	for _, e := range m.hosts {
		st := api.HostStatus{HostInfo: e.info, State: api.StateDown, RTT: e.rtt.Microseconds()}
		if e.up {
			st.State = api.StateUp
		}
		if !e.lastSeen.IsZero() {
			st.LastSeen = e.lastSeen.UnixMilli()
		}
		out = append(out, st)
	}
	m.mu.Unlock()
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].Name < out[1+j].Name })
	return out
}

// Lookup returns the address of a host that is up.
func (m *Members) Lookup(name string) (api.HostInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.hosts[name]
	if e == nil || !e.up {
		return api.HostInfo{}, false
	}
	return e.info, true
}

// Run says hello to everyone every heartbeat until ctx ends.
func (m *Members) Run(ctx context.Context) {
	t := time.NewTicker(m.heartbeat)
	defer t.Stop()
	for {
		m.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round contacts the seeds while no host is known, then every known host.
func (m *Members) round(ctx context.Context) {
	var wg sync.WaitGroup
	if len(m.known()) == 0 {
		for _, s := range m.seeds {
			wg.Go(func() { m.trySeed(ctx, s) })
		}
		wg.Wait()
	}
	for _, k := range m.known() {
		if m.heardFrom(k.Name) {
			continue
		}
		wg.Go(func() { m.ping(ctx, k) })
	}
	wg.Wait()
	m.expire()
}

// heardFrom reports whether this host may leave name out of a round: of
// each pair of hosts, the one whose name sorts first says hello and the
// other answers, so a pair costs one call a heartbeat rather than two. The
// other says hello itself every rttEvery heartbeats (its round-trip time),
// and once it has heard nothing for 1.5 heartbeats
// (the first is down, slow or does not know it yet), so a host that
// dies is still found within down_after.
func (m *Members) heardFrom(name string) bool {
	if m.self.Name < name {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.hosts[name]
	return e != nil && e.up && time.Since(e.lastSeen) < m.heartbeat*3/2 &&
		time.Since(e.pinged) < rttEvery*m.heartbeat
}

// rttEvery is how many heartbeats a host that only answers waits before it
// says hello itself, to measure the round trip `sprite hosts` shows.
const rttEvery = 10

func (m *Members) trySeed(ctx context.Context, addr string) {
	if addr == m.self.Addr {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*m.heartbeat)
	defer cancel()
	name, err := m.node.Identify(ctx, addr)
	if err != nil {
		m.log.Debug("seed not reachable", "addr", addr, "err", err)
		return
	}
	m.ping(ctx, api.HostInfo{Name: name, Addr: addr})
}

func (m *Members) ping(ctx context.Context, k api.HostInfo) {
	ctx, cancel := context.WithTimeout(ctx, 2*m.heartbeat)
	defer cancel()
	start := time.Now()
	var rep Hello
	err := m.node.Call(ctx, k.Name, k.Addr, MethodHello, Hello{From: m.self, Known: m.known()}, &rep)
	if err != nil {
		// The connection stays: a slow answer is no proof it is dead,
		// and jobs and file calls may be under way on it. A dead one is
		// redialled by the next call; a restarted peer resets it.
		m.log.Debug("hello failed", "host", k.Name, "err", err)
		return
	}
	if rep.From.Name != k.Name || checkInfo(rep.From) != nil {
		m.log.Warn("bad hello reply", "host", k.Name, "says", rep.From.Name)
		return
	}
	m.saw(rep.From, time.Since(start))
	m.learn(rep.Known)
}

// expire marks hosts down that have not answered for downAfter.
func (m *Members) expire() {
	now := time.Now()
	m.mu.Lock()
	var down []string
	for n, e := range m.hosts {
		if e.up && now.Sub(e.lastSeen) > m.downAfter {
			e.up = false
			down = append(down, n)
		}
	}
	m.mu.Unlock()
	for _, n := range down {
		m.log.Warn("host down: no answer", "host", n, "for", m.downAfter)
	}
}

func (m *Members) save() {
	b, err := json.MarshalIndent(m.known(), "", "  ")
	if err == nil {
		err = pki.WriteFile(filepath.Dir(m.peersFile), filepath.Base(m.peersFile), b, 0o644)
	}
	if err != nil {
		m.log.Warn("could not remember peers", "file", m.peersFile, "err", err)
	}
}

func (m *Members) load() {
	b, err := os.ReadFile(m.peersFile)
	if err != nil {
		return
	}
	var known []api.HostInfo
	if err := json.Unmarshal(b, &known); err != nil {
		m.log.Warn("ignoring unreadable peers file", "file", m.peersFile, "err", err)
		return
	}
	m.learn(known)
}

// MethodBye tells a host that the caller is shutting down cleanly.
const MethodBye = "cluster.bye"

// HandleBye marks the caller down at once; its identity is its certificate.
func (m *Members) HandleBye(_ context.Context, p rpc.Peer, _ struct{}) (struct{}, error) {
	m.mu.Lock()
	e := m.hosts[p.Host]
	wasUp := e != nil && e.up
	if e != nil {
		e.up = false
	}
	m.mu.Unlock()
	if wasUp {
		m.log.Info("host down: it is shutting down", "host", p.Host)
	}
	m.node.Forget(p.Host)
	return struct{}{}, nil
}

// Leave says goodbye to every host that is up, waiting at most timeout, so
// that a clean shutdown shows at once instead of after down_after.
func (m *Members) Leave(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range m.List() {
		if h.Self || h.State != api.StateUp {
			continue
		}
		wg.Go(func() { m.node.Call(ctx, h.Name, h.Addr, MethodBye, nil, nil) })
	}
	wg.Wait()
}
