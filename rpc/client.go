package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"sprite/wire"
)

// Invoke runs a unary call over conn: it sends method and args, waits for
// the reply and decodes its body into reply (which may be nil). Cancelling
// ctx aborts the stream.
func Invoke(ctx context.Context, conn Conn, method string, args, reply any, limit int) error {
	s, err := Start(ctx, conn, method, args, limit)
	if err != nil {
		return err
	}
	// The server may have answered (and stopped reading) already, so a
	// failed half close is not an error: the reply says how the call went.
	_ = conn.CloseWrite()
	return s.Finish(reply)
}

// ClientStream is the caller's side of a streaming call.
type ClientStream struct {
	method string
	conn   Conn
	limit  int
	stop   func() bool
	ctx    context.Context
	// pending is a reply read by Recv, handed to Finish.
	pending *wire.Frame
}

// Start opens a call over conn and sends its header.
func Start(ctx context.Context, conn Conn, method string, args any, limit int) (*ClientStream, error) {
	b, err := callHeader(method, args, false)
	if err != nil {
		conn.Abort()
		return nil, err
	}
	stop := context.AfterFunc(ctx, conn.Abort)
	if err := wire.WriteFrame(conn, wire.FrameCall, b, limit); err != nil {
		stop()
		conn.Abort()
		return nil, ctxErr(ctx, fmt.Errorf("%s: send call: %w", method, err))
	}
	return &ClientStream{method: method, conn: conn, limit: limit, stop: stop, ctx: ctx}, nil
}

// callHeader encodes a call's header: method, args, and whether it asks
// to keep its stream (InvokeKept).
func callHeader(method string, args any, keep bool) ([]byte, error) {
	h := wire.CallHeader{Method: method, Keep: keep}
	if args != nil {
		b, err := wire.Marshal(args)
		if err != nil {
			return nil, err
		}
		h.Args = b
	}
	return wire.Marshal(h)
}

// Send sends one CBOR message to the handler.
func (s *ClientStream) Send(v any) error { return ctxErr(s.ctx, sendMsg(s.conn, v, s.limit)) }

// SendData sends raw bytes to the handler.
func (s *ClientStream) SendData(b []byte) error {
	return ctxErr(s.ctx, wire.WriteFrame(s.conn, wire.FrameData, b, s.limit))
}

// CloseSend tells the handler nothing more will come (FrameEnd, then a half
// close of the stream).
func (s *ClientStream) CloseSend() error {
	if err := wire.WriteFrame(s.conn, wire.FrameEnd, nil, s.limit); err != nil {
		return ctxErr(s.ctx, err)
	}
	return s.conn.CloseWrite()
}

// Recv returns the handler's next FrameMsg or FrameData. When the handler
// has finished it returns io.EOF and the reply is read with Finish.
func (s *ClientStream) Recv() (wire.Frame, error) { return s.RecvInto(nil) }

// RecvInto is Recv reading a frame's payload into room when it fits
// (wire.ReadFrameInto).
func (s *ClientStream) RecvInto(room []byte) (wire.Frame, error) {
	f, err := wire.ReadFrameInto(s.conn, s.limit, room)
	if err != nil {
		return f, ctxErr(s.ctx, err)
	}
	switch f.Type {
	case wire.FrameMsg, wire.FrameData:
		return f, nil
	case wire.FrameReply:
		s.pending = &f
		return f, io.EOF
	default:
		return f, fmt.Errorf("%s: %w: type %d", s.method, errUnexpectedFrame, f.Type)
	}
}

// Finish reads (skipping any unread messages) the reply and decodes its body
// into reply. It releases the stream.
func (s *ClientStream) Finish(reply any) error {
	defer s.conn.Done()
	defer s.stop()
	var f wire.Frame
	if s.pending != nil {
		f = *s.pending
	} else {
		var err error
		if f, err = awaitReply(s.conn, s.limit); err != nil {
			s.conn.Abort()
			return ctxErr(s.ctx, fmt.Errorf("%s: read reply: %w", s.method, err))
		}
	}
	_, err := outcome(s.conn, s.method, f, reply)
	return err
}

// awaitReply reads frames up to the FrameReply, skipping any messages the
// caller did not read.
func awaitReply(r io.Reader, limit int) (wire.Frame, error) {
	for {
		f, err := wire.ReadFrame(r, limit)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return f, err
		}
		if f.Type == wire.FrameReply {
			return f, nil
		}
	}
}

// outcome decodes the reply frame f: the handler's error, or its result
// into reply. An undecodable reply aborts conn.
func outcome(conn Conn, method string, f wire.Frame, reply any) (wire.Reply, error) {
	var rep wire.Reply
	if err := wire.Unmarshal(f.Payload, &rep); err != nil {
		conn.Abort()
		return rep, fmt.Errorf("%s: %w", method, err)
	}
	if rep.Code != wire.CodeOK {
		return rep, &Error{Code: rep.Code, Message: rep.Message}
	}
	if reply != nil && len(rep.Body) > 0 {
		if err := wire.Unmarshal(rep.Body, reply); err != nil {
			return rep, fmt.Errorf("%s: reply: %w", method, err)
		}
	}
	return rep, nil
}

// ctxErr prefers the context's error when the context ended the stream.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
