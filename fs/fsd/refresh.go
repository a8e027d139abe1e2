package fsd

import (
	"context"
	"sync"
	"time"

	"sprite/api"
	"sprite/fs"
)

func (s *Service) refreshLoop(ctx context.Context) {
	t := time.NewTicker(refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.refresh(ctx)
		}
	}
}

// refresh brings the prefix table in line with the membership: this host's
// exports, each up host's (asked again when its daemon restarted or the
// last answer is old), and down hosts marked down.
func (s *Service) refresh(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range s.d.Members.List() {
		switch {
		case h.Self:
			s.table.Set(h.Name, s.server.Exports(), true)
		case h.State != api.StateUp:
			if s.table.SetUp(h.Name, false) {
				s.log.Warn("fs: domains of a down host fail with EIO until it returns", "server", h.Name)
				s.forgetServer(h.Name)
			}
		case s.stale(h):
			if s.restarted(h) {
				s.forgetServer(h.Name)
			}
			wg.Go(func() { s.fetch(ctx, h) })
		default:
			s.table.SetUp(h.Name, true)
		}
	}
	wg.Wait()
}

func (s *Service) stale(h api.HostStatus) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.seen[h.Name]
	return !ok || v.boot != h.Boot || time.Since(v.at) > exportsTTL
}

// restarted reports whether h's daemon restarted since its exports were
// last fetched.
func (s *Service) restarted(h api.HostStatus) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.seen[h.Name]
	return ok && v.boot != h.Boot
}

// forgetServer gives back the handles the mount kept of host's files
// (fusefs kept.go): host went down or restarted, and holds them no more.
func (s *Service) forgetServer(host string) {
	s.mu.Lock()
	m := s.mount
	s.mu.Unlock()
	if m != nil {
		m.ForgetServer(host)
	}
}

func (s *Service) fetch(ctx context.Context, h api.HostStatus) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var ex []fs.Exported
	if err := s.d.Node.Call(ctx, h.Name, h.Addr, fs.MethodExports, nil, &ex); err != nil {
		s.log.Debug("fs: exports not fetched", "server", h.Name, "err", err)
		return
	}
	s.mu.Lock()
	s.seen[h.Name] = seen{boot: h.Boot, at: time.Now()}
	s.mu.Unlock()
	if s.table.Set(h.Name, ex, true) {
		s.log.Info("fs: prefix table updated", "server", h.Name, "exports", len(ex))
	}
}
