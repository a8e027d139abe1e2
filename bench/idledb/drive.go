package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sprite/api"
	"sprite/idledb"
	"sprite/pki"
	"sprite/transport"
)

// fleetHost is one simulated host.
type fleetHost struct {
	name  string
	act   string
	since time.Time
}

type driver struct {
	p       params
	db      string // the database's address
	reports atomic.Int64
	errs    atomic.Int64
	changes atomic.Int64

	mu        sync.Mutex
	reportLat []float64
	grantLat  []float64
	echoLat   []float64
	granted   []float64
}

func node(dir, name string) (*transport.Node, error) {
	id, err := pki.LoadIdentity(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return transport.Listen(transport.Config{Identity: id, Listen: "127.0.0.1:0", Logger: quiet})
}

func loadParams(args []string) (params, error) {
	var p params
	if len(args) != 1 || json.Unmarshal([]byte(args[0]), &p) != nil {
		return p, fmt.Errorf("bad parameters")
	}
	return p, nil
}

// fleetResult is what the fleet process counted.
type fleetResult struct {
	Reports     int64   `json:"reports"`
	Errs        int64   `json:"errors"`
	Changes     int64   `json:"changes"`
	Seconds     float64 `json:"seconds"`
	ReportP99us float64 `json:"report_p99_us"`
}

// runFleet is the fleet process: hosts report until SIGINT, then it prints
// what it counted since it said "ready" (after one period of warm-up).
func runFleet(args []string) error {
	p, err := loadParams(args)
	if err != nil {
		return err
	}
	d := &driver{p: p, db: p.Addr}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var wg sync.WaitGroup
	per := p.Hosts / p.Conns
	for i := range p.Conns {
		n, err := node(p.Dir, connName(i))
		if err != nil {
			return err
		}
		defer n.Close()
		hosts := make([]*fleetHost, per)
		for j := range hosts {
			h := &fleetHost{name: fmt.Sprintf("%s-%04d", connName(i), j), act: idledb.ActIdle,
				since: time.Now().Add(-time.Duration(rand.Int64N(int64(time.Hour))))}
			if rand.IntN(5) == 0 {
				h.act = idledb.ActActive
			}
			hosts[j] = h
		}
		wg.Go(func() { d.fleet(ctx, n, hosts) })
	}
	time.Sleep(p.Every + time.Second) // warm-up: every host has registered
	d.mu.Lock()
	d.reportLat = nil
	d.mu.Unlock()
	d.reports.Store(0)
	d.changes.Store(0)
	d.errs.Store(0)
	start := time.Now()
	fmt.Println("ready")
	<-ctx.Done()
	secs := time.Since(start).Seconds()
	wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return json.NewEncoder(os.Stdout).Encode(fleetResult{Reports: d.reports.Load(), Errs: d.errs.Load(),
		Changes: d.changes.Load(), Seconds: secs, ReportP99us: pct(d.reportLat, 99) / 1e3})
}

// drive is the requester process: standing requesters and a stream of
// grant requests for p.Duration, with the database's CPU read before and
// after.
func drive(args []string) error {
	p, err := loadParams(args)
	if err != nil {
		return err
	}
	d := &driver{p: p, db: p.Addr}
	req, err := node(p.Dir, "requester")
	if err != nil {
		return err
	}
	defer req.Close()
	before, err := d.stats(req)
	if err != nil {
		return err
	}
	start := time.Now()
	mctx, mcancel := context.WithTimeout(context.Background(), p.Duration)
	defer mcancel()
	hctx, hcancel := context.WithCancel(context.Background())
	var rq sync.WaitGroup
	for k := range p.Holders {
		rq.Go(func() { d.standing(hctx, req, k) })
	}
	requests := d.requests(mctx, req)
	after, err := d.stats(req)
	wall := time.Since(start)
	hcancel()
	rq.Wait()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	res := result{
		Requests:   requests,
		GrantP50us: pct(d.grantLat, 50) / 1e3, GrantP99us: pct(d.grantLat, 99) / 1e3, GrantMaxus: pct(d.grantLat, 100) / 1e3,
		InDBP50us: after.InDBNs[0] / 1e3, InDBP99us: after.InDBNs[1] / 1e3,
		CPUPercent: 100 * float64(after.CPUNs-before.CPUNs) / float64(wall),
		RSSMiB:     float64(after.RSSKiB) / 1024, HostsUp: after.Up, HostsIdle: after.Idle, StandingHeld: after.Standng,
		EchoP50us: pct(d.echoLat, 50) / 1e3, EchoP99us: pct(d.echoLat, 99) / 1e3,
	}
	sum := 0.0
	for _, g := range d.granted {
		sum += g
	}
	if len(d.granted) > 0 {
		res.Granted = sum / float64(len(d.granted))
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func (d *driver) stats(n *transport.Node) (stats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st stats
	err := n.Call(ctx, "idledb", d.db, methodStats, nil, &st)
	return st, err
}

// fleet reports for hosts over one connection, evenly spread over a period:
// each host over its own report stream, as a daemon does (or a call per
// report with -unary).
func (d *driver) fleet(ctx context.Context, n *transport.Node, hosts []*fleetHost) {
	var streams []*idledb.ReportStream
	if !d.p.Unary {
		c := &idledb.Client{DBHost: "idledb", Node: n,
			Lookup: func(string) (api.HostInfo, bool) { return api.HostInfo{Name: "idledb", Addr: d.db}, true }}
		for range hosts {
			rs, err := c.OpenReports(ctx)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench idledb: open a report stream: %v\n", err)
				d.errs.Add(1)
				return
			}
			defer rs.Close()
			streams = append(streams, rs)
		}
	}
	t := time.NewTicker(d.p.Every / time.Duration(len(hosts)))
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	time.Sleep(time.Duration(rand.Int64N(int64(d.p.Every / time.Duration(len(hosts))))))
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		j := i % len(hosts)
		h := hosts[j]
		now := time.Now()
		if rand.IntN(50) == 0 { // ~2% of reports change state
			if h.act == idledb.ActIdle {
				h.act = idledb.ActActive
			} else {
				h.act = idledb.ActIdle
			}
			h.since = now
			d.changes.Add(1)
		}
		r := idledb.Report{Host: h.name, CPUs: 4, Arch: "amd64", Activity: h.act, ForMs: now.Sub(h.since).Milliseconds(), Load: 0.1}
		if streams != nil {
			if err := streams[j].Send(r); err != nil {
				d.errs.Add(1)
			} else {
				d.reports.Add(1)
			}
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			t0 := time.Now()
			err := n.Call(cctx, "idledb", d.db, idledb.MethodReport, r, nil)
			lat := float64(time.Since(t0))
			if err != nil {
				if ctx.Err() == nil {
					d.errs.Add(1)
				}
				return
			}
			d.reports.Add(1)
			d.mu.Lock()
			d.reportLat = append(d.reportLat, lat)
			d.mu.Unlock()
		})
	}
}

