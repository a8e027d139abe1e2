package daemon

import (
	"testing"
	"time"

	"sprite/api"
)

// Of each pair of hosts the one whose name sorts first says hello every
// heartbeat; the other stays quiet while it hears from it, except every
// rttEvery heartbeats (its round trip), and speaks up after 1.5
// heartbeats of silence, so that a dead host is still found.
func TestOneHelloPerPair(t *testing.T) {
	hb := time.Second
	now := time.Now()
	m := &Members{self: api.HostInfo{Name: "h2"}, heartbeat: hb, hosts: map[string]*member{}}
	set := func(name string, up bool, seen, pinged time.Duration) {
		m.hosts[name] = &member{up: up, lastSeen: now.Add(-seen), pinged: now.Add(-pinged)}
	}
	for _, c := range []struct {
		name         string
		up           bool
		seen, pinged time.Duration
		quiet        bool
	}{
		{"h1", true, hb / 2, 3 * hb, true},   // h1 says hello to h2: h2 answers only
		{"h1", true, 2 * hb, 3 * hb, false},  // h1 silent for 2 heartbeats: h2 asks
		{"h1", false, hb / 2, 3 * hb, false}, // h1 down: h2 asks
		{"h1", true, hb / 2, 11 * hb, false}, // time to measure the round trip
		{"h3", true, hb / 2, 3 * hb, false},  // h2 sorts first: it always says hello
		{"h10", true, hb / 2, 3 * hb, true},  // "h10" < "h2" as strings
	} {
		set(c.name, c.up, c.seen, c.pinged)
		if got := m.heardFrom(c.name); got != c.quiet {
			t.Errorf("h2 about %s (up %v, heard %v ago, pinged %v ago): quiet %v, want %v",
				c.name, c.up, c.seen, c.pinged, got, c.quiet)
		}
	}
	if m.heardFrom("h0") {
		t.Error("quiet toward a host it has never heard of")
	}
}
