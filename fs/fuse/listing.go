package fusefs

import (
	"context"
	"slices"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"sprite/fs"
)

// Directory listings kept between readdirs.
//
// Without them every opendir and readdir of a remote directory costs a
// call to its server (make reads each directory it searches at every run;
// ls, find and shells' completion list the same directories again and
// again). A listing the server sent is kept on the directory's node and
// answers the next readdir of that directory for CacheTimeout after it
// was asked for, the time the kernel keeps the names themselves. The
// server tells this host of any change of the directory's entries within
// that time (it counts the readdir as asking about the directory,
// fs/interest.go), and the invalidation drops the listing
// (changedElsewhere), as any change of the directory from this host does
// (changeStart). A listing is kept only when no invalidation of the
// directory arrived and nothing changed it from this host while it was on
// its way (an invalidation walks to the directory's node, which exists
// while it is listed), and it answers only the user (uid, gid and groups)
// it was read for: another user's readdir goes to the server, which
// checks that user's permission itself.
//
// The server sends each entry's attributes with the listing (as a lookup
// answers them, fs.ReaddirAttrs) and counts this host as asking about
// every entry, so a change of one made elsewhere reaches it; an
// invalidation of an entry walks to its directory's node and drops the
// listing. While the listing is good, the same user's lookups in the
// directory are answered from it (a name not listed is not there), and
// so are the entries of the kernel's READDIRPLUS (dirhandle.go), which
// hand the kernel every name's attributes with the listing: `ls -l` of a
// thousand names is one call, not a thousand and one, and no lookup
// through FUSE either. This host's own changes are not told to it, so an
// entry's attributes answer only while this host has changed nothing of
// that entry since the readdir and holds no handle of it open for writing
// (listedAttr, touched.go); a name not listed answers "not there" while
// the listing is kept at all, since only a change of the directory
// itself, which drops the listing, can add a name.
//
// Only directories whose every entry comes from one domain's server are
// kept (fs.Client.ListingNotified): where the prefix table adds names, they
// change with no word from any server.
//
// A directory's attributes are kept the same way, for its next Getattr:
// the kernel trusts them for CacheTimeout itself, but after each readdir
// it drops the directory's atime and asks again at the next stat, a call
// per directory for every make, ls -l or find. They are dropped with the
// listing (listGen), by the same invalidations and changes from this host
// and by its setattr and xattr changes of the directory; what the kept
// attributes may lag by is the directory's atime, as the kernel's own
// cache does.
//
// A file's attributes too, from a getattr's reply or an open's (which
// carries them; the kernel takes none from an open): after every read
// through its page cache the kernel drops the file's atime, and the
// fstat(2) that a compiler makes of each header it opens would otherwise
// be a call each, on top of the open's own. The server counts an open as
// asking about the file from the open to CacheTimeout after the release
// (fs/interest.go), so a change made elsewhere meanwhile reaches this
// host and drops them. They are not kept, and not used, while this host
// holds the file open for writing or under concurrent write sharing
// (node.volatile): then every Getattr goes to the server, which has the
// writes (the client sends what its write-behind holds first). The opens
// and releases of such handles, the setattr, link, unlink and rename of
// the file from this host drop them (listGen), so that no reply asked
// for before a change of this host's is kept after it.

// A directory is listed on this host's own initiative when its names are
// being looked up one after another (wantsListing): a compiler searching
// each -I directory in turn for each header it includes (and for its
// precompiled form), make looking for a target's possible sources, a
// shell searching $PATH. Each such lookup is a call, a miss as much as a
// hit, and the kernel keeps the answers only for CacheTimeout: a build
// of nginx on another host made about 470 lookups per compile whenever
// that time had passed. The third lookup sent within CacheTimeout in a
// directory with no listing kept lists the directory instead
// (listForLookups, fs.ReaddirSmall), and the listing answers that lookup
// and those that follow, names missing as well as present. A directory of
// more than fs.SmallDir entries is not listed so (the server answers
// E2BIG after reading its names, without a stat of each), nor tried again
// for CacheTimeout, nor is one the user may not read. A directory this host keeps changing (each change
// drops the listing) may be listed again and again for few lookups: when
// a listing answered no more than twice the lookups sent before it, the
// next waits for twice as many, up to maxListNeed.

