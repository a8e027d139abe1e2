package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names inside the state directory.
const (
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key"
	JoinKeyFile  = "join.key"
	HostCertFile = "host.crt"
	HostKeyFile  = "host.key"
)

// Identity is what a host needs to speak mutual TLS.
type Identity struct {
	Name string
	Cert tls.Certificate // leaf, then the CA
	CA   *x509.Certificate
	Pool *x509.CertPool
}

// WriteFile writes data atomically with the given mode.
func WriteFile(dir, name string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// SaveHost writes the host's key and certificate and the CA certificate.
func SaveHost(dir string, ca, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	kp, err := KeyPEM(key)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{HostKeyFile, kp, 0o600},
		{HostCertFile, CertPEM(cert), 0o644},
		{CACertFile, CertPEM(ca), 0o644},
	} {
		if err := WriteFile(dir, f.name, f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("read %s: no %s PEM block", path, typ)
	}
	return blk.Bytes, nil
}

// LoadCert reads a PEM certificate.
func LoadCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// LoadKey reads a PEM private key, refusing one readable by others.
func LoadKey(path string) (*ecdsa.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key %s has mode %o: run `chmod 600 %s`", path, st.Mode().Perm(), path)
	}
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key %s is %T, want ECDSA", path, k)
	}
	return ek, nil
}

// LoadIdentity reads the host's certificate, key and CA from dir.
func LoadIdentity(dir string) (*Identity, error) {
	ca, err := LoadCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w (has this host run `sprite init` or `sprite join`?)", err)
	}
	cert, err := LoadCert(filepath.Join(dir, HostCertFile))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	key, err := LoadKey(filepath.Join(dir, HostKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	name, err := HostName(cert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Identity{
		Name: name,
		Cert: tls.Certificate{Certificate: [][]byte{cert.Raw, ca.Raw}, PrivateKey: key, Leaf: cert},
		CA:   ca,
		Pool: pool,
	}, nil
}

// Authority is the CA's signing material, present only on the CA host.
type Authority struct {
	CA      *x509.Certificate
	Key     *ecdsa.PrivateKey
	JoinKey []byte
}

// ErrNotCA means this host holds no CA key.
var ErrNotCA = errors.New("this host holds no cluster CA key")

// LoadAuthority reads ca.crt, ca.key and join.key from dir.
func LoadAuthority(dir string) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s): run this on the host that ran `sprite init`", ErrNotCA, dir)
	}
	ca, err := LoadCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	key, err := LoadKey(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	jp := filepath.Join(dir, JoinKeyFile)
	if st, err := os.Stat(jp); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key %s has mode %o: run `chmod 600 %s`", jp, st.Mode().Perm(), jp)
	}
	jk, err := os.ReadFile(jp)
	if err != nil {
		return nil, err
	}
	return &Authority{CA: ca, Key: key, JoinKey: jk}, nil
}
