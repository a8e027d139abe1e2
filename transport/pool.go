package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/quic-go/quic-go"

	"sprite/rpc"
)

// poolEntry is the pooled connection to one host.
type poolEntry struct {
	mu   sync.Mutex
	conn *quic.Conn // guarded by mu; nil or dead means dial again
}

func (e *poolEntry) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		e.conn.CloseWithError(codeShutdown, "host shutting down")
		e.conn = nil
	}
}

// ErrClosed is returned by calls on a closed Node.
var ErrClosed = errors.New("transport: node closed")

// conn returns a live connection to host at addr, dialling if needed. Only
// one dial per host runs at a time.
func (n *Node) conn(ctx context.Context, host, addr string) (*quic.Conn, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	n.mu.Lock()
	e := n.pool[host]
	if e == nil {
		e = &poolEntry{}
		n.pool[host] = e
	}
	n.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil && e.conn.Context().Err() == nil {
		return e.conn, nil
	}
	c, err := n.dial(ctx, host, addr)
	if err != nil {
		return nil, err
	}
	e.conn = c
	return c, nil
}

func (n *Node) dial(ctx context.Context, host, addr string) (*quic.Conn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", host, addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	c, err := n.tr.Dial(ctx, ua, clientTLS(n.cfg.Identity, host), n.quicConfig())
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", orAddr(host, addr), addr, err)
	}
	return c, nil
}

func orAddr(host, addr string) string {
	if host == "" {
		return addr
	}
	return host
}

// Identify dials addr, whose host name is not yet known, and returns the
// name its certificate proves. The connection joins the pool under it,
// unless the pool already holds a live one to that host.
func (n *Node) Identify(ctx context.Context, addr string) (string, error) {
	c, err := n.dial(ctx, "", addr)
	if err != nil {
		return "", err
	}
	name, err := peerName(c.ConnectionState().TLS)
	if err != nil {
		c.CloseWithError(codeForbidden, err.Error())
		return "", err
	}
	n.mu.Lock()
	e := n.pool[name]
	if e == nil {
		e = &poolEntry{}
		n.pool[name] = e
	}
	n.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil && e.conn.Context().Err() == nil {
		// Calls may be under way on the live one; keep it.
		c.CloseWithError(codeShutdown, "duplicate")
		return name, nil
	}
	e.conn = c
	return name, nil
}

// Forget closes the pooled connection to host, so the next call dials anew.
func (n *Node) Forget(host string) {
	n.mu.Lock()
	e := n.pool[host]
	n.mu.Unlock()
	if e != nil {
		e.close()
	}
}

func (n *Node) openStream(ctx context.Context, host, addr string) (stream, error) {
	c, err := n.conn(ctx, host, addr)
	if err != nil {
		return stream{}, explain(host, err)
	}
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		// With TLS 1.3 a peer's refusal of our certificate may reach us
		// only now, after our side of the handshake has finished.
		n.Forget(host)
		return stream{}, explain(host, fmt.Errorf("open stream to %s: %w", host, err))
	}
	return stream{s}, nil
}

// Call runs a unary call of method on host (at addr).
func (n *Node) Call(ctx context.Context, host, addr, method string, args, reply any) error {
	s, err := n.openStream(ctx, host, addr)
	if err != nil {
		return err
	}
	defer s.Done()
	return explain(host, rpc.Invoke(ctx, s, method, args, reply, n.cfg.MaxFrame))
}

// explain turns a peer's TLS refusal, which QUIC reports as a bare
// CRYPTO_ERROR once the call is under way, into advice.
func explain(host string, err error) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.Remote && te.ErrorCode.IsCryptoError() {
		return fmt.Errorf("%s refused this host's certificate (%w): is this host enrolled in the same cluster, and its certificate current? %s's daemon log says why", host, err, host)
	}
	return err
}

// Open starts a streaming call of method on host (at addr). The caller
// must end it with Finish.
func (n *Node) Open(ctx context.Context, host, addr, method string, args any) (*rpc.ClientStream, error) {
	s, err := n.openStream(ctx, host, addr)
	if err != nil {
		return nil, err
	}
	return rpc.Start(ctx, s, method, args, n.cfg.MaxFrame)
}
