package idledb

import (
	"context"
	"testing"
	"time"
)

func TestHoldRenewsFollowsAndReleases(t *testing.T) {
	db, _ := newDB(t)
	report(t, db, "h1", ActIdle, 1000)
	c := &Client{Self: "h9", DBHost: "h9", Local: func() *DB { return db }}
	ctx, cancel := context.WithCancel(context.Background())
	s := c.Hold(ctx, Request{ID: "pmake", N: 2, User: "alice"})
	next := func() Grants {
		t.Helper()
		select {
		case g := <-s.C:
			return g
		case <-time.After(2 * time.Second):
			t.Fatal("no holding from the session")
		}
		return Grants{}
	}
	if g := next(); len(g.Hosts) != 1 || g.Hosts[0].Host != "h1" {
		t.Fatalf("first holding %+v", g)
	}
	report(t, db, "h2", ActIdle, 0)
	// The event text is there unless h2 came before the watch was open;
	// the holding is right either way.
	if g := next(); len(g.Hosts) != 2 {
		t.Fatalf("after h2 turned idle: %+v", g)
	}
	cancel()
	for range s.C {
	}
	if f := db.Hosts(); f[0].GrantedTo != "" || f[1].GrantedTo != "" {
		t.Fatalf("grants outlived the session: %+v", f)
	}
}
