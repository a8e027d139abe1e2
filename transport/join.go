package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"sprite/rpc"
	"sprite/wire"
)

// JoinCall makes one call on the enrollment ALPN of the host at addr,
// without a client certificate. verify checks the server's raw certificate
// chain (the joining host pins the CA hash from its token).
func JoinCall(ctx context.Context, addr string, verify func(chain [][]byte) error, method string, args, reply any) error {
	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{JoinALPN},
		InsecureSkipVerify: true, // verified by the pinned CA hash instead
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verify(raw)
		},
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, addr, tlsConf, &quic.Config{HandshakeIdleTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("connect to %s: %w (is its daemon running, and is UDP reachable?)", addr, err)
	}
	defer c.CloseWithError(codeShutdown, "done")
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	return rpc.Invoke(ctx, stream{s, c}, method, args, reply, wire.DefaultMaxFrame)
}
