// Package rpc runs calls over streams: one stream per call, the first frame a
// wire.CallHeader naming the method, the last frame from the server a
// wire.Reply. Between the two, a streaming call may exchange any number of
// FrameMsg (CBOR) and FrameData (raw bytes) frames in both directions, and
// each side half-closes with FrameEnd.
//
// A unary call may instead ask to keep its stream (InvokeKept, kept.go):
// the server then reads the caller's next call from the same stream, so
// that calls in a row spare the opening and closing of a stream each. The
// server serves a kept stream's calls one after another, on the goroutine
// that serves the stream (ServeStream); the caller owns an idle kept
// stream and lends it to one call at a time (package transport pools
// them).
//
// The same calls run over QUIC streams between hosts (package transport) and
// over unix-socket connections from the CLI to its daemon (package daemon); a
// Peer says which, and who is calling. A Mux maps method names to Handlers.
//
// Errors: a handler's error travels to the caller as a *Error with a code
// and a message. A malformed frame or payload from the peer is a protocol
// violation (IsProtocolError): ServeStream returns it and the transport drops
// the whole connection, logging why.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"sprite/wire"
)

// Conn is one bidirectional stream of a call.
type Conn interface {
	io.Reader
	io.Writer
	// CloseWrite ends the sending direction; the peer reads EOF.
	CloseWrite() error
	// Abort drops the stream in both directions at once.
	Abort()
	// Done releases a stream whose call has ended; unread input is dropped.
	Done()
}

// Peer identifies who is on the other end of a call.
type Peer struct {
	// Host is the peer's host name, taken from its verified certificate; for
	// a local (unix socket) caller it is this host's own name.
	Host string
	// Addr is the peer's network address, for logs.
	Addr string
	// Local is true for callers on this host's unix socket; then UID, GID
	// and PID come from SO_PEERCRED.
	Local    bool
	UID, GID uint32
	PID      int32
}

// Error is a failed call as the caller sees it.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an *Error with a code from package wire.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the wire code of err: the code of an *Error in its chain, or
// wire.CodeError.
func CodeOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return wire.CodeError
}

// IsProtocolError reports whether err means the peer broke the wire format.
func IsProtocolError(err error) bool {
	return errors.Is(err, wire.ErrBadHeader) || errors.Is(err, wire.ErrTooLarge) ||
		errors.Is(err, wire.ErrBadPayload) || errors.Is(err, errUnexpectedFrame)
}

var errUnexpectedFrame = errors.New("unexpected frame")

// Handler serves one call.
type Handler func(ctx context.Context, c *Call) error

// Mux routes calls by method name. It is safe for concurrent use.
type Mux struct {
	mu       sync.RWMutex
	handlers map[string]Handler // guarded by mu
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: map[string]Handler{}} }

// Handle registers h for method, replacing any earlier handler.
func (m *Mux) Handle(method string, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[method] = h
}

func (m *Mux) lookup(method string) Handler {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.handlers[method]
}

// Unary adapts a function of one argument and one result to a Handler.
func Unary[A, R any](fn func(ctx context.Context, p Peer, args A) (R, error)) Handler {
	return func(ctx context.Context, c *Call) error {
		var a A
		if err := c.Args(&a); err != nil {
			return err
		}
		r, err := fn(ctx, c.Peer, a)
		if err != nil {
			return err
		}
		return c.SetResult(r)
	}
}
