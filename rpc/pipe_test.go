package rpc

import (
	"context"
	"io"
	"testing"

	"sprite/wire"
)

// A streaming call over Pipe: the caller sends data, the handler echoes it
// as messages and replies; the caller's abort reaches the handler.
func TestPipeCarriesAStreamingCall(t *testing.T) {
	mux := NewMux()
	mux.Handle("echo", func(ctx context.Context, c *Call) error {
		var n int
		for {
			f, err := c.Recv()
			if err == io.EOF {
				return c.SetResult(n)
			}
			if err != nil {
				return err
			}
			n += len(f.Payload)
			if err := c.Send(string(f.Payload)); err != nil {
				return err
			}
		}
	})
	cl, sv := Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeStream(context.Background(), sv, Peer{Host: "self"}, mux, wire.DefaultMaxFrame) }()
	s, err := Start(context.Background(), cl, "echo", nil, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		s.SendData([]byte("hello"))
		s.SendData([]byte("pipe"))
		s.CloseSend()
	}()
	var got string
	for {
		f, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var m string
		if err := wire.Unmarshal(f.Payload, &m); err != nil {
			t.Fatal(err)
		}
		got += m
	}
	var n int
	if err := s.Finish(&n); err != nil || n != 9 || got != "hellopipe" {
		t.Fatalf("echo over a pipe: %q, %d, %v", got, n, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}

	// An aborted caller: the handler's Recv fails instead of hanging.
	cl, sv = Pipe()
	go func() { done <- ServeStream(context.Background(), sv, Peer{Host: "self"}, mux, wire.DefaultMaxFrame) }()
	s, err = Start(context.Background(), cl, "echo", nil, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	cl.Abort()
	<-done
}
