package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"sprite/api"
	"sprite/rpc"
	"sprite/wire"
)

// localServer serves the CLI on a unix socket. Any local user may connect
// (the socket is 0666); each method decides what the caller, known from
// SO_PEERCRED, may do.
type localServer struct {
	ln   *net.UnixListener
	mux  *rpc.Mux
	host string
	log  *slog.Logger
	wg   sync.WaitGroup // connection goroutines
}

func listenLocal(path, host string, mux *rpc.Mux, log *slog.Logger) (*localServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("local socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("local socket %s: another sprite daemon is serving it; stop that one first", path)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local socket %s: %w", path, err)
	}
	return &localServer{ln: ln, mux: mux, host: host, log: log}, nil
}

// serve accepts connections until the listener is closed.
func (s *localServer) serve(ctx context.Context) {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("local socket accept failed", "err", err)
			}
			return
		}
		s.wg.Go(func() { s.serveConn(ctx, c) })
	}
}

func (s *localServer) serveConn(ctx context.Context, c *net.UnixConn) {
	peer, err := peerCred(c, s.host)
	if err != nil {
		s.log.Warn("local connection without credentials", "err", err)
		c.Close()
		return
	}
	conn := api.NewUnixConn(c)
	if err := rpc.ServeStream(ctx, conn, peer, s.mux, wire.DefaultMaxFrame); err != nil {
		s.log.Warn("local call failed", "uid", peer.UID, "pid", peer.PID, "err", err)
	}
	conn.Done()
}

// peerCred reads the caller's uid, gid and pid from SO_PEERCRED.
func peerCred(c *net.UnixConn, host string) (rpc.Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return rpc.Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return rpc.Peer{}, err
	}
	if cerr != nil {
		return rpc.Peer{}, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return rpc.Peer{Host: host, Addr: "local", Local: true, UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}

func (s *localServer) close() {
	s.ln.Close()
	s.wg.Wait()
}
