package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"sprite/pki"
)

// serverTLS picks, per ClientHello, the enrollment config (JoinALPN, no
// client certificate) or the cluster config (client certificate required and
// verified against the CA, refusals logged with the peer's address).
func (n *Node) serverTLS() *tls.Config {
	id := n.cfg.Identity
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{ALPN},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			remote := "unknown"
			if hello.Conn != nil {
				remote = hello.Conn.RemoteAddr().String()
			}
			for _, p := range hello.SupportedProtos {
				if p == JoinALPN && n.cfg.JoinMux != nil {
					return &tls.Config{
						MinVersion:   tls.VersionTLS13,
						NextProtos:   []string{JoinALPN},
						Certificates: []tls.Certificate{id.Cert},
						ClientAuth:   tls.NoClientCert,
					}, nil
				}
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				NextProtos:   []string{ALPN},
				Certificates: []tls.Certificate{id.Cert},
				ClientAuth:   tls.RequireAnyClientCert,
				VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
					name, err := verifyChain(raw, id.Pool, x509.ExtKeyUsageClientAuth)
					if err != nil {
						n.log.Warn("refused connection: client certificate not accepted",
							"remote", remote, "err", err)
						return err
					}
					n.log.Debug("peer authenticated", "peer", name, "remote", remote)
					return nil
				},
			}, nil
		},
	}
}

// clientTLS is the config for dialling host name; name "" accepts any host
// certified by the CA (used for seeds, whose name is learnt from the
// certificate).
func clientTLS(id *pki.Identity, name string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{ALPN},
		Certificates:       []tls.Certificate{id.Cert},
		InsecureSkipVerify: true, // verified below, with the host name check our way
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got, err := verifyChain(raw, id.Pool, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if name != "" && got != name {
				return fmt.Errorf("peer certificate is for host %q, expected %q", got, name)
			}
			return nil
		},
	}
}

// verifyChain verifies a peer's certificate chain against the cluster CA and
// returns the host name it certifies. Only the CA is trusted: intermediates
// the peer sends are ignored, so a foreign CA cannot slip in.
func verifyChain(raw [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("no certificate presented (the host has not joined the cluster)")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return "", fmt.Errorf("unparsable certificate: %w", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		var ue x509.UnknownAuthorityError
		var ie x509.CertificateInvalidError
		switch {
		case errors.As(err, &ue):
			return "", fmt.Errorf("certificate of %q is not signed by this cluster's CA", leaf.Subject.CommonName)
		case errors.As(err, &ie) && ie.Reason == x509.Expired:
			return "", fmt.Errorf("certificate of %q is expired or not yet valid (valid %s to %s)",
				leaf.Subject.CommonName, leaf.NotBefore.UTC().Format("2006-01-02"), leaf.NotAfter.UTC().Format("2006-01-02"))
		}
		return "", fmt.Errorf("certificate of %q: %w", leaf.Subject.CommonName, err)
	}
	return pki.HostName(leaf)
}

// peerName returns the verified host name of a connection's peer.
func peerName(cs tls.ConnectionState) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", errors.New("peer presented no certificate")
	}
	return pki.HostName(cs.PeerCertificates[0])
}

func logAddr(a net.Addr) slog.Attr { return slog.String("remote", a.String()) }
