package rpc

import (
	"errors"
	"io"
)

// errAborted is what the other end of an aborted pipe stream reads.
var errAborted = errors.New("stream aborted")

// pipeConn is one end of an in-process stream (Pipe).
type pipeConn struct {
	r *io.PipeReader
	w *io.PipeWriter
}

var _ Conn = (*pipeConn)(nil)

// Pipe returns the two ends of an in-process stream, for a call a daemon
// makes to its own services (a job its home runs itself) without the
// network. Writes block until the other end reads, as on a stream with no
// buffer.
func Pipe() (client, server Conn) {
	r1, w1 := io.Pipe()
	r2, w2 := io.Pipe()
	return &pipeConn{r: r1, w: w2}, &pipeConn{r: r2, w: w1}
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeConn) CloseWrite() error           { return p.w.Close() }
func (p *pipeConn) Abort() {
	p.r.CloseWithError(errAborted)
	p.w.CloseWithError(errAborted)
}
func (p *pipeConn) Done() { p.r.CloseWithError(errAborted) }