// standing holds a large standing request, renewing it, until ctx ends.
func (d *driver) standing(ctx context.Context, n *transport.Node, k int) {
	id := fmt.Sprintf("hold-%d", k)
	n.Call(ctx, "idledb", d.db, idledb.MethodRequest, idledb.Request{ID: id, N: d.p.Hold, User: "bench"}, nil)
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n.Call(rctx, "idledb", d.db, idledb.MethodRelease, idledb.Release{ID: id}, nil)
			cancel()
			return
		case <-t.C:
			n.Call(ctx, "idledb", d.db, idledb.MethodRenew, idledb.Renew{ID: id}, nil)
		}
	}
}

// requests asks for N hosts Rate times a second and releases them.
func (d *driver) requests(ctx context.Context, n *transport.Node) int {
	t := time.NewTicker(time.Second / time.Duration(d.p.Rate))
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	count := 0
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return count
		case <-t.C:
		}
		count++
		id := fmt.Sprintf("r-%d", i)
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var g idledb.Grants
			t0 := time.Now()
			err := n.Call(cctx, "idledb", d.db, idledb.MethodRequest, idledb.Request{ID: id, N: d.p.N, User: "bench"}, &g)
			lat := float64(time.Since(t0))
			if err != nil {
				return
			}
			d.mu.Lock()
			d.grantLat = append(d.grantLat, lat)
			d.granted = append(d.granted, float64(len(g.Hosts)))
			d.mu.Unlock()
			n.Call(cctx, "idledb", d.db, idledb.MethodRelease, idledb.Release{ID: id}, nil)
			t0 = time.Now()
			if n.Call(cctx, "idledb", d.db, methodEcho, nil, nil) == nil {
				lat := float64(time.Since(t0))
				d.mu.Lock()
				d.echoLat = append(d.echoLat, lat)
				d.mu.Unlock()
			}
		})
	}
}