// autoListAfter is how many lookups in a directory go to the server
// within CacheTimeout, with no listing kept, before the next lists it
// instead; maxListNeed is the most that waiting grows to.
const (
	autoListAfter = 2
	maxListNeed   = 64
)

// listing is a directory's entries as its server sent them.
type listing struct {
	ents []fuse.DirEntry // never changed once kept
	cred fs.Cred         // whom they were read for
	at   time.Time       // when they were asked for
	// attrs has every listed name but "." and "..", with its attributes
	// as the server sent them (fs.ReaddirAttrs; nil if it could not stat
	// that entry); attrs is nil if it sent none (the user may not search
	// the directory: a lookup would fail, not say "no such file");
	// changes is Mount.changes when the readdir was sent.
	attrs   map[string]*fs.Attr
	changes uint64
}

// newListing makes a listing of ents, read for cr, asked for at at when
// Mount.changes was changes.
func newListing(ents []fs.Dirent, cr fs.Cred, at time.Time, changes uint64) *listing {
	l := &listing{ents: make([]fuse.DirEntry, len(ents)), cred: cr, at: at,
		attrs: make(map[string]*fs.Attr, len(ents)), changes: changes}
	stated := false
	for i, e := range ents {
		l.ents[i] = fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: uint32(e.Type) << 12}
		if e.Name != "." && e.Name != ".." {
			l.attrs[e.Name] = e.Attr
			stated = stated || e.Attr != nil
		}
	}
	if !stated && len(l.attrs) > 0 {
		l.attrs = nil
	}
	return l
}

// cachedListing returns the entries kept for cr, if still good.
func (n *node) cachedListing(cr fs.Cred) []fuse.DirEntry {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cachedListingLocked(cr)
}

// cachedListingLocked is cachedListing with n.mu held.
func (n *node) cachedListingLocked(cr fs.Cred) []fuse.DirEntry {
	l := n.listing
	if l == nil {
		return nil
	}
	if time.Since(l.at) >= CacheTimeout {
		n.listing = nil
		return nil
	}
	if l.cred.UID != cr.UID || l.cred.GID != cr.GID || !slices.Equal(l.cred.Groups, cr.Groups) {
		return nil
	}
	return l.ents
}

// listedAttr answers a lookup of name in directory n for cr from n's kept
// listing, if it can: a (nil: no such name, the listing has every name)
// and when the listing was asked for. ok is false when the server must be
// asked.
//
// The server counts this host as asking about every entry it listed with
// attributes, so a change of one made elsewhere reaches this host, and
// its invalidation drops the listing (an invalidation of an entry walks
// to its directory's node). A change this host makes to an entry (its
// node's dropListing: a setattr, a link count, an open or close for
// writing) is noted by inode number (touched.go), and the entry's
// attributes no longer answer until read again; nor while a handle here
// may write it unseen, whose writes the server may not have yet. A name
// the listing lacks is answered as missing while the listing is kept: a
// name appears only through a change of the directory, which drops it.
func (n *node) listedAttr(name string, cr fs.Cred) (a *fs.Attr, at time.Time, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.listing
	if l == nil || l.attrs == nil || name == "." || name == ".." {
		return nil, time.Time{}, false
	}
	if time.Since(l.at) >= CacheTimeout ||
		l.cred.UID != cr.UID || l.cred.GID != cr.GID || !slices.Equal(l.cred.Groups, cr.Groups) {
		return nil, time.Time{}, false
	}
	a, listed := l.attrs[name]
	if listed && (a == nil || n.m.touched.since(a.Ino, l.changes)) {
		return nil, time.Time{}, false
	}
	n.listHits++
	return a, l.at, true
}

