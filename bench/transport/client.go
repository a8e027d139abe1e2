package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"sprite/pki"
	"sprite/transport"
	"sprite/wire"
)

const (
	chunk    = 256 << 10
	parallel = 16
)

func client(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	addr := fs.String("addr", h2Addr, "server IP")
	calls := fs.Int("calls", 3000, "round trips")
	mib := fs.Int("mib", 256, "MiB to stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := pki.LoadIdentity(stateDir)
	if err != nil {
		return err
	}
	q, err := benchQUIC(id, fmt.Sprintf("%s:%d", *addr, quicPort), *calls, *mib)
	if err != nil {
		return fmt.Errorf("quic: %w", err)
	}
	t, err := benchTLS(id, fmt.Sprintf("%s:%d", *addr, tlsPort), *calls, *mib)
	if err != nil {
		return fmt.Errorf("tcp+tls: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(append(q, t))
}

func stats(name string, d []time.Duration) result {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1e3 }
	return result{Name: name, P50us: us(d[len(d)/2]), P99us: us(d[len(d)*99/100]), MeanUs: us(sum) / float64(len(d))}
}

// benchQUIC measures sprite's unary calls (Call: kept streams) and, as
// their peer, the same call on a new stream each (a streaming call that
// sends nothing), then one streaming call's throughput.
func benchQUIC(id *pki.Identity, addr string, calls, mib int) ([]result, error) {
	node, err := transport.Listen(transport.Config{Identity: id, Listen: ":0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	defer node.Close()
	ctx := context.Background()
	host, err := node.Identify(ctx, addr)
	if err != nil {
		return nil, err
	}
	kept := func() error {
		var rep payload
		return node.Call(ctx, host, addr, "bench.echo", payload{B: make([]byte, 64)}, &rep)
	}
	fresh := func() error {
		s, err := node.Open(ctx, host, addr, "bench.echo", payload{B: make([]byte, 64)})
		if err != nil {
			return err
		}
		// As a unary call on its own stream: the server may have
		// answered, and stopped reading, before the half close.
		_ = s.CloseSend()
		var rep payload
		return s.Finish(&rep)
	}
	r, err := measureCalls("sprite QUIC (mTLS, kept stream)", calls, kept)
	if err != nil {
		return nil, err
	}
	f, err := measureCalls("sprite QUIC (mTLS, a new stream per call)", calls, fresh)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	s, err := node.Open(ctx, host, addr, "bench.sink", nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, chunk)
	for i := 0; i < mib*(1<<20)/chunk; i++ {
		if err := s.SendData(buf); err != nil {
			return nil, err
		}
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	var n int
	if err := s.Finish(&n); err != nil || n != mib<<20 {
		return nil, fmt.Errorf("sink got %d bytes: %v", n, err)
	}
	r.MBps = float64(mib<<20) / 1e6 / time.Since(start).Seconds()
	return []result{r, f}, nil
}

// measureCalls times calls in a row, then from parallel callers.
func measureCalls(name string, calls int, call func() error) (result, error) {
	d, err := timeCalls(calls, call)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	r := stats(name, d)
	if r.CallsPerS, err = parallelRate(calls, call); err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

func timeCalls(n int, call func() error) ([]time.Duration, error) {
	for range 100 { // warm up
		if err := call(); err != nil {
			return nil, err
		}
	}
	d := make([]time.Duration, n)
	for i := range d {
		start := time.Now()
		if err := call(); err != nil {
			return nil, err
		}
		d[i] = time.Since(start)
	}
	return d, nil
}

// parallelRate runs n calls from parallel callers and returns calls/s.
func parallelRate(n int, call func() error) (float64, error) {
	var wg sync.WaitGroup
	errs := make(chan error, parallel)
	start := time.Now()
	for range parallel {
		wg.Go(func() {
			for range n / parallel {
				if err := call(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(n/parallel*parallel) / time.Since(start).Seconds(), nil
}

func dialTLS(id *pki.Identity, addr string, mode byte) (net.Conn, *bufio.Reader, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{id.Cert},
		RootCAs: id.Pool, ServerName: "h2"})
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write([]byte{mode}); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, bufio.NewReader(c), nil
}

func benchTLS(id *pki.Identity, addr string, calls, mib int) (result, error) {
	echoOn := func(c net.Conn, rd *bufio.Reader) func() error {
		return func() error {
			b, _ := wire.Marshal(payload{B: make([]byte, 64)})
			if err := wire.WriteFrame(c, wire.FrameMsg, b, 0); err != nil {
				return err
			}
			_, err := wire.ReadFrame(rd, 0)
			return err
		}
	}
	c, rd, err := dialTLS(id, addr, 'e')
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	d, err := timeCalls(calls, echoOn(c, rd))
	if err != nil {
		return result{}, err
	}
	r := stats("TCP+TLS 1.3 echo (mTLS, one connection)", d)
	// Parallel: one connection per caller, as a TCP client pool would have.
	conns := make(chan func() error, parallel)
	for range parallel {
		pc, prd, err := dialTLS(id, addr, 'e')
		if err != nil {
			return r, err
		}
		defer pc.Close()
		conns <- echoOn(pc, prd)
	}
	if r.CallsPerS, err = parallelRate(calls, func() error { f := <-conns; defer func() { conns <- f }(); return f() }); err != nil {
		return r, err
	}
	return r, streamTLS(id, addr, mib, &r)
}

func streamTLS(id *pki.Identity, addr string, mib int, r *result) error {
	start := time.Now()
	c, rd, err := dialTLS(id, addr, 's')
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, chunk)
	for i := 0; i < mib*(1<<20)/chunk; i++ {
		if err := wire.WriteFrame(c, wire.FrameData, buf, 0); err != nil {
			return err
		}
	}
	if err := wire.WriteFrame(c, wire.FrameEnd, nil, 0); err != nil {
		return err
	}
	f, err := wire.ReadFrame(rd, 0)
	if err != nil {
		return err
	}
	var n int
	if err := wire.Unmarshal(f.Payload, &n); err != nil || n != mib<<20 {
		return fmt.Errorf("sink got %d bytes: %v", n, err)
	}
	r.MBps = float64(mib<<20) / 1e6 / time.Since(start).Seconds()
	return nil
}
