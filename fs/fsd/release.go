package fsd

import (
	"context"
	"time"

	"sprite/fs"
)

// Lazy releases: a handle that holds no write descriptor on its server, or
// whose close had nothing to tell it (fs.Client.Flush after a synced
// fs.writev, for a file without an execute bit), is closed there a little
// later (fs.Req.Lazy), together with others, in one fs.release per server:
// an untar closes a file every few milliseconds, and a release of its own
// costs each side a message while the next file waits. Nothing waits for
// it (the kernel does not), and until it arrives the server only counts
// the file as still open here, which can make another host's open of it
// uncached, never wrong.
//
// Goroutine: releaseLoop, owned by the Service (ended by Stop through the
// service's context; it sends what is pending before it returns).

// Batching bounds: a release waits at most releaseDelay, and a batch is
// sent at once when it holds releaseBatch handles.
const (
	releaseDelay = 20 * time.Millisecond
	releaseBatch = 64
)

// releases is the queue of lazy releases.
type releases struct {
	wake    chan struct{}       // a release was queued
	pending map[string][]fs.Req // guarded by Service.mu; by server host
}

// queueRelease queues a lazy fs.release for host.
func (s *Service) queueRelease(host string, req *fs.Req) {
	s.mu.Lock()
	s.rel.pending[host] = append(s.rel.pending[host], *req)
	n := len(s.rel.pending[host])
	s.mu.Unlock()
	if n == 1 || n >= releaseBatch {
		select {
		case s.rel.wake <- struct{}{}:
		default:
		}
	}
}

// releaseLoop sends the queued releases, each batch at most releaseDelay
// after its first.
func (s *Service) releaseLoop(ctx context.Context) {
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-ctx.Done():
			s.sendReleases(context.Background(), stopReleaseTimeout)
			return
		case <-s.rel.wake:
		}
		t.Reset(releaseDelay)
	wait:
		for {
			select {
			case <-ctx.Done():
				break wait
			case <-t.C:
				break wait
			case <-s.rel.wake:
				if s.releasesFull() {
					t.Stop()
					break wait
				}
			}
		}
		s.sendReleases(ctx, releaseTimeout)
	}
}

func (s *Service) releasesFull() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, reqs := range s.rel.pending {
		if len(reqs) >= releaseBatch {
			return true
		}
	}
	return false
}

// sendReleases sends every queued release, one fs.release per server and
// at most fs.MaxBatch handles each, each batch within timeout.
func (s *Service) sendReleases(ctx context.Context, timeout time.Duration) {
	s.mu.Lock()
	pending := s.rel.pending
	s.rel.pending = map[string][]fs.Req{}
	s.mu.Unlock()
	for host, reqs := range pending {
		for len(reqs) > 0 {
			n := min(len(reqs), fs.MaxBatch+1)
			req := reqs[0]
			req.Lazy = false
			for _, r := range reqs[1:n] {
				req.Handles = append(req.Handles, r.Handle)
			}
			reqs = reqs[n:]
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			var resp fs.Resp
			if err := s.call(cctx, host, fs.MethodRelease, &req, &resp); err != nil {
				s.log.Debug("fs: releases not delivered; the server keeps the handles until this daemon restarts", "server", host, "handles", 1+len(req.Handles), "err", err)
			}
			cancel()
		}
	}
}

// releaseTimeout bounds one batch of releases; stopReleaseTimeout the
// last ones, sent while the daemon stops.
const (
	releaseTimeout     = 10 * time.Second
	stopReleaseTimeout = time.Second
)
