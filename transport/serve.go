package transport

import (
	"context"
	"errors"

	"github.com/quic-go/quic-go"

	"sprite/rpc"
)

// stream adapts a QUIC stream of conn to rpc.Conn.
type stream struct {
	*quic.Stream
	conn *quic.Conn
}

var _ rpc.Conn = stream{}

func (s stream) CloseWrite() error { return s.Stream.Close() }
func (s stream) Abort()            { s.CancelRead(0); s.CancelWrite(0) }
func (s stream) Done()             { s.CancelRead(0) }

func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept(n.ctx)
		if err != nil {
			if n.ctx.Err() == nil && !errors.Is(err, quic.ErrServerClosed) {
				n.log.Error("accept failed; no more connections will be served", "err", err)
			}
			return
		}
		n.mu.Lock()
		n.inbox[c] = struct{}{}
		n.mu.Unlock()
		n.wg.Add(1)
		go n.serveConn(c)
	}
}

// serveConn serves every stream of one accepted connection until it closes.
func (n *Node) serveConn(c *quic.Conn) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		delete(n.inbox, c)
		n.mu.Unlock()
	}()
	cs := c.ConnectionState()
	mux, peer := n.cfg.Mux, rpc.Peer{Addr: c.RemoteAddr().String()}
	if cs.TLS.NegotiatedProtocol == JoinALPN {
		mux, peer.Host = n.cfg.JoinMux, ""
	} else {
		name, err := peerName(cs.TLS)
		if err != nil {
			n.log.Warn("closing connection", logAddr(c.RemoteAddr()), "err", err)
			c.CloseWithError(codeForbidden, err.Error())
			return
		}
		peer.Host = name
	}
	ctx, cancel := context.WithCancel(n.ctx)
	defer cancel()
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			// Node.Close may no longer find c in the inbox: close it
			// here, ending the streams that wait for a kept call.
			c.CloseWithError(codeShutdown, "host shutting down")
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			st := stream{s, c}
			err := rpc.ServeStream(ctx, st, peer, mux, n.cfg.MaxFrame)
			st.Done()
			if err != nil && rpc.IsProtocolError(err) {
				n.log.Warn("closing connection: peer broke the wire protocol",
					"peer", peer.Host, logAddr(c.RemoteAddr()), "err", err)
				c.CloseWithError(codeProtocol, "protocol violation: "+err.Error())
				cancel()
			}
		}()
	}
}
