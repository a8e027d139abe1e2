package transport

import (
	"context"
	"io"
	"testing"
	"time"

	"sprite/rpc"
	"sprite/wire"
)

// benchNodes starts two nodes, a (the caller) and b, on loopback; they
// stop when b's benchmark ends.
func benchNodes(b *testing.B) (a, srv *Node) {
	t := &testing.T{}
	c := newCluster(t)
	a = startNode(t, c.identity(t, "a", 0, time.Hour), nil)
	srv = startNode(t, c.identity(t, "b", 0, time.Hour), nil)
	b.Cleanup(func() { a.Close(); srv.Close() })
	return a, srv
}

// BenchmarkCall measures one unary call between two nodes on loopback; the
// cross-host figure, beside TCP+TLS, is bench/transport's.
func BenchmarkCall(b *testing.B) {
	a, srv := benchNodes(b)
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
	a, srv := benchNodes(b)
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

// BenchmarkReadData measures a bulk read's shape (fs.readdata): a call per
// 256 KiB that comes back as one raw data frame, received into a fresh
// buffer (Recv) or into the reader's own (RecvInto, as fs.Client.Read
// does with the kernel's buffer).
func BenchmarkReadData(b *testing.B) {
	a, srv := benchNodes(b)
	const size = 256 << 10
	data := make([]byte, size)
	srv.cfg.Mux.Handle("test.pour", func(_ context.Context, call *rpc.Call) error {
		if err := call.SendData(data); err != nil {
			return err
		}
		return call.SetResult(0)
	})
	for _, into := range []bool{false, true} {
		name := map[bool]string{false: "fresh", true: "into"}[into]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			room := make([]byte, size)
			for b.Loop() {
				s, err := a.Open(context.Background(), "b", srv.Addr().String(), "test.pour", nil)
				if err != nil {
					b.Fatal(err)
				}
				s.CloseSend()
				var f wire.Frame
				if into {
					f, err = s.RecvInto(room)
				} else {
					f, err = s.Recv()
				}
				if err != nil || len(f.Payload) != size {
					b.Fatalf("%d bytes, %v", len(f.Payload), err)
				}
				if err := s.Finish(nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteData measures a bulk write's shape: 256 KiB to the server
// per call, inside the CBOR arguments (fs.write: the bytes encoded,
// framed, read and decoded into buffers of their own) or as a raw data
// frame after them, read into the server's reused buffer (fs.writedata).
func BenchmarkWriteData(b *testing.B) {
	a, srv := benchNodes(b)
	const size = 256 << 10
	type writeArgs struct {
		Data []byte `cbor:"1,keyasint"`
	}
	srv.cfg.Mux.Handle("test.sink", rpc.Unary(func(_ context.Context, _ rpc.Peer, w writeArgs) (int, error) {
		return len(w.Data), nil
	}))
	room := make([]byte, size)
	srv.cfg.Mux.Handle("test.sinkdata", func(_ context.Context, call *rpc.Call) error {
		n := 0
		for {
			f, err := call.RecvInto(room[n:])
			if err == io.EOF {
				return call.SetResult(n)
			}
			if err != nil {
				return err
			}
			n += len(f.Payload)
		}
	})
	data := make([]byte, size)
	b.Run("cbor", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			var n int
			if err := a.Call(context.Background(), "b", srv.Addr().String(), "test.sink", writeArgs{data}, &n); err != nil || n != size {
				b.Fatalf("%d bytes, %v", n, err)
			}
		}
	})
	b.Run("frames", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			s, err := a.Open(context.Background(), "b", srv.Addr().String(), "test.sinkdata", nil)
			if err != nil {
				b.Fatal(err)
			}
			var n int
			if err := s.SendData(data); err != nil {
				b.Fatal(err)
			}
			s.CloseSend()
			if err := s.Finish(&n); err != nil || n != size {
				b.Fatalf("%d bytes, %v", n, err)
			}
		}
	})
}
