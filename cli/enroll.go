package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sprite/daemon"
	"sprite/pki"
	"sprite/transport"
)

func init() {
	register("init", "create a cluster: its CA and this, its first host", initMain)
	register("token", "print a time-limited token for `sprite join` (on the CA host)", tokenMain)
	register("join", "enrol this host in a cluster with a token", joinMain)
}

// exportList collects repeated --export PREFIX=PATH flags.
type exportList []daemon.Export

func (e *exportList) String() string { return fmt.Sprint(*e) }
func (e *exportList) Set(v string) error {
	p, d, ok := strings.Cut(v, "=")
	if !ok || !strings.HasPrefix(p, "/") || !filepath.IsAbs(d) {
		return fmt.Errorf("want PREFIX=PATH with both absolute, e.g. /home/h1=/home")
	}
	*e = append(*e, daemon.Export{Prefix: filepath.Clean(p), Path: filepath.Clean(d)})
	return nil
}

// hostFlags are the flags init and join share.
type hostFlags struct {
	state, name, addr, listen *string
	idleAfter                 *time.Duration
	cpus                      *float64
	exports                   exportList
}

func newHostFlags(fs *flag.FlagSet) *hostFlags {
	h := &hostFlags{
		state:     stateFlag(fs),
		name:      fs.String("name", "", "this host's `name` in the cluster (a DNS label)"),
		addr:      fs.String("addr", "", "`host:port` other hosts reach this one at (UDP)"),
		listen:    fs.String("listen", "", "UDP `address` to listen on (default :7170)"),
		idleAfter: fs.Duration("idle-after", 30*time.Second, "no owner input for this long makes the host idle"),
		cpus:      fs.Float64("cpus", 0, "CPUs to advertise (0: detect, honouring cgroup quotas)"),
	}
	fs.Var(&h.exports, "export", "export a local directory: `PREFIX=PATH` (repeatable)")
	return h
}

func (h *hostFlags) check() error {
	if err := pki.ValidName(*h.name); err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	if *h.addr == "" {
		return errors.New("--addr is required: the host:port other hosts reach this one at, e.g. 10.0.0.5:7170")
	}
	if _, err := os.Stat(filepath.Join(*h.state, pki.HostCertFile)); err == nil {
		return fmt.Errorf("%s already holds a host certificate; this host is enrolled (remove the directory to start over)", *h.state)
	}
	return os.MkdirAll(*h.state, 0o755)
}

func (h *hostFlags) config(seeds []string, idledb string) *daemon.Config {
	c := &daemon.Config{Name: *h.name, Addr: *h.addr, Listen: *h.listen, Seeds: seeds, CPUs: *h.cpus, Exports: h.exports, IdleDB: idledb}
	c.IdleAfter.Duration = *h.idleAfter
	c.SetDefaults()
	return c
}

func initMain(args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	h := newHostFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if err := h.check(); err != nil {
		return err
	}
	now := time.Now()
	ca, caKey, err := pki.NewCA(*h.name, now)
	if err != nil {
		return err
	}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	cert, err := pki.IssueHost(ca, caKey, *h.name, &key.PublicKey, now, pki.HostValidity)
	if err != nil {
		return err
	}
	caPEM, err := pki.KeyPEM(caKey)
	if err != nil {
		return err
	}
	joinKey := make([]byte, 32)
	if _, err := rand.Read(joinKey); err != nil {
		return err
	}
	if err := pki.WriteFile(*h.state, pki.CAKeyFile, caPEM, 0o600); err != nil {
		return err
	}
	if err := pki.WriteFile(*h.state, pki.JoinKeyFile, joinKey, 0o600); err != nil {
		return err
	}
	if err := pki.SaveHost(*h.state, ca, cert, key); err != nil {
		return err
	}
	if err := daemon.SaveConfig(*h.state, h.config(nil, *h.name)); err != nil {
		return err
	}
	fmt.Printf("created cluster CA and host %s in %s\nstart the daemon (`sprite daemon` or `systemctl start sprite`), then `sprite token` for each new host\n", *h.name, *h.state)
	return nil
}

func tokenMain(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	state := stateFlag(fs)
	ttl := fs.Duration("ttl", time.Hour, "how long the token stays valid")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *ttl <= 0 {
		return errors.New("--ttl must be positive")
	}
	auth, err := pki.LoadAuthority(*state)
	if err != nil {
		return err
	}
	tok, err := pki.NewToken(auth.JoinKey, auth.CA, time.Now(), *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

func joinMain(args []string) error {
	fs := flag.NewFlagSet("join", flag.ContinueOnError)
	h := newHostFlags(fs)
	token := fs.String("token", "", "join `token` from `sprite token` on the CA host")
	server := fs.String("server", "", "`host:port` of the CA host's daemon")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *server == "" || *token == "" {
		return errors.New("--token and --server are required: run `sprite token` on the CA host and pass its address")
	}
	if err := h.check(); err != nil {
		return err
	}
	tok, err := pki.ParseToken(*token)
	if err != nil {
		return err
	}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(*h.name, key)
	if err != nil {
		return err
	}
	var rep daemon.JoinReply
	req := daemon.JoinRequest{Token: *token, Name: *h.name, CSR: csr, Addr: *h.addr}
	verify := func(raw [][]byte) error { return daemon.VerifyPinned(raw, tok.CAHash) }
	if err := transport.JoinCall(context.Background(), *server, verify, daemon.MethodJoin, req, &rep); err != nil {
		return fmt.Errorf("refused by %s: %w", *server, err)
	}
	return saveJoined(h, tok, rep, key, *server)
}

func saveJoined(h *hostFlags, tok pki.Token, rep daemon.JoinReply, key *ecdsa.PrivateKey, server string) error {
	ca, err := x509.ParseCertificate(rep.CA)
	if err != nil || pki.CAFingerprint(ca) != tok.CAHash {
		return errors.New("the CA host answered with a CA that does not match the token; not saving anything")
	}
	cert, err := x509.ParseCertificate(rep.Cert)
	if err != nil || cert.Subject.CommonName != *h.name {
		return errors.New("the CA host answered with a certificate for another name; not saving anything")
	}
	if err := pki.SaveHost(*h.state, ca, cert, key); err != nil {
		return err
	}
	seed := rep.Seed
	if seed == "" {
		seed = server
	}
	if err := daemon.SaveConfig(*h.state, h.config([]string{seed}, rep.IdleDB)); err != nil {
		return err
	}
	fmt.Printf("joined the cluster as %s; start the daemon (`sprite daemon` or `systemctl start sprite`)\n", *h.name)
	return nil
}
