package fs

import (
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Domain is one row of the prefix table: a prefix, the host that serves it
// and whether that host is up.
type Domain struct {
	Prefix string `cbor:"1,keyasint" json:"prefix"`
	Host   string `cbor:"2,keyasint" json:"host"`
	Path   string `cbor:"3,keyasint" json:"path"`
	Up     bool   `cbor:"4,keyasint" json:"up"`
	// Shadowed names another host that exports the same prefix and loses
	// (the smaller host name wins).
	Shadowed string `cbor:"5,keyasint,omitempty" json:"shadowed,omitempty"`
}

// Table is the prefix table: every host's exports, and which hosts are up.
// A path belongs to the domain with the longest prefix that is the path
// itself or one of its ancestors. Safe for concurrent use.
type Table struct {
	log *slog.Logger

	mu     sync.RWMutex
	byHost map[string][]Exported // guarded by mu
	up     map[string]bool       // guarded by mu
	rows   []Domain              // guarded by mu; derived, sorted by prefix
}

// NewTable returns an empty table.
func NewTable(log *slog.Logger) *Table {
	return &Table{log: log, byHost: map[string][]Exported{}, up: map[string]bool{}}
}

// Set records host's exports and state; it reports whether anything
// changed.
func (t *Table) Set(host string, ex []Exported, up bool) bool {
	var clean []Exported
	for _, x := range ex {
		if CheckPrefix(x.Prefix) == nil {
			clean = append(clean, x)
		} else {
			t.log.Warn("fs: ignoring a bad prefix from a host", "server", host, "prefix", x.Prefix)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.up[host] == up && slices.Equal(t.byHost[host], clean) {
		return false
	}
	t.byHost[host], t.up[host] = clean, up
	t.rebuildLocked()
	return true
}

// SetUp records whether host is up, keeping its exports.
func (t *Table) SetUp(host string, up bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.byHost[host]; !ok || t.up[host] == up {
		return false
	}
	t.up[host] = up
	t.rebuildLocked()
	return true
}

func (t *Table) rebuildLocked() {
	best := map[string]*Domain{}
	hosts := make([]string, 0, len(t.byHost))
	for h := range t.byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		for _, x := range t.byHost[h] {
			if d := best[x.Prefix]; d != nil {
				if d.Shadowed == "" {
					t.log.Warn("fs: two hosts export one prefix; the first by name serves it", "prefix", x.Prefix, "serves", d.Host, "ignored", h)
				}
				d.Shadowed = h
				continue
			}
			best[x.Prefix] = &Domain{Prefix: x.Prefix, Host: h, Path: x.Path, Up: t.up[h]}
		}
	}
	rows := make([]Domain, 0, len(best))
	for _, d := range best {
		rows = append(rows, *d)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Prefix < rows[j].Prefix })
	t.rows = rows
}

// List returns the table, by prefix.
func (t *Table) List() []Domain {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]Domain(nil), t.rows...)
}

// RouteKind says what serves a path.
type RouteKind int

// Route kinds.
const (
	RouteNone    RouteKind = iota // nothing: ENOENT
	RouteDomain                   // a domain: Domain and Rel are set
	RouteVirtual                  // a directory that only leads to prefixes ("/", "/home")
	RouteHosts                    // the synthetic /hosts tree
	RouteProc                     // the synthetic /proc tree
)

// Route is where a global path leads.
type Route struct {
	Kind   RouteKind
	Domain Domain
	Rel    string // path inside the domain, "" for its root
}

// Route finds what serves p, a clean absolute path ("/" or "/a/b").
// Directories leading to a prefix take precedence over a domain's own
// entries of the same name.
func (t *Table) Route(p string) Route {
	if p == "/" {
		return Route{Kind: RouteVirtual} // never a prefix; leads to /hosts and /proc at least
	}
	if p == "/"+SynthHosts || strings.HasPrefix(p, "/"+SynthHosts+"/") {
		return Route{Kind: RouteHosts, Rel: strings.TrimPrefix(strings.TrimPrefix(p, "/"+SynthHosts), "/")}
	}
	if p == "/"+SynthProc || strings.HasPrefix(p, "/"+SynthProc+"/") {
		return Route{Kind: RouteProc, Rel: strings.TrimPrefix(strings.TrimPrefix(p, "/"+SynthProc), "/")}
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var best *Domain
	for i := range t.rows {
		d := &t.rows[i]
		if d.Prefix == p || strings.HasPrefix(p, d.Prefix+"/") {
			if best == nil || len(d.Prefix) > len(best.Prefix) {
				best = d
			}
		}
	}
	if t.leadsToPrefixLocked(p) && (best == nil || best.Prefix != p) {
		return Route{Kind: RouteVirtual}
	}
	if best == nil {
		return Route{}
	}
	return Route{Kind: RouteDomain, Domain: *best, Rel: strings.TrimPrefix(strings.TrimPrefix(p, best.Prefix), "/")}
}

// leadsToPrefixLocked reports whether p is a proper ancestor of a prefix.
func (t *Table) leadsToPrefixLocked(p string) bool {
	dir := p
	if dir != "/" {
		dir += "/"
	}
	for _, d := range t.rows {
		if strings.HasPrefix(d.Prefix, dir) {
			return true
		}
	}
	return false
}

// Children lists the names under p that lead to prefixes (and "hosts" and
// "proc" at the root).
func (t *Table) Children(p string) []string {
	dir := p
	if dir != "/" {
		dir += "/"
	}
	seen := map[string]bool{}
	if p == "/" {
		seen[SynthHosts] = true
		seen[SynthProc] = true
	}
	t.mu.RLock()
	for _, d := range t.rows {
		if rest, ok := strings.CutPrefix(d.Prefix, dir); ok && rest != "" {
			first, _, _ := strings.Cut(rest, "/")
			seen[first] = true
		}
	}
	t.mu.RUnlock()
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
