package homenode

import (
	"context"
	"fmt"
	"strings"

	"sprite/daemon"
	"sprite/idledb"
	"sprite/migrate"
	"sprite/rpc"
	"sprite/wire"
)

// session is a set of hosts held from the idle database for a group of
// jobs (a pmake run); its jobs are placed on them, up to each host's
// slots.
type session struct {
	hosts   []idledb.Grant // guarded by Service.mu; the current holding
	running map[string]int // guarded by Service.mu; jobs per host
}

func sessionKey(uid uint32, name string) string { return fmt.Sprintf("%d/%s", uid, name) }

// session serves MethodLocalSession: hold hosts while the caller's stream
// is open, and tell it every change.
func (s *Service) session(ctx context.Context, c *rpc.Call) error {
	if !c.Peer.Local {
		return rpc.Errorf(wire.CodePermission, "%s: only local callers may open sessions", c.Method)
	}
	var a migrate.SessionArgs
	if err := c.Args(&a); err != nil {
		return err
	}
	if a.ID == "" || len(a.ID) > 64 || strings.ContainsAny(a.ID, "/\x00") || a.N < 0 || a.N > 1000 {
		return rpc.Errorf(wire.CodeBadRequest, "%s: session %q of %d hosts: want a name of 1 to 64 characters without '/' and 0 to 1000 hosts", c.Method, a.ID, a.N)
	}
	key := sessionKey(c.Peer.UID, a.ID)
	ss := &session{running: map[string]int{}}
	s.mu.Lock()
	if s.sessions[key] != nil {
		s.mu.Unlock()
		return rpc.Errorf(wire.CodeBadRequest, "%s: session %q is already open", c.Method, a.ID)
	}
	s.sessions[key] = ss
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, key)
		s.mu.Unlock()
	}()
	db := s.idle.Client()
	if db == nil {
		c.Send(idledb.Grants{ID: a.ID, Want: a.N, Hosts: []idledb.Grant{}, Event: "no idle database: jobs run at home"})
		for {
			if _, err := c.Recv(); err != nil {
				return nil
			}
		}
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The caller closing its stream ends the session. This goroutine
	// ends when the stream does: at the latest when the call is released.
	go func() {
		for {
			if _, err := c.Recv(); err != nil {
				cancel()
				return
			}
		}
	}()
	hold := db.Hold(hctx, idledb.Request{ID: fmt.Sprintf("session-%d-%s", c.Peer.UID, a.ID), User: daemon.UserName(c.Peer.UID), N: a.N})
	for g := range hold.C {
		s.mu.Lock()
		ss.hosts = g.Hosts
		s.mu.Unlock()
		if err := c.Send(g); err != nil {
			cancel()
		}
	}
	return nil
}
