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
	// idle holds kept streams of conn with no call on them
	// (rpc.InvokeKept), the latest last; guarded by mu. They go with
	// conn: a new connection starts with none.
	idle []stream
}

// maxIdleStreams bounds a host's idle kept streams; one more is ended.
// Each costs the serving host a goroutine waiting for its next call.
const maxIdleStreams = 32

func (e *poolEntry) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		e.conn.CloseWithError(codeShutdown, "host shutting down")
		e.conn = nil
	}
	e.idle = nil
}

// entry returns host's pool entry, made on first use.
func (n *Node) entry(host string) *poolEntry {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.pool[host]
	if e == nil {
		e = &poolEntry{}
		n.pool[host] = e
	}
	return e
}

// ErrClosed is returned by calls on a closed Node.
var ErrClosed = errors.New("transport: node closed")

// conn returns a live connection to host at addr, dialling if needed. Only
// one dial per host runs at a time.
func (n *Node) conn(ctx context.Context, host, addr string) (*quic.Conn, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	e := n.entry(host)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil && e.conn.Context().Err() == nil {
		return e.conn, nil
	}
	c, err := n.dial(ctx, host, addr)
	if err != nil {
		return nil, err
	}
	e.conn, e.idle = c, nil
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
	e := n.entry(name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil && e.conn.Context().Err() == nil {
		// Calls may be under way on the live one; keep it.
		c.CloseWithError(codeShutdown, "duplicate")
		return name, nil
	}
	e.conn, e.idle = c, nil
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
	return stream{s, c}, nil
}

// Call runs a unary call of method on host (at addr), on an idle kept
// stream to host when there is one (rpc.InvokeKept).
func (n *Node) Call(ctx context.Context, host, addr, method string, args, reply any) error {
	s, err := n.keptStream(ctx, host, addr)
	if err != nil {
		return err
	}
	kept, err := rpc.InvokeKept(ctx, s, method, args, reply, n.cfg.MaxFrame)
	if kept {
		n.putIdle(host, s)
	}
	return explain(host, err)
}

// keptStream takes host's latest idle kept stream, or opens a stream.
func (n *Node) keptStream(ctx context.Context, host, addr string) (stream, error) {
	e := n.entry(host)
	e.mu.Lock()
	if k := len(e.idle); k > 0 && e.conn != nil && e.conn.Context().Err() == nil {
		s := e.idle[k-1]
		e.idle = e.idle[:k-1]
		e.mu.Unlock()
		return s, nil
	}
	e.mu.Unlock()
	return n.openStream(ctx, host, addr)
}

// putIdle keeps s for host's next call, unless its connection is no longer
// the pooled one or enough are idle already: then it ends s.
func (n *Node) putIdle(host string, s stream) {
	e := n.entry(host)
	e.mu.Lock()
	if e.conn == s.conn && len(e.idle) < maxIdleStreams {
		e.idle = append(e.idle, s)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	rpc.Release(s)
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
