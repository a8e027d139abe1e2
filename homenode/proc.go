package homenode

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"sprite/fs"
	"sprite/migrate"
	"sprite/rpc"
	"sprite/wire"
)

// The home node serves /sprite/proc (package fs): every home's jobs,
// their status for their owner and a ctl file that signals them.
var _ fs.ProcTable = (*Service)(nil)

// Procs lists every home's jobs.
func (s *Service) Procs(ctx context.Context) ([]fs.ProcEntry, error) {
	if !s.ready.Load() {
		return nil, nil
	}
	var out []fs.ProcEntry
	for _, j := range s.cluster(ctx, 0) {
		out = append(out, fs.ProcEntry{ID: j.ID, UID: j.UID, GID: j.GID})
	}
	return out, nil
}

// ProcStatus is /sprite/proc/<id>/status, for the job's owner or root.
func (s *Service) ProcStatus(ctx context.Context, id string, cred fs.Cred) ([]byte, error) {
	j, err := s.find(ctx, id)
	if err != nil {
		return nil, err
	}
	if cred.UID != 0 && cred.UID != j.UID {
		return nil, syscall.EACCES
	}
	var b strings.Builder
	fmt.Fprintf(&b, "id:\t%s\nhome:\t%s\nhost:\t%s\nuser:\t%s\nuid:\t%d\nstate:\t%s\npid:\t%d\nstarted:\t%s\ncommand:\t%s\n",
		j.ID, j.Home, j.Host, j.User, j.UID, j.State, j.PID,
		time.UnixMilli(j.StartMs).UTC().Format(time.RFC3339), j.Command)
	return []byte(b.String()), nil
}

// ProcCtl signals a job for a write to its ctl file.
func (s *Service) ProcCtl(ctx context.Context, id string, cred fs.Cred, sig syscall.Signal) error {
	if !s.ready.Load() {
		return syscall.ENOENT
	}
	err := s.Kill(ctx, migrate.KillArgs{ID: id, Signal: int(sig), UID: cred.UID})
	if err == nil {
		return nil
	}
	switch rpc.CodeOf(err) {
	case wire.CodePermission:
		return syscall.EACCES
	case wire.CodeNotFound:
		return syscall.ENOENT
	case wire.CodeBadRequest:
		return syscall.EINVAL
	default:
		s.log.Warn("ctl write failed", "id", id, "err", err)
		return syscall.EIO
	}
}

// find looks a job up at its home (full details: asked as root).
func (s *Service) find(ctx context.Context, id string) (migrate.Job, error) {
	if !s.ready.Load() {
		return migrate.Job{}, syscall.ENOENT
	}
	home, _, _ := strings.Cut(id, ".")
	var jobs []migrate.Job
	if home == s.d.Self().Name {
		jobs = s.list(0, true)
	} else {
		info, up := s.d.Members.Lookup(home)
		if !up {
			return migrate.Job{}, syscall.ENOENT
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		if err := s.d.Node.Call(cctx, home, info.Addr, migrate.MethodHomeJobs, migrate.JobsArgs{All: true, UID: 0}, &jobs); err != nil {
			return migrate.Job{}, syscall.EIO
		}
	}
	for _, j := range jobs {
		if j.ID == id {
			return j, nil
		}
	}
	return migrate.Job{}, syscall.ENOENT
}
