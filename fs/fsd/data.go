package fsd

import (
	"context"
	"errors"
	"fmt"
	"io"

	"sprite/fs"
	"sprite/rpc"
	"sprite/wire"
)

// Bulk data as raw frames. Reads and writes of more than fs.SessionIO go
// on a stream of their own, and their bytes travel as raw data frames
// beside a Req or Resp without Data, not inside the CBOR message: no
// encoding, and no copy or buffer of its own on either side.
//
//   - fs.readdata: the server sends the data ahead of its reply; the
//     client reads it straight into the caller's room (fs.Client.Read
//     passes the kernel's buffer).
//   - fs.writedata: the call's arguments are the Req with Size for the
//     length of the data, which follows as frames; the server reads it
//     into a pooled buffer (fs.GetBuf).
//
// A cold sequential read or write is bound by the CPU, and a fresh buffer
// per 256 KiB costs its allocation, its zeroing and, on a virtual
// machine, the host's faults on pages the garbage collector gave back.
// A server that does not know either method is asked fs.read or fs.write.

// bulkCall is the client's side of a read (fs.readdata) or a write
// (fs.writedata) of more than fs.SessionIO: method is fs.read or
// fs.write, which a server that knows neither is asked instead.
func (s *Service) bulkCall(ctx context.Context, host, addr, method string, req *fs.Req, resp *fs.Resp) error {
	data := s.readData
	if method == fs.MethodWrite {
		data = s.writeData
	}
	err := data(ctx, host, addr, req, resp)
	if rpc.CodeOf(err) == wire.CodeNoMethod {
		return s.d.Node.Call(ctx, host, addr, method, req, resp)
	}
	return err
}

func (s *Service) readData(ctx context.Context, host, addr string, req *fs.Req, resp *fs.Resp) error {
	cs, err := s.d.Node.Open(ctx, host, addr, fs.MethodReadData, req)
	if err != nil {
		return err
	}
	// The server reads nothing but the call's arguments; a failed half
	// close is not an error, the reply says how the call went.
	_ = cs.CloseSend()
	// The caller's room for the data, if any: frames are read into it.
	data := resp.Data[:0]
	for {
		f, err := cs.RecvInto(data[len(data):cap(data)])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cs.Finish(nil)
			return fmt.Errorf("fs.readdata: receive data: %w", err)
		}
		if f.Type != wire.FrameData {
			cs.Finish(nil)
			return errors.New("fs.readdata: a message frame among the data: the server broke the protocol")
		}
		switch {
		case len(f.Payload) <= cap(data)-len(data): // read into the room
			data = data[:len(data)+len(f.Payload)]
		case data == nil:
			data = f.Payload
		default:
			data = append(data, f.Payload...)
		}
		if len(data) > int(req.Size) {
			cs.Finish(nil)
			return fmt.Errorf("fs.readdata: %d bytes for a read of %d: the server broke the protocol", len(data), req.Size)
		}
	}
	if err := cs.Finish(resp); err != nil {
		return err
	}
	resp.Data = data
	return nil
}

// serveRead is the server's side of fs.readdata.
func (s *Service) serveRead(ctx context.Context, c *rpc.Call) error {
	var req fs.Req
	if err := c.Args(&req); err != nil {
		return err
	}
	resp, err := s.server.Serve(ctx, c.Peer.Host, fs.MethodRead, &req)
	if err != nil {
		return rpc.Errorf(wire.CodeBadRequest, "%v", err)
	}
	data := resp.Data
	resp.Data = nil
	if len(data) > 0 {
		err = c.SendData(data)
	}
	fs.PutBuf(data)
	if err != nil {
		return fmt.Errorf("fs.readdata: send data: %w", err)
	}
	return c.SetResult(resp)
}

func (s *Service) writeData(ctx context.Context, host, addr string, req *fs.Req, resp *fs.Resp) error {
	args := *req
	args.Data, args.Size = nil, int64(len(req.Data))
	cs, err := s.d.Node.Open(ctx, host, addr, fs.MethodWriteData, &args)
	if err != nil {
		return err
	}
	if err := cs.SendData(req.Data); err != nil {
		// A server that refused the call (one without fs.writedata)
		// may have stopped the stream: its reply says why.
		if ferr := cs.Finish(resp); ferr != nil {
			return ferr
		}
		return fmt.Errorf("fs.writedata: send data: %w", err)
	}
	_ = cs.CloseSend() // the reply says how the call went
	return cs.Finish(resp)
}

// serveWrite is the server's side of fs.writedata: it reads the Size
// bytes the arguments announce, no more and no fewer, and writes them as
// fs.write does.
func (s *Service) serveWrite(ctx context.Context, c *rpc.Call) error {
	var req fs.Req
	if err := c.Args(&req); err != nil {
		return err
	}
	if req.Size <= 0 || req.Size > fs.MaxIO || len(req.Data) > 0 {
		return rpc.Errorf(wire.CodeBadRequest, "fs.writedata: %d bytes announced (and %d in the arguments): want 1 to %d, all in data frames", req.Size, len(req.Data), fs.MaxIO)
	}
	buf := fs.GetBuf(int(req.Size))
	defer fs.PutBuf(buf)
	data := buf[:0:len(buf)] // room for the bytes announced, no more
	for {
		f, err := c.RecvInto(data[len(data):cap(data)])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("fs.writedata: receive data: %w", err)
		}
		if f.Type != wire.FrameData || len(f.Payload) > cap(data)-len(data) {
			return rpc.Errorf(wire.CodeBadRequest, "fs.writedata: a message frame, or more than the %d bytes announced", req.Size)
		}
		data = data[:len(data)+len(f.Payload)]
	}
	if len(data) != int(req.Size) {
		return rpc.Errorf(wire.CodeBadRequest, "fs.writedata: %d bytes of the %d announced", len(data), req.Size)
	}
	req.Data, req.Size = data, 0
	resp, err := s.server.Serve(ctx, c.Peer.Host, fs.MethodWrite, &req)
	if err != nil {
		return rpc.Errorf(wire.CodeBadRequest, "%v", err)
	}
	return c.SetResult(resp)
}
