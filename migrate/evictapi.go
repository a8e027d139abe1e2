package migrate

import (
	"context"
	"os/exec"
	"strings"
	"time"

	"sprite/daemon"
	"sprite/rpc"
	"sprite/wire"
)

// evictLocal serves `sprite evict` on this host: its owners or root evict
// the foreign jobs here, or (root) ask another host to.
func (e *Executor) evictLocal(ctx context.Context, p rpc.Peer, a EvictArgs) (EvictReply, error) {
	self := e.d.Self().Name
	if a.Host != "" && a.Host != self {
		if p.UID != 0 {
			return EvictReply{}, rpc.Errorf(wire.CodePermission, "sprite evict --host %s: only root may evict another host's jobs (run it on %s as one of its owners)", a.Host, a.Host)
		}
		info, up := e.d.Members.Lookup(a.Host)
		if !up {
			return EvictReply{}, rpc.Errorf(wire.CodeUnavailable, "sprite evict: host %s is not up", a.Host)
		}
		var r EvictReply
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := e.d.Node.Call(cctx, a.Host, info.Addr, MethodEvict, EvictArgs{Reason: "root on " + self + " evicted " + a.Host + "'s foreign jobs"}, &r)
		return r, err
	}
	if !e.d.Config().IsOwner(p.UID) {
		return EvictReply{}, rpc.Errorf(wire.CodePermission, "sprite evict: only root and this host's owners (config owners) may evict its foreign jobs")
	}
	who := daemon.UserName(p.UID)
	return EvictReply{Frozen: e.Evict(who+" ran sprite evict on "+self, time.Time{})}, nil
}

// evictRemote serves another host's root asking for an eviction here.
func (e *Executor) evictRemote(ctx context.Context, p rpc.Peer, a EvictArgs) (EvictReply, error) {
	why := a.Reason
	if why == "" {
		why = p.Host + " asked for an eviction"
	}
	return EvictReply{Frozen: e.Evict(why, time.Time{})}, nil
}

func (e *Executor) evictionsLocal(ctx context.Context, p rpc.Peer, _ struct{}) ([]Eviction, error) {
	return e.Evictions(), nil
}

// probeCheckpoint finds out once whether this host could checkpoint a job
// with CRIU, and says why not. `criu check` is bounded: CRIU versions that
// hang (see the brief's hazards) count as unavailable.
func probeCheckpoint(ctx context.Context) string {
	path, err := exec.LookPath("criu")
	if err != nil {
		return "criu is not installed"
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, path, "check").CombinedOutput()
	switch {
	case cctx.Err() != nil:
		return "criu check did not finish within 10 s"
	case err != nil:
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return "criu check failed: " + line
	}
	return "criu check passes, but sprite's CRIU backend is not built yet"
}

// checkpointUnavailable says why a job here cannot be checkpointed.
func (e *Executor) checkpointUnavailable() string {
	if s, _ := e.criu.Load().(string); s != "" {
		return s
	}
	return "the checkpoint probe has not finished"
}
