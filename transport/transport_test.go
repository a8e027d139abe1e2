package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"sprite/pki"
	"sprite/rpc"
	"sprite/wire"
)

type cluster struct {
	ca  *x509.Certificate
	key any
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ca, key, err := pki.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{ca: ca, key: key}
}

// identity issues a host certificate valid from now+offset for validity.
func (c *cluster) identity(t *testing.T, name string, offset, validity time.Duration) *pki.Identity {
	t.Helper()
	k, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.IssueHost(c.ca, c.key.(*ecdsa.PrivateKey), name, &k.PublicKey, time.Now().Add(offset), validity)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.ca)
	return &pki.Identity{Name: name, CA: c.ca, Pool: pool,
		Cert: tls.Certificate{Certificate: [][]byte{cert.Raw, c.ca.Raw}, PrivateKey: k, Leaf: cert}}
}

// syncBuf is a log sink safe for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type echoArgs struct {
	Text string `cbor:"1,keyasint"`
}

type echoReply struct {
	Text string `cbor:"1,keyasint"`
	From string `cbor:"2,keyasint"`
}

func startNode(t *testing.T, id *pki.Identity, logs *syncBuf) *Node {
	t.Helper()
	mux := rpc.NewMux()
	mux.Handle("test.echo", rpc.Unary(func(_ context.Context, p rpc.Peer, a echoArgs) (echoReply, error) {
		return echoReply{Text: a.Text, From: p.Host}, nil
	}))
	if logs == nil {
		logs = &syncBuf{}
	}
	n, err := Listen(Config{Identity: id, Listen: "127.0.0.1:0", Mux: mux, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestCallCarriesCertifiedIdentity(t *testing.T) {
	c := newCluster(t)
	a := startNode(t, c.identity(t, "a", 0, time.Hour), nil)
	b := startNode(t, c.identity(t, "b", 0, time.Hour), nil)
	var rep echoReply
	if err := a.Call(context.Background(), "b", b.Addr().String(), "test.echo", echoArgs{"hi"}, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Text != "hi" || rep.From != "a" {
		t.Fatalf("reply %+v: want text hi, caller a", rep)
	}
	// The client checks the server's name: b's address is not host "c".
	err := a.Call(context.Background(), "c", b.Addr().String(), "test.echo", echoArgs{"hi"}, &rep)
	if err == nil || !strings.Contains(err.Error(), `expected "c"`) {
		t.Fatalf("calling b's address as c: %v, want a name mismatch", err)
	}
	var re *rpc.Error
	err = a.Call(context.Background(), "b", b.Addr().String(), "test.nothing", nil, nil)
	if !errors.As(err, &re) || re.Code != wire.CodeNoMethod {
		t.Fatalf("unknown method: %v, want CodeNoMethod", err)
	}
}

func TestForeignAndExpiredCertificatesRefused(t *testing.T) {
	c := newCluster(t)
	logs := &syncBuf{}
	srv := startNode(t, c.identity(t, "srv", 0, time.Hour), logs)
	// The attackers skip checking the server, so only the server's check
	// stands between them and the cluster.
	for _, tc := range []struct {
		id   *pki.Identity
		logs string
	}{
		{newCluster(t).identity(t, "evil", 0, time.Hour), "not signed by this cluster's CA"},
		{c.identity(t, "old", -48*time.Hour, time.Hour), "expired"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conf := &tls.Config{NextProtos: []string{ALPN}, InsecureSkipVerify: true, Certificates: []tls.Certificate{tc.id.Cert}}
		conn, err := quic.DialAddr(ctx, srv.Addr().String(), conf, nil)
		if err == nil {
			_, err = conn.AcceptStream(ctx)
		}
		cancel()
		if err == nil {
			t.Fatalf("%s was served", tc.id.Name)
		}
		if !strings.Contains(logs.String(), tc.logs) {
			t.Errorf("server log lacks %q after %s tried:\n%s", tc.logs, tc.id.Name, logs.String())
		}
	}
	// A client without any certificate is refused too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conf := &tls.Config{NextProtos: []string{ALPN}, InsecureSkipVerify: true}
	if conn, err := quic.DialAddr(ctx, srv.Addr().String(), conf, nil); err == nil {
		_, err = conn.AcceptStream(ctx)
		if err == nil {
			t.Fatal("a client without a certificate was served")
		}
	}
}

// rawConn dials srv as a legitimate host and returns the QUIC connection, to
// send bytes the rpc layer would never send.
func rawConn(t *testing.T, id *pki.Identity, srv *Node) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, srv.Addr().String(), clientTLS(id, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

func TestGarbageAndOversizedFramesDropOnlyThatPeer(t *testing.T) {
	c := newCluster(t)
	logs := &syncBuf{}
	srv := startNode(t, c.identity(t, "srv", 0, time.Hour), logs)
	good := startNode(t, c.identity(t, "good", 0, time.Hour), nil)
	bad := c.identity(t, "bad", 0, time.Hour)

	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{wire.Magic, wire.Version, wire.FrameCall, 0, 0x7f, 0xff, 0xff, 0xff}, // 2 GiB frame
	} {
		conn := rawConn(t, bad, srv)
		s, err := conn.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write(junk)
		select {
		case <-conn.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("server kept the connection after %q", junk[:8])
		}
		var ae *quic.ApplicationError
		if err := context.Cause(conn.Context()); !errors.As(err, &ae) || !strings.Contains(ae.ErrorMessage, "protocol violation") {
			t.Fatalf("connection closed with %v, want a protocol violation", err)
		}
		var rep echoReply
		if err := good.Call(context.Background(), "srv", srv.Addr().String(), "test.echo", echoArgs{"still"}, &rep); err != nil || rep.Text != "still" {
			t.Fatalf("a well-behaved host was disturbed: %v", err)
		}
	}
	if !strings.Contains(logs.String(), "peer broke the wire protocol") || !strings.Contains(logs.String(), "peer=bad") {
		t.Fatalf("server did not log why it dropped the peer:\n%s", logs.String())
	}
}

func TestDeadPeerDetectedWithinSeconds(t *testing.T) {
	c := newCluster(t)
	a := startNode(t, c.identity(t, "a", 0, time.Hour), nil)
	b := startNode(t, c.identity(t, "b", 0, time.Hour), nil)
	if err := a.Call(context.Background(), "b", b.Addr().String(), "test.echo", echoArgs{"x"}, nil); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	conn := a.pool["b"].conn
	a.mu.Unlock()
	b.udp.Close() // b vanishes without a word
	select {
	case <-conn.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection to a vanished peer was still open after 10 s")
	}
}

// A peer that restarts on the same port resets the connection its previous
// run held, so calls to it work again within moments, long before the idle
// timeout would have found the old connection dead.
func TestRestartedPeerResetsStaleConnection(t *testing.T) {
	c := newCluster(t)
	idB := c.identity(t, "b", 0, time.Hour)
	a, err := Listen(Config{Identity: c.identity(t, "a", 0, time.Hour), Listen: "127.0.0.1:0",
		IdleTimeout: time.Minute, Logger: slog.New(slog.NewTextHandler(&syncBuf{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	quiet := slog.New(slog.NewTextHandler(&syncBuf{}, nil))
	b, err := Listen(Config{Identity: idB, Listen: "127.0.0.1:0", IdleTimeout: time.Minute, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr().String()
	var re *rpc.Error
	if err := a.Call(context.Background(), "b", addr, "test.nothing", nil, nil); !errors.As(err, &re) {
		t.Fatalf("first call: %v, want b's no-such-method answer", err)
	}
	b.udp.Close() // b crashes: no goodbye reaches a
	defer b.Close()
	b2, err := Listen(Config{Identity: idB, Listen: addr, IdleTimeout: time.Minute, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := a.Call(ctx, "b", addr, "test.nothing", nil, nil)
		cancel()
		if errors.As(err, &re) && re.Code == wire.CodeNoMethod { // b2 answered
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("calls to a restarted peer still failing after 5 s (idle timeout 1 min): %v", err)
		}
	}
}
