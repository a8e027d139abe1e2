// Package transport carries sprite's calls between hosts over QUIC with
// mutual TLS.
//
// Every host holds a certificate signed by the cluster CA (package pki). A
// server requires a client certificate from the same CA, valid now and meant
// for client auth; a client checks that the server's certificate names the
// host it meant to reach. A peer's identity is the host name in its
// certificate, never anything it says about itself.
//
// One UDP socket (a quic.Transport) both listens and dials. Each call is one
// bidirectional QUIC stream (package rpc); streaming calls keep theirs open.
// Outgoing connections are pooled per host name and dialled again when they
// die. A unary call (Call) runs on an idle kept stream of the pooled
// connection when there is one (rpc.InvokeKept) and leaves its stream idle
// for the next: up to maxIdleStreams per host, dropped with their
// connection. Between two processes on this lab that took a small call
// from about 310–370 µs to 200–225 µs (bench/transport). Keep-alives every KeepAlive and an idle timeout of IdleTimeout detect a
// dead peer within seconds; a peer that restarted on the same port says so
// at once with a stateless reset (reset.go). A call that fails, even by
// timing out, leaves the pooled connection alone: other calls may be under
// way on it, and a dead one is redialled by the next call anyway.
//
// A second ALPN, JoinALPN, is served without a client certificate, only for
// the enrollment method; a joining host pins the CA by the hash in its
// token instead.
//
// Lock order: Node.mu, then poolEntry.mu. Node.mu is never held across a
// dial or a call; poolEntry.mu is held across a dial to its host (one dial
// per host at a time), never across a call.
package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"sprite/pki"
	"sprite/rpc"
	"sprite/wire"
)

// ALPN protocol names; the number is the protocol's major version.
const (
	ALPN     = "sprite/1"
	JoinALPN = "sprite-join/1"
)

// Application error codes used when closing a connection.
const (
	codeShutdown  quic.ApplicationErrorCode = 0
	codeProtocol  quic.ApplicationErrorCode = 1
	codeForbidden quic.ApplicationErrorCode = 2
)

// Config configures a Node.
type Config struct {
	Identity *pki.Identity
	// Listen is the UDP address to listen on, e.g. ":7170".
	Listen string
	// Mux serves calls from authenticated hosts.
	Mux *rpc.Mux
	// JoinMux, if set, serves calls on JoinALPN from hosts without a
	// certificate; it must only hold the enrollment method.
	JoinMux *rpc.Mux
	Logger  *slog.Logger
	// MaxFrame bounds frame payloads (default wire.DefaultMaxFrame).
	MaxFrame int
	// KeepAlive (default 1s) and IdleTimeout (default 5s) detect dead peers.
	KeepAlive   time.Duration
	IdleTimeout time.Duration
	// DialTimeout bounds one connection attempt (default 3s).
	DialTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxFrame <= 0 {
		c.MaxFrame = wire.DefaultMaxFrame
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 3 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Mux == nil {
		c.Mux = rpc.NewMux()
	}
}

// Node is one host's QUIC endpoint: a listener and a pool of connections to
// other hosts.
type Node struct {
	cfg  Config
	udp  *net.UDPConn
	tr   *quic.Transport
	ln   *quic.Listener
	log  *slog.Logger
	ctx  context.Context // cancelled by Close; parent of every serving goroutine
	stop context.CancelFunc
	wg   sync.WaitGroup // serving goroutines

	mu    sync.Mutex
	pool  map[string]*poolEntry   // guarded by mu; by host name
	inbox map[*quic.Conn]struct{} // guarded by mu; accepted connections
}

// Flow-control windows. A stream starts with room for a whole 1 MiB
// reply, so a call's answer never waits for a window update; the
// connection starts with room for many such streams at once (quic-go's
// default, 768 KiB, would stall the second of two parallel 1 MiB reads
// for a round trip). Both grow, up to their maximum, when the reader
// keeps up.
const (
	initialStreamWindow = 1 << 20
	maxStreamWindow     = 16 << 20
	initialConnWindow   = 16 << 20
	maxConnWindow       = 64 << 20
)

func (n *Node) quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           n.cfg.DialTimeout,
		MaxIdleTimeout:                 n.cfg.IdleTimeout,
		KeepAlivePeriod:                n.cfg.KeepAlive,
		MaxIncomingStreams:             1 << 14,
		InitialStreamReceiveWindow:     initialStreamWindow,
		MaxStreamReceiveWindow:         maxStreamWindow,
		InitialConnectionReceiveWindow: initialConnWindow,
		MaxConnectionReceiveWindow:     maxConnWindow,
	}
}

// Listen starts a Node listening on cfg.Listen.
func Listen(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.Identity == nil {
		return nil, errors.New("transport: no identity; run `sprite init` or `sprite join` first")
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w (is another sprite daemon running?)", cfg.Listen, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg, udp: udp, tr: &quic.Transport{Conn: udp, StatelessResetKey: resetKey(cfg.Identity)}, log: cfg.Logger,
		ctx: ctx, stop: stop, pool: map[string]*poolEntry{}, inbox: map[*quic.Conn]struct{}{},
	}
	n.ln, err = n.tr.Listen(n.serverTLS(), n.quicConfig())
	if err != nil {
		udp.Close()
		stop()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	n.wg.Add(1)
	go n.acceptLoop()
	return n, nil
}

// Addr is the address the node listens on.
func (n *Node) Addr() net.Addr { return n.udp.LocalAddr() }

// Name is this host's name.
func (n *Node) Name() string { return n.cfg.Identity.Name }

// Close stops listening, closes every connection, waits for the serving
// goroutines and frees the UDP port.
func (n *Node) Close() error {
	n.stop()
	err := n.ln.Close()
	n.mu.Lock()
	for _, e := range n.pool {
		e.close()
	}
	for c := range n.inbox {
		c.CloseWithError(codeShutdown, "host shutting down")
	}
	n.mu.Unlock()
	n.wg.Wait()
	n.tr.Close()
	n.udp.Close() // a Transport does not close a socket it was given
	return err
}
