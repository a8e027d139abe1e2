// Package pki holds a cluster's keys and certificates: the cluster CA, each
// host's certificate (its name is the certificate's common name and DNS
// name, and that name is the host's identity on the wire), and the join
// tokens that let a new host get a certificate.
//
// Files in the state directory (default /var/lib/sprite), keys 0600:
//
//	ca.crt    the cluster CA certificate (every host)
//	ca.key    the CA's private key (only the host that ran `sprite init`)
//	join.key  the HMAC key that signs join tokens (only that host)
//	host.crt  this host's certificate, signed by the CA
//	host.key  this host's private key
//
// Keys are ECDSA P-256. Host certificates are valid for a year and serve as
// both TLS server and client certificates (mutual TLS).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"regexp"
	"time"
)

// Validity periods.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	HostValidity = 365 * 24 * time.Hour
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName checks a host name: lower-case letters, digits and '-', 1 to 63
// characters, as a DNS label. Names arrive over the network and become file
// and certificate names, so nothing else is accepted.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid host name %q: use 1-63 lower-case letters, digits and '-' (a DNS label)", name)
	}
	return nil
}

// NewKey makes a P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
}

// NewCA makes a self-signed cluster CA named after the cluster's first host.
func NewCA(first string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, fmt.Errorf("make CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "sprite cluster CA (" + first + ")", Organization: []string{"sprite"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("make CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// IssueHost signs a host certificate for name and pub, valid from now for
// validity.
func IssueHost(ca *x509.Certificate, caKey crypto.Signer, name string, pub crypto.PublicKey, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"sprite"}},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", name, err)
	}
	return x509.ParseCertificate(der)
}

// NewCSR makes a certificate request for name signed by key.
func NewCSR(name string, key *ecdsa.PrivateKey) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
	}, key)
}

// ParseCSR parses and checks a request's self-signature.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	return csr, nil
}

// HostName returns the host identity carried by a verified certificate.
func HostName(c *x509.Certificate) (string, error) {
	name := c.Subject.CommonName
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("peer certificate: %w", err)
	}
	return name, nil
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// CertPEM encodes a certificate.
func CertPEM(c *x509.Certificate) []byte { return encodePEM("CERTIFICATE", c.Raw) }

// KeyPEM encodes a private key.
func KeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return encodePEM("PRIVATE KEY", der), nil
}
