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