// lookupListed is Lookup answered by listedAttr, when it can: a name
// not in the listing is not there, one in it has the listed attributes;
// the kernel keeps either answer only for what is left of the listing's
// time. ok is false when the server must be asked.
func (n *node) lookupListed(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno, bool) {
	x := n.xattrStart(name)
	a, at, ok := n.listedAttr(name, n.m.cred(ctx))
	if !ok {
		return nil, 0, false
	}
	left := CacheTimeout - time.Since(at)
	if left <= 0 {
		return nil, 0, false
	}
	if a == nil {
		out.SetEntryTimeout(left)
		return nil, syscall.ENOENT, true
	}
	attr := *a // the listing's own is never changed
	ch := n.newChild(ctx, &attr, fs.RouteDomain, out)
	out.SetEntryTimeout(left)
	out.SetAttrTimeout(left)
	if attr.NoXattr {
		x.at = at // the server counts this host as asking from then
		x.noXattr(ch, attr.Ino)
	}
	return ch, 0, true
}

// wantsListing counts a lookup in directory n about to go to the server,
// and says whether to list n instead (see the top of this file).
func (n *node) wantsListing(cr fs.Cred) bool {
	if n.kind != fs.RouteDomain || !n.m.c.ListingNotified(n.path()) {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if n.cachedListingLocked(cr) != nil || now.Sub(n.refusedAt) < CacheTimeout {
		return false
	}
	if now.Sub(n.lookupsAt) >= CacheTimeout {
		n.lookups, n.lookupsAt = 0, now
	}
	n.lookups++
	need := max(n.listNeed, autoListAfter)
	if n.lookups <= need {
		return false
	}
	if n.autoListed && n.listHits <= 2*need {
		n.listNeed = min(2*need, maxListNeed)
	} else {
		n.listNeed = autoListAfter
	}
	n.lookups, n.autoListed, n.listHits = 0, true, 0
	return true
}

// listForLookups lists directory n to answer lookups in it, and reports
// whether it kept the listing.
func (n *node) listForLookups(ctx context.Context) bool {
	_, kept, err := n.fetchListing(ctx, n.m.cred(ctx), true, true)
	if err != nil { // too large (E2BIG), not readable, gone
		n.mu.Lock()
		n.refusedAt = time.Now()
		n.mu.Unlock()
		return false
	}
	return kept
}

// fetchListing asks the server for directory n's listing for cr (small:
// only if it has at most fs.SmallDir entries) and, if keep, keeps it
// unless n changed meanwhile; kept says whether it did.
func (n *node) fetchListing(ctx context.Context, cr fs.Cred, small, keep bool) (l *listing, kept bool, err error) {
	gen := n.listStart()
	changes := n.m.changes.Load()
	at := time.Now()
	read := n.m.c.Readdir
	if small {
		read = n.m.c.ReaddirSmall
	}
	ents, err := read(ctx, cr, n.path())
	if err != nil {
		return nil, false, err
	}
	l = newListing(ents, cr, at, changes)
	return l, keep && n.keepListing(l, gen), nil
}

// listStart notes a readdir or getattr about to ask the server;
// keepListing and keepAttr take what it returns.
func (n *node) listStart() (gen uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.listGen
}

// keepListing keeps ents, read for cr and asked for at at, unless this
// directory was invalidated or changed since listStart returned gen (the
// reply may predate that change). An invalidation that arrives after this
// drops what was kept.
func (n *node) keepListing(l *listing, gen uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listGen != gen || n.changing > 0 {
		return false
	}
	n.listing = l
	return true
}

// dropListing forgets n's listing and kept attributes; n.mu is held.
func (n *node) dropListing() {
	n.listing, n.attr = nil, nil
	n.listGen++
	n.m.touched.change(n.StableAttr().Ino, n.m.changes.Add(1))
	if len(n.kept) > 0 {
		n.dropStaleKept() // kept.go
	}
}

// keptAttr returns n's attributes kept from its last Getattr or open, if
// still good, and how much longer they are: the kernel may trust them no
// longer than the server counts this host as asking.
func (n *node) keptAttr() (*fs.Attr, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	left := CacheTimeout - time.Since(n.attrAt)
	if n.attr == nil || n.attrGen != n.listGen || n.volatile > 0 || left <= 0 {
		n.attr = nil
		return nil, 0
	}
	return n.attr, left
}

// keepAttr keeps a, asked for at at, as keepListing keeps a listing.
func (n *node) keepAttr(a fs.Attr, at time.Time, gen uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listGen != gen || n.changing > 0 || n.volatile > 0 {
		return
	}
	n.attr, n.attrAt, n.attrGen = &a, at, gen
}
