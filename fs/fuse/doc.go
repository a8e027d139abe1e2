// Package fusefs mounts the global namespace (package fs) with go-fuse. It
// is a thin adapter: every operation turns the kernel's request into a call
// of fs.Client with the node's global path and the caller's credentials,
// and the answer back; errno conversion happens in one place (fs.Errno).
//
// Caching: the kernel caches entries and attributes for CacheTimeout, and
// file data across opens when the server says the file is unchanged
// (FOPEN_KEEP_CACHE after a version check); files under concurrent write
// sharing are opened with FOPEN_DIRECT_IO. So is a write-only open that is
// the file's only open on this host, and every other open of the file
// here while it lasts (node.opened): through the page cache, each write(2)
// that starts inside a page the kernel does not hold would become two
// requests, and pages written through a write-only descriptor are never
// read back from the cache. The first Getattr of a directory after this
// host made or removed an entry in it is answered with the attributes the
// server sent with the create or the removal (node.dirAttr). In a directory this host made
// empty, watched by its server (fs.Made.Watched), a name this host did not
// make is answered "no such file" without a round trip, until any
// invalidation reaches this mount, and for CacheTimeout at most
// (node.fresh). A directory's listing answers the next readdir of the same
// user for CacheTimeout (the kernel reads with READDIRPLUS, whose entries
// carry the listed attributes, and while the listing is kept it reads the
// directory again from its own cache of it: dirhandle.go; a name the
// listing lacks it keeps as missing for as long, missingKept), its
// entries' attributes the lookups of names in it (while this host has not
// changed that file: touched.go), and its attributes the kernel's next
// Getattr (asked after every readdir), until an invalidation of the
// directory or an entry in it, or a change of it from this host
// (listing.go); a directory whose names are looked up one after another
// is listed for that (wantsListing); so do a file's attributes from its open or
// getattr, unless this host holds it open for writing or under concurrent
// write sharing; a file the server said has no extended attributes
// answers getxattr itself, as long (xattr.go); security labels and POSIX
// ACLs are "not supported" here, answered without a call (xattr.go). A
// read-only handle of a file whose directory the server watches is kept
// for keepFor after its close and taken by the next open of the file by
// the same name, user and flags, with no call (kept.go): a compile's
// headers, opened again by the next compile on this host. The
// servers push invalidations (fs.invalidate), which Invalidate applies
// with NotifyEntry and NotifyContent. Never from inside a FUSE handler: the kernel may wait on
// that very handler. Invalidate runs on the RPC handler's goroutine and
// waits at most invalidateWait, so a notification that the kernel holds up
// behind a request in flight (a page locked by a write that waits on the
// server that sent this notification) delays, but never deadlocks, the
// server.
//
// The synthetic trees (/hosts, /proc) are never cached: their names and
// attributes time out at once (a zero timeout would be go-fuse's
// CacheTimeout), their files are computed at open and read with direct
// I/O. A /proc/<id>/ctl file opens for writing only; each write goes to the
// core whole (fs.Client.ProcWrite), and the truncation of a shell's
// `echo kill > ctl` (O_CREAT|O_TRUNC: an open, then a setattr of size 0)
// succeeds and changes nothing.
//
// Goroutines: go-fuse's own serving loops (owned by the Mount, ended by
// Unmount), one per pending invalidation batch (ends when the kernel
// answers, at the latest when the mount is gone), and the keeper of kept
// handles (kept.go; started by MountAt, ended by Unmount, which gives back
// what is still kept).
//
// Known hazard, avoided: go-fuse opens /dev/fuse without O_CLOEXEC and,
// after a direct mount, never sets it. Every child would inherit the
// device: it could serve the mount, and it keeps the connection open after
// the daemon dies, hanging unkillably in its own next call into /sprite.
// Mount marks the device close-on-exec under syscall.ForkLock
// (mountNoLeak).
package fusefs
