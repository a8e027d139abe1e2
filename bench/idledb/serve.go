package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sprite/idledb"
	"sprite/pki"
	"sprite/rpc"
	"sprite/transport"
	"sprite/wire"
)

const (
	methodStats = "bench.stats"
	methodEcho  = "bench.echo" // an empty call: the transport's share of a grant
)

// stats is the database process's view, for the fleet to read.
type stats struct {
	CPUNs   int64     `cbor:"1,keyasint"` // user+system so far
	RSSKiB  int64     `cbor:"2,keyasint"`
	InDBNs  []float64 `cbor:"3,keyasint"` // p50, p99 of Request in the database since the last reset
	Up      int       `cbor:"4,keyasint"`
	Idle    int       `cbor:"5,keyasint"`
	Standng int       `cbor:"6,keyasint"` // hosts held by standing requesters
}

func serve(args []string) error {
	var p params
	if len(args) != 1 || json.Unmarshal([]byte(args[0]), &p) != nil {
		return fmt.Errorf("serve: bad parameters")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if path := os.Getenv("IDLEDB_BENCH_CPUPROFILE"); path != "" { // -serve-env IDLEDB_BENCH_CPUPROFILE=FILE
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	id, err := pki.LoadIdentity(filepath.Join(p.Dir, "idledb"))
	if err != nil {
		return err
	}
	db, err := idledb.Open(idledb.Options{Dir: filepath.Join(p.Dir, "db"), Heartbeat: p.Every, Lease: 10 * time.Second, Log: log})
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { db.Run(ctx) })

	mux := rpc.NewMux()
	idledb.Register(mux, db)
	// The fleet's hosts share connections: a connection's certificate
	// ("sim-007") may report for the hosts under its name ("sim-007-0042").
	mux.Handle(idledb.MethodReport, rpc.Unary(func(_ context.Context, peer rpc.Peer, r idledb.Report) (idledb.ReportReply, error) {
		if !strings.HasPrefix(r.Host, peer.Host+"-") {
			return idledb.ReportReply{}, rpc.Errorf(wire.CodePermission, "report for %q from %q", r.Host, peer.Host)
		}
		return db.Report(r.Host, r)
	}))
	mux.Handle(idledb.MethodReports, func(_ context.Context, c *rpc.Call) error {
		return idledb.ServeReports(c, p.Every, func(r idledb.Report) error {
			if !strings.HasPrefix(r.Host, c.Peer.Host+"-") {
				return rpc.Errorf(wire.CodePermission, "report for %q from %q", r.Host, c.Peer.Host)
			}
			_, err := db.Report(r.Host, r)
			return err
		})
	})
	var mu sync.Mutex
	var inDB []float64
	mux.Handle(idledb.MethodRequest, rpc.Unary(func(_ context.Context, peer rpc.Peer, q idledb.Request) (idledb.Grants, error) {
		t0 := time.Now()
		g, err := db.Request(peer.Host, q)
		d := float64(time.Since(t0))
		mu.Lock()
		inDB = append(inDB, d)
		mu.Unlock()
		return g, err
	}))
	mux.Handle(methodEcho, rpc.Unary(func(context.Context, rpc.Peer, struct{}) (struct{}, error) {
		return struct{}{}, nil
	}))
	mux.Handle(methodStats, rpc.Unary(func(context.Context, rpc.Peer, struct{}) (stats, error) {
		mu.Lock()
		lat := inDB
		inDB = nil
		mu.Unlock()
		var st stats
		st.CPUNs = cpuNs()
		st.RSSKiB = rssKiB()
		st.InDBNs = []float64{pct(lat, 50), pct(lat, 99)}
		st.Idle, st.Up = db.Idle()
		for _, f := range db.Hosts() {
			if strings.HasPrefix(f.GrantedTo, "requester/hold-") {
				st.Standng++
			}
		}
		return st, nil
	}))
	node, err := transport.Listen(transport.Config{Identity: id, Listen: p.Addr, Mux: mux, Logger: log})
	if err != nil {
		return err
	}
	defer node.Close()
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}

func cpuNs() int64 {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// pct is the q-th percentile of v (sorted in place).
func pct(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	i := int(float64(len(v)-1) * q / 100)
	return v[i]
}
