package transport

import (
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"

	"github.com/quic-go/quic-go"

	"sprite/pki"
)

// resetKey is the key of this host's QUIC stateless resets (RFC 9000
// section 10.3). It is derived from the host's private key, so a daemon
// that restarts on the same port answers a packet of a connection its
// previous run held with a reset the peer can verify: the peer drops the
// stale connection at once and its next call dials anew, instead of
// sending into it until IdleTimeout. A host whose key is not ECDSA (none
// today) gets a random key: resets then work only within one run.
func resetKey(id *pki.Identity) *quic.StatelessResetKey {
	var k quic.StatelessResetKey
	if ek, ok := id.Cert.PrivateKey.(*ecdsa.PrivateKey); ok {
		if secret, err := ek.Bytes(); err == nil {
			if b, err := hkdf.Key(sha256.New, secret, nil, "sprite quic stateless reset", len(k)); err == nil {
				copy(k[:], b)
				return &k
			}
		}
	}
	rand.Read(k[:])
	return &k
}
