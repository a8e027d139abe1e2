package fsd

import (
	"context"
	"sync"
	"time"

	"sprite/api"
)

// hostsCache serves /sprite/hosts: the daemon's own `sprite hosts` answer
// (membership decorated with idleness by the idle service), asked over the
// local socket and kept for a moment, or the bare membership when that
// does not answer.
type hostsCache struct {
	socket string
	bare   func() []api.HostStatus

	// mu is held across the local call, so that opens arriving together
	// share one answer; it is a leaf.
	mu   sync.Mutex
	at   time.Time        // guarded by mu
	last []api.HostStatus // guarded by mu
}

const (
	hostsTTL     = 500 * time.Millisecond
	hostsTimeout = time.Second
)

func (h *hostsCache) list() []api.HostStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.at) < hostsTTL && h.last != nil {
		return h.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostsTimeout)
	defer cancel()
	var hs []api.HostStatus
	c := api.Client{Socket: h.socket}
	if err := c.Call(ctx, api.MethodHosts, nil, &hs); err != nil || len(hs) == 0 {
		hs = h.bare()
	}
	h.at, h.last = time.Now(), hs
	return hs
}
