package rpc

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"sprite/wire"
)

func keptMux() *Mux {
	mux := NewMux()
	mux.Handle("add", Unary(func(_ context.Context, _ Peer, n int) (int, error) { return n + 1, nil }))
	mux.Handle("refuse", Unary(func(_ context.Context, _ Peer, _ int) (int, error) {
		return 0, Errorf(wire.CodePermission, "refused")
	}))
	// count reads its input as a streaming handler does: a kept call has
	// none, and the stream's next call is not taken for it.
	mux.Handle("count", func(_ context.Context, c *Call) error {
		n := 0
		for {
			if _, err := c.Recv(); err != nil {
				return c.SetResult(n)
			}
			n++
		}
	})
	mux.Handle("block", func(ctx context.Context, c *Call) error {
		time.Sleep(200 * time.Millisecond)
		return nil
	})
	return mux
}

// One stream carries call after call, failed ones included, until the
// caller ends it; then the server's loop returns.
func TestKeptStreamCarriesCallAfterCall(t *testing.T) {
	cl, sv := Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeStream(context.Background(), sv, Peer{Host: "self"}, keptMux(), 0) }()
	ctx := context.Background()
	add := func(n int) int {
		t.Helper()
		var got int
		kept, err := InvokeKept(ctx, cl, "add", n, &got, 0)
		if err != nil || !kept {
			t.Fatalf("add %d: kept %v, %v", n, kept, err)
		}
		return got
	}
	if got := add(1); got != 2 {
		t.Fatalf("add 1 = %d, want 2", got)
	}
	var re *Error
	kept, err := InvokeKept(ctx, cl, "refuse", 1, nil, 0)
	if !errors.As(err, &re) || re.Code != wire.CodePermission || !kept {
		t.Fatalf("refused call: kept %v, %v; want code %d and the stream kept", kept, err, wire.CodePermission)
	}
	kept, err = InvokeKept(ctx, cl, "no.such", nil, nil, 0)
	if !errors.As(err, &re) || re.Code != wire.CodeNoMethod || !kept {
		t.Fatalf("unknown method: kept %v, %v; want CodeNoMethod and the stream kept", kept, err)
	}
	var n int
	if kept, err := InvokeKept(ctx, cl, "count", nil, &n, 0); err != nil || !kept || n != 0 {
		t.Fatalf("count: %d, kept %v, %v; want 0 frames, kept", n, kept, err)
	}
	if got := add(41); got != 42 {
		t.Fatalf("add 41 after three calls = %d, want 42", got)
	}
	Release(cl)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after the caller ended the stream: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server still waits for a call on a stream its caller ended")
	}
}

// A server from before Keep answers and ends the stream: the call
// succeeds and is not kept.
func TestKeptCallToAnOlderServer(t *testing.T) {
	cl, sv := Pipe()
	go func() {
		f, err := wire.ReadFrame(sv, 0)
		if err != nil || f.Type != wire.FrameCall {
			sv.Abort()
			return
		}
		// A QUIC stream holds what the server does not read (the End);
		// a Pipe has no room, so drain it.
		go io.Copy(io.Discard, sv)
		body, _ := wire.Marshal(7)
		rep, _ := wire.Marshal(wire.Reply{Body: body})
		wire.WriteFrame(sv, wire.FrameReply, rep, 0)
		sv.CloseWrite()
	}()
	var got int
	kept, err := InvokeKept(context.Background(), cl, "add", 6, &got, 0)
	if err != nil || got != 7 || kept {
		t.Fatalf("older server: %d, kept %v, %v; want 7, not kept", got, kept, err)
	}
}

// A kept call is unary: anything but End after its header breaks the
// protocol, and the server says so.
func TestKeptCallWithInputIsRefused(t *testing.T) {
	cl, sv := Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeStream(context.Background(), sv, Peer{Host: "self"}, keptMux(), 0) }()
	h, _ := wire.Marshal(wire.CallHeader{Method: "count", Keep: true})
	go func() {
		wire.WriteFrame(cl, wire.FrameCall, h, 0)
		wire.WriteFrame(cl, wire.FrameData, []byte("smuggled"), 0)
	}()
	if err := <-done; !IsProtocolError(err) {
		t.Fatalf("serve a kept call with data after its header: %v, want a protocol error", err)
	}
}

// A call its context ends is not kept: the stream is aborted and the
// server's loop ends.
func TestKeptCallCancelledIsNotKept(t *testing.T) {
	cl, sv := Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeStream(context.Background(), sv, Peer{Host: "self"}, keptMux(), 0) }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	kept, err := InvokeKept(ctx, cl, "block", nil, nil, 0)
	if !errors.Is(err, context.DeadlineExceeded) || kept {
		t.Fatalf("cancelled call: kept %v, %v; want DeadlineExceeded, not kept", kept, err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("server still serves a stream its caller aborted")
	}
}
