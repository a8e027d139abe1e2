package transport

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"sprite/rpc"
	"sprite/wire"
)

// TestStreamingCallStaysOpen runs a call that echoes data frames back one
// by one, as stdio streams will: many exchanges on one stream, then EOF in
// each direction and a reply.
func TestStreamingCallStaysOpen(t *testing.T) {
	c := newCluster(t)
	a := startNode(t, c.identity(t, "a", 0, time.Hour), nil)
	b := startNode(t, c.identity(t, "b", 0, time.Hour), nil)
	b.cfg.Mux.Handle("test.cat", func(ctx context.Context, call *rpc.Call) error {
		n := 0
		for {
			f, err := call.Recv()
			if err == io.EOF {
				return call.SetResult(n)
			}
			if err != nil {
				return err
			}
			n += len(f.Payload)
			if err := call.SendData(f.Payload); err != nil {
				return err
			}
		}
	})
	s, err := a.Open(context.Background(), "b", b.Addr().String(), "test.cat", nil)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := range 200 {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i*97)
		if err := s.SendData(msg); err != nil {
			t.Fatal(err)
		}
		f, err := s.Recv()
		if err != nil || f.Type != wire.FrameData || !bytes.Equal(f.Payload, msg) {
			t.Fatalf("exchange %d: %v, got %d bytes", i, err, len(f.Payload))
		}
		total += len(msg)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: %v, want EOF", err)
	}
	var n int
	if err := s.Finish(&n); err != nil || n != total {
		t.Fatalf("reply %d, %v; want %d", n, err, total)
	}
}

// TestIdentifyKeepsCallsUnderWay: dialling a host again by its address (a
// daemon trying its seeds) leaves the pooled connection, and a streaming
// call on it, alone.
func TestIdentifyKeepsCallsUnderWay(t *testing.T) {
	c := newCluster(t)
	a := startNode(t, c.identity(t, "a", 0, time.Hour), nil)
	b := startNode(t, c.identity(t, "b", 0, time.Hour), nil)
	b.cfg.Mux.Handle("test.echo-stream", echoFrames)
	s, err := a.Open(context.Background(), "b", b.Addr().String(), "test.echo-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(when string) {
		t.Helper()
		if err := s.SendData([]byte(when)); err != nil {
			t.Fatalf("%s: send: %v", when, err)
		}
		if f, err := s.Recv(); err != nil || string(f.Payload) != when {
			t.Fatalf("%s: %v, got %q", when, err, f.Payload)
		}
	}
	exchange("before")
	name, err := a.Identify(context.Background(), b.Addr().String())
	if err != nil || name != "b" {
		t.Fatalf("identify b's address: %q, %v", name, err)
	}
	exchange("after a second dial")
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(nil); err != nil {
		t.Fatalf("finish: %v", err)
	}
}

// echoFrames serves a streaming call by sending each data frame back, until
// the caller's EOF.
func echoFrames(_ context.Context, call *rpc.Call) error {
	for {
		f, err := call.Recv()
		if err == io.EOF {
			return call.SetResult(0)
		}
		if err != nil {
			return err
		}
		if err := call.SendData(f.Payload); err != nil {
			return err
		}
	}
}
