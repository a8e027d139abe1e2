package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"sprite/rpc"
)

// Unary calls ride kept streams: calls in a row share one, calls at once
// take as many as run, and no caller ever reads another's reply, though
// some calls are cancelled half way.
func TestKeptStreamsCarryCallsWithoutCrossingReplies(t *testing.T) {
	c := newCluster(t)
	a := startNode(t, c.identity(t, "a", 0, time.Hour), nil)
	b := startNode(t, c.identity(t, "b", 0, time.Hour), nil)
	b.cfg.Mux.Handle("test.slow-echo", rpc.Unary(func(_ context.Context, _ rpc.Peer, x echoArgs) (echoReply, error) {
		time.Sleep(time.Duration(len(x.Text)%3) * time.Millisecond)
		return echoReply{Text: x.Text}, nil
	}))
	idle := func() int {
		e := a.entry("b")
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.idle)
	}
	call := func(ctx context.Context, text string) error {
		var rep echoReply
		if err := a.Call(ctx, "b", b.Addr().String(), "test.slow-echo", echoArgs{text}, &rep); err != nil {
			return err
		}
		if rep.Text != text {
			return fmt.Errorf("call %q got the reply %q", text, rep.Text)
		}
		return nil
	}
	for i := range 20 {
		if err := call(context.Background(), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := idle(); n != 1 {
		t.Fatalf("20 calls in a row left %d idle streams, want 1: each takes the one before's", n)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 30 {
				ctx, cancel := context.WithCancel(context.Background())
				if i%5 == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
				}
				err := call(ctx, fmt.Sprintf("%d-%d", g, i))
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := idle(); n < 1 || n > maxIdleStreams {
		t.Fatalf("%d idle streams after 16 callers at once, want 1 to %d", n, maxIdleStreams)
	}
	if err := call(context.Background(), "after"); err != nil {
		t.Fatal(err)
	}
}
