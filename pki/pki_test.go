package pki

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTokenLifecycle(t *testing.T) {
	now := time.Now()
	ca, _, err := NewCA("h1", now)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	tok, err := NewToken(key, ca, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.CAHash != CAFingerprint(ca) {
		t.Fatal("token does not carry the CA's fingerprint")
	}
	if err := p.Verify(key, now.Add(59*time.Minute)); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	if err := p.Verify(key, now.Add(61*time.Minute)); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("token an hour old: %v, want ErrTokenExpired", err)
	}
	if err := p.Verify([]byte("another cluster's key"), now); !errors.Is(err, ErrTokenBadMAC) {
		t.Fatalf("other key: %v, want ErrTokenBadMAC", err)
	}
	// Changing the expiry in the payload breaks the MAC.
	body := strings.TrimPrefix(tok, "sprite1.")
	forged := "sprite1." + string(body[0]^1) + body[1:]
	if fp, err := ParseToken(forged); err == nil {
		if err := fp.Verify(key, now); !errors.Is(err, ErrTokenBadMAC) {
			t.Fatalf("forged expiry: %v, want ErrTokenBadMAC", err)
		}
	}
	for _, bad := range []string{"", "sprite1.", "sprite2." + body, tok[:len(tok)-5], "sprite1.a.b"} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrTokenMalformed) {
			t.Errorf("ParseToken(%q): %v, want ErrTokenMalformed", bad, err)
		}
	}
}

func TestHostNamesAreDNSLabels(t *testing.T) {
	for _, ok := range []string{"h1", "ws-12", "a"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "H1", "../x", "a/b", "-a", "a-", "a.b", strings.Repeat("a", 64)} {
		if err := ValidName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestIdentityFilesAndKeyModes(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caKey, err := NewCA("h1", now)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := NewKey()
	cert, err := IssueHost(ca, caKey, "h2", &k.PublicKey, now, HostValidity)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := IssueHost(ca, caKey, "../evil", &k.PublicKey, now, HostValidity); err == nil {
		t.Fatal("issued a certificate for an invalid name")
	}
	if err := SaveHost(dir, ca, cert, k); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, HostKeyFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("host.key mode %o, want 600", st.Mode().Perm())
	}
	id, err := LoadIdentity(dir)
	if err != nil || id.Name != "h2" {
		t.Fatalf("LoadIdentity: %v, %+v", err, id)
	}
	os.Chmod(filepath.Join(dir, HostKeyFile), 0o644)
	if _, err := LoadIdentity(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key was loaded: %v", err)
	}
	if _, err := LoadAuthority(dir); !errors.Is(err, ErrNotCA) {
		t.Fatalf("LoadAuthority without ca.key: %v, want ErrNotCA", err)
	}
}
