package fsd

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"sprite/fs"
	"sprite/rpc"
	"sprite/wire"
)

// Sessions: every fs.* call but reads and writes of more than fs.SessionIO
// bytes travels as one message on a long-lived fs.session stream per pair
// of hosts, rather than on a QUIC stream of its own: the requests of one
// build are many and small (an untar writes 10 KiB at a time), and a
// message costs less than a stream. Bulk reads and writes keep a stream
// per call, so that they run in parallel and a large reply never holds up
// a small one.
//
// Client side: one session per server host, made on first use; a reader
// goroutine (owned by the Service, ended when the session's stream ends,
// at the latest by Stop) hands each answer to its waiting caller. A call
// that times out forgets its ID. A broken session fails its waiting calls
// (EIO) and the next call makes a new one.
//
// Server side: serveSession reads requests and runs each on a goroutine of
// its own, which it waits for before returning; answers are sent under a
// mutex (one sender at a time, as rpc.Call allows).

// session is this host's open fs.session with one server.
type session struct {
	stream *rpc.ClientStream
	sendMu sync.Mutex // one Send at a time

	mu      sync.Mutex
	next    uint64                         // guarded by mu
	pending map[uint64]chan fs.SessionResp // guarded by mu
	err     error                          // guarded by mu; set when the session broke
}

// sessionTo returns the live session to host, opening one if needed.
func (s *Service) sessionTo(host, addr string) (*session, error) {
	s.mu.Lock()
	ss := s.sessions[host]
	s.mu.Unlock()
	if ss != nil && ss.broken() == nil {
		return ss, nil
	}
	stream, err := s.d.Node.Open(s.ctx, host, addr, fs.MethodSession, nil)
	if err != nil {
		return nil, err
	}
	ss = &session{stream: stream, pending: map[uint64]chan fs.SessionResp{}}
	s.mu.Lock()
	if old := s.sessions[host]; old != nil && old.broken() == nil {
		s.mu.Unlock()
		ss.close()
		return old, nil
	}
	s.sessions[host] = ss
	s.mu.Unlock()
	s.wg.Go(ss.read)
	return ss, nil
}

func (ss *session) broken() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.err
}

// close ends the stream; read then fails every waiting call.
func (ss *session) close() {
	ss.sendMu.Lock()
	ss.stream.CloseSend()
	ss.sendMu.Unlock()
}

// read hands answers to their callers until the stream ends.
func (ss *session) read() {
	var err error
	for {
		var f wire.Frame
		f, err = ss.stream.Recv()
		if err != nil {
			break
		}
		var r fs.SessionResp
		if err = wire.Unmarshal(f.Payload, &r); err != nil {
			break
		}
		ss.mu.Lock()
		ch := ss.pending[r.ID]
		delete(ss.pending, r.ID)
		ss.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	ss.stream.Finish(nil)
	if err == nil {
		err = errors.New("session ended")
	}
	ss.mu.Lock()
	ss.err = fmt.Errorf("fs session: %w", err)
	for id, ch := range ss.pending {
		ch <- fs.SessionResp{ID: id, Err: ss.err.Error()}
		delete(ss.pending, id)
	}
	ss.mu.Unlock()
}

// call sends one request and waits for its answer or ctx.
func (ss *session) call(ctx context.Context, method string, req *fs.Req, resp *fs.Resp) error {
	ch := make(chan fs.SessionResp, 1)
	ss.mu.Lock()
	if ss.err != nil {
		ss.mu.Unlock()
		return ss.err
	}
	ss.next++
	id := ss.next
	ss.pending[id] = ch
	ss.mu.Unlock()
	ss.sendMu.Lock()
	err := ss.stream.Send(fs.SessionReq{ID: id, Method: method, Req: *req})
	ss.sendMu.Unlock()
	if err != nil {
		ss.forget(id)
		return err
	}
	select {
	case r := <-ch:
		if r.Err != "" {
			return errors.New(r.Err)
		}
		if r.Resp == nil {
			return errors.New("fs session: empty answer")
		}
		*resp = *r.Resp
		return nil
	case <-ctx.Done():
		ss.forget(id)
		return ctx.Err()
	}
}

func (ss *session) forget(id uint64) {
	ss.mu.Lock()
	delete(ss.pending, id)
	ss.mu.Unlock()
}

// serveSession is the server's side of fs.session.
func (s *Service) serveSession(ctx context.Context, c *rpc.Call) error {
	var sendMu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		f, err := c.Recv()
		if err != nil {
			return nil // the client ended the session (or went away)
		}
		var r fs.SessionReq
		if err := wire.Unmarshal(f.Payload, &r); err != nil {
			return rpc.Errorf(wire.CodeBadRequest, "fs.session: %v", err)
		}
		if !fs.ViaSession(r.Method, &r.Req) {
			return rpc.Errorf(wire.CodeBadRequest, "fs.session: %s of more than %d bytes goes in a call of its own", r.Method, fs.SessionIO)
		}
		wg.Go(func() {
			out := fs.SessionResp{ID: r.ID}
			resp, err := s.server.Serve(ctx, c.Peer.Host, r.Method, &r.Req)
			if err != nil {
				out.Err = err.Error()
			} else {
				out.Resp = resp
			}
			sendMu.Lock()
			c.Send(out)
			sendMu.Unlock()
		})
	}
}
