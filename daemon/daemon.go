// Package daemon is the sprite daemon that runs on every workstation.
//
// It owns the host's QUIC endpoint (package transport), the membership table
// (Members: who is in the cluster, up or down), the enrollment service when
// this host holds the CA key, and the local API on a unix socket for the
// CLI (package api). Later parts (the file system, the idle database, remote
// execution) register their methods on the same two muxes.
//
// Start-up order: identity, QUIC listener, membership, services (Service:
// the parts added by later packages), local socket (its appearance means the
// daemon is ready). Shutdown (SIGTERM or ctx) runs it backwards: the socket
// goes first so the CLI sees a clean "no daemon", then the services, then
// membership, then the QUIC node, which waits for every serving goroutine.
//
// Goroutines and their owners: Daemon.Run owns the membership loop and the
// local accept loop; transport.Node owns its accept and stream goroutines;
// localServer owns one goroutine per CLI connection.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"sprite/api"
	"sprite/pki"
	"sprite/rpc"
	"sprite/transport"
)

// MethodPing answers with this host's HostInfo; `sprite ping` uses it.
const MethodPing = "cluster.ping"

// Version is the sprite release; set at build time with -ldflags.
var Version = "dev"

// Daemon is a running sprite daemon.
type Daemon struct {
	cfg      *Config
	stateDir string
	log      *slog.Logger
	start    time.Time
	self     api.HostInfo

	Node    *transport.Node
	Members *Members
	// Mux serves other hosts; Local serves the CLI.
	Mux, Local *rpc.Mux

	services []Service // started in order, stopped in reverse
}

// Service is a part of the daemon with goroutines of its own (the file
// system, the idle database, the executor). Start registers its methods on
// the daemon's muxes and starts its goroutines, which end when ctx does;
// Stop waits for them. Services start after the QUIC node and membership and
// before the local socket appears, and stop in reverse order.
type Service interface {
	Name() string
	Start(ctx context.Context, d *Daemon) error
	Stop()
}

// Add registers a service; call it before Run.
func (d *Daemon) Add(s Service) { d.services = append(d.services, s) }

// Config is the daemon's configuration.
func (d *Daemon) Config() *Config { return d.cfg }

// Self is this host's description.
func (d *Daemon) Self() api.HostInfo { return d.self }

// StateDir is the daemon's state directory.
func (d *Daemon) StateDir() string { return d.stateDir }

// Log is the daemon's logger.
func (d *Daemon) Log() *slog.Logger { return d.log }

// New loads the identity and prepares a daemon without starting it.
func New(cfg *Config, stateDir string, log *slog.Logger) (*Daemon, error) {
	id, err := pki.LoadIdentity(stateDir)
	if err != nil {
		return nil, err
	}
	if id.Name != cfg.Name {
		return nil, fmt.Errorf("config name %q does not match the certificate's host %q; fix %s", cfg.Name, id.Name, filepath.Join(stateDir, ConfigFile))
	}
	cpus := cfg.CPUs
	if cpus <= 0 {
		cpus = DetectCPUs()
	}
	d := &Daemon{
		cfg: cfg, stateDir: stateDir, log: log, start: time.Now(),
		self: api.HostInfo{Name: cfg.Name, Addr: cfg.Addr, CPUs: cpus, Arch: runtime.GOARCH, Version: Version, Boot: time.Now().UnixNano()},
		Mux:  rpc.NewMux(), Local: rpc.NewMux(),
	}
	var joinMux *rpc.Mux
	auth, err := pki.LoadAuthority(stateDir)
	switch {
	case err == nil:
		joinMux = rpc.NewMux()
	case errors.Is(err, pki.ErrNotCA):
	default:
		return nil, fmt.Errorf("load CA: %w", err)
	}
	d.Node, err = transport.Listen(transport.Config{Identity: id, Listen: cfg.Listen, Mux: d.Mux, JoinMux: joinMux, Logger: log})
	if err != nil {
		return nil, err
	}
	d.Members = NewMembers(d.self, d.Node, cfg, stateDir, log)
	d.Mux.Handle(MethodHello, rpc.Unary(d.Members.Handle))
	d.Mux.Handle(MethodBye, rpc.Unary(d.Members.HandleBye))
	d.Mux.Handle(MethodPing, rpc.Unary(func(context.Context, rpc.Peer, struct{}) (api.HostInfo, error) {
		return d.self, nil
	}))
	if joinMux != nil {
		e := &enroller{auth: auth, members: d.Members, seed: cfg.Addr, idledb: cfg.IdleDB, log: log, now: time.Now}
		joinMux.Handle(MethodJoin, rpc.Unary(e.handle))
	}
	d.Local.Handle(api.MethodHosts, rpc.Unary(func(context.Context, rpc.Peer, struct{}) ([]api.HostStatus, error) {
		return d.Members.List(), nil
	}))
	d.Local.Handle(api.MethodStatus, rpc.Unary(d.status))
	return d, nil
}

func (d *Daemon) status(context.Context, rpc.Peer, struct{}) (api.Status, error) {
	return api.Status{Host: d.self, Uptime: int64(time.Since(d.start).Seconds()), Pid: os.Getpid(), Members: len(d.Members.List())}, nil
}

// Run serves until ctx is cancelled, then shuts down in order.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Node.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { d.Members.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	for i, s := range d.services {
		if err := s.Start(ctx, d); err != nil {
			cancel()
			d.stopServices(i)
			return fmt.Errorf("start %s: %w", s.Name(), err)
		}
	}
	defer d.stopServices(len(d.services))
	local, err := listenLocal(d.cfg.Socket, d.cfg.Name, d.Local, d.log)
	if err != nil {
		return err
	}
	pidFile := filepath.Join(filepath.Dir(d.cfg.Socket), "sprite.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	defer os.Remove(pidFile)

	wg.Go(func() { local.serve(ctx) })
	d.log.Info("sprite daemon ready", "addr", d.self.Addr, "listen", d.Node.Addr().String(),
		"cpus", d.self.CPUs, "arch", d.self.Arch, "socket", d.cfg.Socket, "version", Version)

	<-ctx.Done()
	d.log.Info("sprite daemon shutting down")
	local.close()
	os.Remove(d.cfg.Socket)
	cancel()
	d.Members.Leave(context.Background(), 500*time.Millisecond)
	return nil
}

// stopServices stops the first n services, last first.
func (d *Daemon) stopServices(n int) {
	for i := n - 1; i >= 0; i-- {
		d.services[i].Stop()
	}
}
