// Package daemon is the sprite daemon that runs on every workstation.
//
// It owns the host's QUIC endpoint (package transport), the membership table
// (Members: who is in the cluster, up or down), the enrollment service when
// this host holds the CA key, and the local API on a unix socket for the
// CLI (package api). Later parts (the file system, the idle database, remote
// execution) register their methods on the same two muxes.
//
// Start-up order: identity, QUIC listener, membership, local socket (its
// appearance means the daemon is ready). Shutdown (SIGTERM or ctx) runs it
// backwards: the socket goes first so the CLI sees a clean "no daemon", then
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
}

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
	d.Mux.Handle(MethodPing, rpc.Unary(func(context.Context, rpc.Peer, struct{}) (api.HostInfo, error) {
		return d.self, nil
	}))
	if joinMux != nil {
		e := &enroller{auth: auth, members: d.Members, seed: cfg.Addr, log: log, now: time.Now}
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
	local, err := listenLocal(d.cfg.Socket, d.cfg.Name, d.Local, d.log)
	if err != nil {
		return err
	}
	pidFile := filepath.Join(filepath.Dir(d.cfg.Socket), "sprite.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	defer os.Remove(pidFile)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { d.Members.Run(ctx) })
	wg.Go(func() { local.serve(ctx) })
	d.log.Info("sprite daemon ready", "addr", d.self.Addr, "listen", d.Node.Addr().String(),
		"cpus", d.self.CPUs, "arch", d.self.Arch, "socket", d.cfg.Socket, "version", Version)

	<-ctx.Done()
	d.log.Info("sprite daemon shutting down")
	local.close()
	os.Remove(d.cfg.Socket)
	cancel()
	wg.Wait()
	return nil
}
