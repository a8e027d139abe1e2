package fs

import (
	"slices"
	"time"
)

// Interest: which client hosts may cache what. A change is told only to
// the hosts that may hold a copy of what changed, as Sprite's server knew
// which clients cached each file, rather than to every host that ever used
// the domain: under pmake every compile host uses the build's domain, and
// each write of one host's object file would otherwise cost the server a
// call to every other host.
//
// A client's kernel trusts a name, a missing name or attributes it got
// from this server for CacheTimeout without asking again; it keeps a
// file's pages while the file is open, and at the next open only if the
// version is unchanged (which the open checks). So client c may cache
// item I when
//
//   - c asked about I (a lookup of its name, a getattr, an open, a create,
//     a setattr, ...) within interestFor (CacheTimeout and a second), or
//   - c holds I open: pinned from the open to the release, which counts
//     as asking (the last fstat may have come just before it).
//
// A change of a directory's entries (a create, delete or rename in it)
// also changes the directory's own attributes: it goes to the clients that
// may cache the entry or the directory (Serve registers the directory for
// the calls whose replies carry its attributes, and a readdir).
//
// What this does not see: a file reached through two hard links, changed
// under one name, is told to the hosts that looked at that name; and an
// open file renamed on the server keeps its pin under the old name.
// Both then rely on the version check at the next open and on
// CacheTimeout.

// CacheTimeout is how long a client's kernel trusts names, attributes and
// missing names without asking the server (package fuse mounts with it).
// Servers end that trust sooner whenever something changes.
const CacheTimeout = 5 * time.Second

// interestFor is how long a client may cache what it asked about: the
// kernel's timeout and a second for the time between the server's record
// of the request and the kernel's receipt of the reply, from which its
// timeout counts. A variable only so that tests can shorten it.
var interestFor = CacheTimeout + time.Second

// interestSweep is the size of the interest table past which entries
// nobody may cache any longer are dropped.
const interestSweep = 1 << 16

// cachers is who may cache one item. A listing with attributes makes one
// for each of its entries, so it is kept small: a slice of the few hosts
// that asked, and a map only once a host opens the item.
type cachers struct {
	seen []sighting     // each client host once, with when it last asked
	open map[string]int // client host -> its handles open; nil until one opens it
}

// sighting is when a client host last asked about an item.
type sighting struct {
	client string
	at     time.Time
}

// saw notes that client asked at at.
func (c *cachers) saw(client string, at time.Time) {
	for i := range c.seen {
		if c.seen[i].client == client {
			c.seen[i].at = at
			return
		}
	}
	c.seen = append(c.seen, sighting{client, at})
}

// forget drops client's sighting.
func (c *cachers) forget(client string) {
	c.seen = slices.DeleteFunc(c.seen, func(s sighting) bool { return s.client == client })
}

// expire drops the sightings from before since.
func (c *cachers) expire(since time.Time) {
	c.seen = slices.DeleteFunc(c.seen, func(s sighting) bool { return s.at.Before(since) })
}

// saw records that client asked about items now. n.mu is taken.
func (n *notifier) saw(client string, items ...Item) {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, it := range items {
		n.cachersLocked(it).saw(client, now)
	}
	n.sweepLocked(now)
}

// opened pins it for client until released.
func (n *notifier) opened(client string, it Item) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.cachersLocked(it)
	if c.open == nil {
		c.open = map[string]int{}
	}
	c.open[client]++
	c.saw(client, time.Now())
}

// released ends one pin of client's on it; its kernel may still trust the
// attributes it got last for CacheTimeout.
func (n *notifier) released(client string, it Item) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.items[it]
	if c == nil {
		return
	}
	if c.open[client]--; c.open[client] <= 0 {
		delete(c.open, client)
	}
	c.saw(client, time.Now())
}

func (n *notifier) cachersLocked(it Item) *cachers {
	c := n.items[it]
	if c == nil {
		c = &cachers{}
		n.items[it] = c
	}
	return c
}

// sweepLocked drops what no client may cache any longer once the table
// has grown past its limit, and sets the next limit.
func (n *notifier) sweepLocked(now time.Time) {
	if len(n.items) < n.sweepAt {
		return
	}
	for it, c := range n.items {
		c.expire(now.Add(-interestFor))
		if len(c.seen) == 0 && len(c.open) == 0 {
			delete(n.items, it)
		}
	}
	n.sweepAt = max(interestSweep, 2*len(n.items))
}

// cachersOf returns the clients but except that may cache it; entries says
// that the change is one of its directory's entries (a create, a delete, a
// rename), which the clients that may cache the directory hear of too.
func (n *notifier) cachersOf(it Item, entries bool, except string) []string {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	add := func(it Item) {
		c := n.items[it]
		if c == nil {
			return
		}
		for _, s := range c.seen {
			if s.client != except && now.Sub(s.at) <= interestFor && !slices.Contains(out, s.client) {
				out = append(out, s.client)
			}
		}
		for cl := range c.open {
			if cl != except && !slices.Contains(out, cl) {
				out = append(out, cl)
			}
		}
	}
	add(it)
	if entries && it.Path != "" {
		dir, _ := splitPath(it.Path)
		add(Item{Prefix: it.Prefix, Path: dir})
	}
	return out
}

// forget drops what client asked about: it could not be reached, and
// until it asks again it is not told of changes, but for the files it
// holds open (their pins go with its handles).
func (n *notifier) forget(client string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.items {
		c.forget(client)
	}
}

// seenBy lists what a request lets its client cache: the names and
// attributes in its reply.
func seenBy(method string, req *Req) []Item {
	it := func(p string) Item { return Item{Prefix: req.Prefix, Path: p} }
	switch method {
	case MethodLookup:
		return []Item{it(joinPath(req.Path, req.Name))}
	case MethodGetattr, MethodSetattr, MethodOpen, MethodReadlink, MethodReaddir,
		MethodGetxattr, MethodListxattr, MethodSetxattr, MethodRmxattr:
		return []Item{it(req.Path)}
	case MethodCreate, MethodMkdir, MethodSymlink, MethodUnlink, MethodRmdir:
		return []Item{it(joinPath(req.Path, req.Name)), it(req.Path)}
	case MethodRename:
		return []Item{it(joinPath(req.Path, req.Name)), it(req.Path),
			it(joinPath(req.NewPath, req.NewName)), it(req.NewPath)}
	case MethodLink:
		return []Item{it(req.Path), it(joinPath(req.NewPath, req.NewName)), it(req.NewPath)}
	case MethodWriteV:
		if req.Flags&WriteVSetattr != 0 {
			return []Item{it(req.Path)}
		}
	}
	return nil
}
