package pki

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A join token lets one new host enrol until it expires. It is
//
//	"sprite1." base64url(payload) "." base64url(HMAC-SHA256(join.key, payload))
//
// with payload = expiry (uint64 unix seconds, big endian) | 16 random bytes |
// SHA-256 of the CA certificate. The joining host pins the CA by that hash
// before it sends anything, and the CA host checks the MAC and the expiry.

const tokenPrefix = "sprite1."

// Token errors; test with errors.Is.
var (
	ErrTokenMalformed = errors.New("join token is malformed")
	ErrTokenBadMAC    = errors.New("join token signature does not match this cluster")
	ErrTokenExpired   = errors.New("join token has expired")
)

// Token is a parsed join token.
type Token struct {
	Expires time.Time
	CAHash  [32]byte
	payload []byte
	mac     []byte
}

// CAFingerprint is the SHA-256 of a certificate's DER bytes.
func CAFingerprint(ca *x509.Certificate) [32]byte { return sha256.Sum256(ca.Raw) }

// NewToken makes a token valid for ttl from now.
func NewToken(joinKey []byte, ca *x509.Certificate, now time.Time, ttl time.Duration) (string, error) {
	payload := make([]byte, 8+16+32)
	binary.BigEndian.PutUint64(payload, uint64(now.Add(ttl).Unix()))
	if _, err := rand.Read(payload[8:24]); err != nil {
		return "", err
	}
	h := CAFingerprint(ca)
	copy(payload[24:], h[:])
	m := hmac.New(sha256.New, joinKey)
	m.Write(payload)
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(m.Sum(nil)), nil
}

// ParseToken decodes a token without checking its MAC.
func ParseToken(s string) (Token, error) {
	var t Token
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return t, fmt.Errorf("%w: it should start with %q", ErrTokenMalformed, tokenPrefix)
	}
	p, m, ok := strings.Cut(rest, ".")
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(m)
	if !ok || err1 != nil || err2 != nil || len(payload) != 56 || len(mac) != sha256.Size {
		return t, fmt.Errorf("%w: copy the whole line that `sprite token` printed", ErrTokenMalformed)
	}
	t.Expires = time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)
	copy(t.CAHash[:], payload[24:])
	t.payload, t.mac = payload, mac
	return t, nil
}

// Verify checks the token's MAC with joinKey and its expiry against now.
func (t Token) Verify(joinKey []byte, now time.Time) error {
	m := hmac.New(sha256.New, joinKey)
	m.Write(t.payload)
	if !hmac.Equal(m.Sum(nil), t.mac) {
		return ErrTokenBadMAC
	}
	if now.After(t.Expires) {
		return fmt.Errorf("%w (at %s)", ErrTokenExpired, t.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}
