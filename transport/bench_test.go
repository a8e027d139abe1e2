package transport

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCall measures one unary call between two nodes on loopback; the
// cross-host figure, beside TCP+TLS, is bench/transport's.
func BenchmarkCall(b *testing.B) {
	c := newCluster(&testing.T{})
	t := &testing.T{}
	a := startNode(t, c.identity(t, "a", 0, time.Hour), nil)
	srv := startNode(t, c.identity(t, "b", 0, time.Hour), nil)
	defer a.Close()
	defer srv.Close()
	ctx := context.Background()
	for b.Loop() {
		if err := a.Call(ctx, "b", srv.Addr().String(), "test.echo", echoArgs{"x"}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamRoundTrip measures one data frame's round trip on an open
// streaming call: the floor under BenchmarkCall without a stream per call.
func BenchmarkStreamRoundTrip(b *testing.B) {
	t := &testing.T{}
	c := newCluster(t)
	a := startNode(t, c.identity(t, "a", 0, time.Hour), nil)
	srv := startNode(t, c.identity(t, "b", 0, time.Hour), nil)
	defer a.Close()
	defer srv.Close()
	srv.cfg.Mux.Handle("test.echo-stream", echoFrames)
	s, err := a.Open(context.Background(), "b", srv.Addr().String(), "test.echo-stream", nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte("x")
	for b.Loop() {
		if err := s.SendData(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseSend()
	s.Finish(nil)
}
