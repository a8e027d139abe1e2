package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"sprite/wire"
)

// Call is the server's side of one call. Its methods are not safe for
// concurrent use except that one goroutine may Send while another Recvs.
type Call struct {
	Peer   Peer
	Method string

	conn   Conn
	limit  int
	args   wire.RawMessage
	result wire.RawMessage
	// ended: the caller's input is over (a kept call's FrameEnd came with
	// its header), so Recv answers io.EOF without reading the stream,
	// which carries the caller's next call.
	ended bool
}

// Args decodes the call's arguments into v.
func (c *Call) Args(v any) error {
	if len(c.args) == 0 {
		return nil
	}
	if err := wire.Unmarshal(c.args, v); err != nil {
		return &Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("%s: bad arguments: %v", c.Method, err)}
	}
	return nil
}

// SetResult sets the body of the reply sent when the handler returns nil.
func (c *Call) SetResult(v any) error {
	b, err := wire.Marshal(v)
	if err != nil {
		return err
	}
	c.result = b
	return nil
}

// Send sends one CBOR message to the caller.
func (c *Call) Send(v any) error { return sendMsg(c.conn, v, c.limit) }

// SendData sends raw bytes to the caller.
func (c *Call) SendData(b []byte) error { return wire.WriteFrame(c.conn, wire.FrameData, b, c.limit) }

// Recv reads the caller's next FrameMsg or FrameData; io.EOF after FrameEnd.
func (c *Call) Recv() (wire.Frame, error) { return c.RecvInto(nil) }

// RecvInto is Recv reading a frame's payload into room when it fits
// (wire.ReadFrameInto).
func (c *Call) RecvInto(room []byte) (wire.Frame, error) {
	if c.ended {
		return wire.Frame{Type: wire.FrameEnd}, io.EOF
	}
	return recvFrame(c.conn, c.limit, room)
}

// ServeStream serves the call carried by conn, and after it each further
// call the caller sends on a kept stream (wire.CallHeader.Keep), until the
// caller ends the stream. It returns an error only when the peer broke the
// protocol or the stream failed; a handler's error goes to the caller in
// the reply.
func ServeStream(ctx context.Context, conn Conn, peer Peer, mux *Mux, limit int) error {
	for {
		f, err := wire.ReadFrame(conn, limit)
		if err != nil {
			conn.Abort()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read call header: %w", err)
		}
		keep, err := serveCall(ctx, conn, f, peer, mux, limit)
		if err != nil || !keep {
			return err
		}
	}
}

// serveCall serves one call whose first frame is f, and reports whether
// the stream stays open for the caller's next call.
func serveCall(ctx context.Context, conn Conn, f wire.Frame, peer Peer, mux *Mux, limit int) (keep bool, err error) {
	if f.Type != wire.FrameCall {
		conn.Abort()
		return false, fmt.Errorf("read call header: %w: type %d", errUnexpectedFrame, f.Type)
	}
	h, err := wire.DecodeCallHeader(f.Payload)
	if err != nil {
		conn.Abort()
		return false, err
	}
	c := &Call{Peer: peer, Method: h.Method, conn: conn, limit: limit, args: h.Args}
	if h.Keep {
		// A kept call is unary: its input ends with the header.
		if err := readEnd(conn, limit, h.Method); err != nil {
			conn.Abort()
			return false, err
		}
		c.ended = true
	}
	handler := mux.lookup(h.Method)
	var herr error
	if handler == nil {
		herr = Errorf(wire.CodeNoMethod, "unknown method %q (is the peer running an older sprite?)", h.Method)
	} else {
		herr = runHandler(ctx, handler, c)
	}
	if IsProtocolError(herr) {
		conn.Abort()
		return false, herr
	}
	rep := wire.Reply{Body: c.result}
	if herr != nil {
		rep = wire.Reply{Code: CodeOf(herr), Message: herr.Error()}
		if rep.Code == wire.CodeOK {
			rep.Code = wire.CodeError
		}
	}
	rep.Kept = h.Keep
	b, err := wire.Marshal(rep)
	if err != nil {
		conn.Abort()
		return false, err
	}
	if err := wire.WriteFrame(conn, wire.FrameReply, b, limit); err != nil {
		conn.Abort()
		return false, nil // the caller went away; nothing to report
	}
	if h.Keep {
		return true, nil
	}
	return false, conn.CloseWrite()
}

// readEnd reads the FrameEnd that follows a kept call's header.
func readEnd(conn Conn, limit int, method string) error {
	f, err := wire.ReadFrame(conn, limit)
	if err != nil {
		return fmt.Errorf("%s: read the end of a kept call: %w", method, err)
	}
	if f.Type != wire.FrameEnd {
		return fmt.Errorf("%s: %w: type %d after a kept call's header, want End", method, errUnexpectedFrame, f.Type)
	}
	return nil
}

func runHandler(ctx context.Context, h Handler, c *Call) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Errorf(wire.CodeError, "%s: internal error: %v", c.Method, r)
		}
	}()
	return h(ctx, c)
}

func sendMsg(w io.Writer, v any, limit int) error {
	b, err := wire.Marshal(v)
	if err != nil {
		return err
	}
	return wire.WriteFrame(w, wire.FrameMsg, b, limit)
}

// recvFrame reads a FrameMsg or FrameData; FrameEnd gives io.EOF.
func recvFrame(r io.Reader, limit int, room []byte) (wire.Frame, error) {
	f, err := wire.ReadFrameInto(r, limit, room)
	if err != nil {
		return f, err
	}
	switch f.Type {
	case wire.FrameMsg, wire.FrameData:
		return f, nil
	case wire.FrameEnd:
		return f, io.EOF
	default:
		return f, fmt.Errorf("%w: type %d inside a call", errUnexpectedFrame, f.Type)
	}
}
