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
func (c *Call) Recv() (wire.Frame, error) { return recvFrame(c.conn, c.limit, nil) }

// RecvInto is Recv reading a frame's payload into room when it fits
// (wire.ReadFrameInto).
func (c *Call) RecvInto(room []byte) (wire.Frame, error) { return recvFrame(c.conn, c.limit, room) }

// ServeStream serves the one call carried by conn and closes it. It returns
// an error only when the peer broke the protocol or the stream failed; a
// handler's error goes to the caller in the reply.
func ServeStream(ctx context.Context, conn Conn, peer Peer, mux *Mux, limit int) error {
	f, err := wire.ReadFrame(conn, limit)
	if err != nil {
		conn.Abort()
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("read call header: %w", err)
	}
	if f.Type != wire.FrameCall {
		conn.Abort()
		return fmt.Errorf("read call header: %w: type %d", errUnexpectedFrame, f.Type)
	}
	h, err := wire.DecodeCallHeader(f.Payload)
	if err != nil {
		conn.Abort()
		return err
	}
	c := &Call{Peer: peer, Method: h.Method, conn: conn, limit: limit, args: h.Args}
	handler := mux.lookup(h.Method)
	var herr error
	if handler == nil {
		herr = Errorf(wire.CodeNoMethod, "unknown method %q (is the peer running an older sprite?)", h.Method)
	} else {
		herr = runHandler(ctx, handler, c)
	}
	if IsProtocolError(herr) {
		conn.Abort()
		return herr
	}
	rep := wire.Reply{Body: c.result}
	if herr != nil {
		rep = wire.Reply{Code: CodeOf(herr), Message: herr.Error()}
		if rep.Code == wire.CodeOK {
			rep.Code = wire.CodeError
		}
	}
	b, err := wire.Marshal(rep)
	if err != nil {
		conn.Abort()
		return err
	}
	if err := wire.WriteFrame(conn, wire.FrameReply, b, limit); err != nil {
		conn.Abort()
		return nil // the caller went away; nothing to report
	}
	return conn.CloseWrite()
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
