package daemon

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"time"

	"sprite/pki"
	"sprite/rpc"
	"sprite/wire"
)

// MethodJoin enrols a new host; it is served only on the join ALPN, by the
// host that holds the CA key.
const MethodJoin = "cluster.join"

// JoinRequest asks the CA host for a certificate.
type JoinRequest struct {
	Token string `cbor:"1,keyasint"`
	Name  string `cbor:"2,keyasint"`
	CSR   []byte `cbor:"3,keyasint"`
	Addr  string `cbor:"4,keyasint"`
}

// JoinReply carries the new host's certificate and the CA.
type JoinReply struct {
	Cert []byte `cbor:"1,keyasint"`
	CA   []byte `cbor:"2,keyasint"`
	// Seed is the CA host's address, the new host's first peer.
	Seed string `cbor:"3,keyasint"`
	// IdleDB names the host running the idle database.
	IdleDB string `cbor:"4,keyasint,omitempty"`
}

type enroller struct {
	auth    *pki.Authority
	members *Members
	seed    string
	idledb  string // told to joining hosts
	log     *slog.Logger
	now     func() time.Time
}

func (e *enroller) handle(ctx context.Context, p rpc.Peer, r JoinRequest) (JoinReply, error) {
	rep, err := e.issue(r)
	if err != nil {
		e.log.Warn("refused join", "name", r.Name, "remote", p.Addr, "err", err)
		return JoinReply{}, err
	}
	e.log.Info("enrolled host", "name", r.Name, "remote", p.Addr)
	return rep, nil
}

func (e *enroller) issue(r JoinRequest) (JoinReply, error) {
	if err := pki.ValidName(r.Name); err != nil {
		return JoinReply{}, rpc.Errorf(wire.CodeBadRequest, "join: %v", err)
	}
	tok, err := pki.ParseToken(r.Token)
	if err != nil {
		return JoinReply{}, rpc.Errorf(wire.CodeBadRequest, "join: %v", err)
	}
	if err := tok.Verify(e.auth.JoinKey, e.now()); err != nil {
		hint := "ask an operator of the CA host for a new one (`sprite token`)"
		if errors.Is(err, pki.ErrTokenBadMAC) {
			hint = "check you copied the token of this cluster, or make a new one with `sprite token`"
		}
		return JoinReply{}, rpc.Errorf(wire.CodePermission, "join: %v; %s", err, hint)
	}
	if info, up := e.members.Lookup(r.Name); up || r.Name == e.members.self.Name {
		return JoinReply{}, rpc.Errorf(wire.CodePermission,
			"join: host name %q is in use by a live host (%s); pick another name or stop that host first", r.Name, info.Addr)
	}
	csr, err := pki.ParseCSR(r.CSR)
	if err != nil {
		return JoinReply{}, rpc.Errorf(wire.CodeBadRequest, "join: %v", err)
	}
	if csr.Subject.CommonName != r.Name {
		return JoinReply{}, rpc.Errorf(wire.CodeBadRequest, "join: request is for %q, not %q", csr.Subject.CommonName, r.Name)
	}
	cert, err := pki.IssueHost(e.auth.CA, e.auth.Key, r.Name, csr.PublicKey, e.now(), pki.HostValidity)
	if err != nil {
		return JoinReply{}, err
	}
	return JoinReply{Cert: cert.Raw, CA: e.auth.CA.Raw, Seed: e.seed, IdleDB: e.idledb}, nil
}

// VerifyPinned checks that a server's chain was issued by the CA whose
// SHA-256 is want, the check a joining host does with its token's hash.
func VerifyPinned(raw [][]byte, want [32]byte) error {
	if len(raw) < 2 {
		return errors.New("the server sent no CA certificate; is it a sprite host?")
	}
	ca, err := x509.ParseCertificate(raw[len(raw)-1])
	if err != nil {
		return err
	}
	if pki.CAFingerprint(ca) != want {
		return errors.New("the server's cluster CA does not match the token; is --server the right cluster?")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}
