// Package fs is sprite's global namespace: one file tree, the same on every
// host, mounted at /sprite.
//
// # Domains and the prefix table
//
// A host exports local directories as domains, each under a global prefix
// ([[export]] in its config: prefix "/home/h1", path "/home"). The prefix
// table (Table) maps every prefix to the host that serves it and whether
// that host is up; a path belongs to the domain with the longest prefix
// that is the path or one of its ancestors. Directories that only lead to
// prefixes ("/", "/home") are virtual and read-only. /hosts and /proc are
// synthetic trees, never cached by the kernel: /hosts/<host>/state, cpus,
// arch, addr, version, last_seen...; and /proc/<id>/ for every remote
// process (id "h1.1234": home host, dot, number; proc.go), from
// Client.Procs (a ProcTable, which package homenode implements), with
// status (mode 0400, its text computed at open; only the process's owner
// and root may read it, checked by the core itself) and ctl (mode 0200: a
// line "kill", "term", "int", "stop", "cont", "kill -9", "signal 15"...
// written by the owner or root signals the process; an unknown line is
// EINVAL). Nothing can be created, removed or renamed in either (EACCES,
// EROFS). Package fs/fsd keeps the table from every host's fs.exports
// and the membership: a host that goes down keeps its rows, marked down, so
// its domain fails with EIO at once while the others work; a restarted
// daemon is asked again. `sprite exports` prints the table.
//
// # Server
//
// Server serves this host's domains. Requests name files by path relative
// to a domain's root, never by server inode, so a restarted server serves
// the same names without a remount. Every name from the network passes
// checkName/checkPath (no "", ".", "..", '/', NUL; length limits) before it
// touches a disk, and every walk is an openat2 beneath the export's root
// with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS: "..",
// absolute paths and symlinks (the client's kernel resolves symlinks
// itself, one component at a time) cannot lead out, also when a directory
// is swapped for a symlink between a lookup and an open. Such a refusal is
// logged ("refused escape from export") with the client, user and path.
// Operations that have no *at form for an O_PATH descriptor (chmod,
// utimens, xattrs) go through the descriptor already opened beneath the
// root, never through a name.
//
// Permission checks are the kernel's: each operation runs on an OS thread
// locked for it that takes the request's fsuid, fsgid and groups
// (setfsuid/setfsgid and the raw per-thread setgroups) and gives them back
// after (workers). A file or directory the server creates gets the exact
// mode the client's kernel computed (the daemon's umask undone). Root is
// squashed to nobody (65534), as NFS does.
//
// # Client
//
// Client is the namespace as one host sees it: global paths in,
// attributes, data and errno values out. It knows nothing of FUSE; package
// fs/fuse adapts it to the kernel, and fs.Errno is the one place errors
// become errno values. A call to a host that is down fails with EIO at
// once; a call to a host that does not answer fails with EIO after
// Client.Timeout (config fs_timeout). Reads and writes larger than 256 KiB
// become parallel calls of 256 KiB, each fitting in a fresh QUIC stream's
// flow-control window. A create, mkdir, unlink or rmdir answers with the
// directory's attributes after the change (Resp.Dir), which the kernel
// asks for next;
// a mkdir watches the new directory before it answers and says so
// (DirWatched), and the client then answers lookups of names it did not
// make there itself until the server reports a change in it. Every
// request that looks into a directory (a lookup, a readdir, an open's
// parent) has it watched before the reply, so that a change on the
// server's own disk right after the reply reaches the client.
//
// Small writes are write-behind (writebehind.go): a write(2) of less than
// 256 KiB waits in its handle's buffer, for at most Client.WriteBehind
// (100 ms), and goes to the server with the others in one fs.writev: at
// close with the flush, at fstat(2) with the attributes, at utimes(2) or
// chmod(2) with the change (tar sets times before its close), at a read(2)
// with the read (a linker's read-modify-write of a block is one call, not
// three). The fstat and utimes calls also ask the server to invalidate the
// other hosts as a close would (WriteVSync); when nothing is written after
// them, the close of a file without an execute bit makes no call (an
// untar: one create and one fs.writev a file). The server recalls the
// buffers of a file that comes under concurrent write sharing before the
// open that starts the sharing returns (Invalidate.Recall); the recalled
// handles write through. A write through one handle first sends what the
// file's other handles on this host hold, so writes through two
// descriptors reach the server in the order they were made. A handle
// that found its file empty at a read-write open keeps a copy of what it
// writes and answers its own reads from it (owncopy.go: an assembler
// reads back the blocks it wrote), until anything else may change the
// file.
//
// # Consistency (docs/consistency.md)
//
// Sprite's scheme, on top of the kernel's caches. The server keeps an open
// table per file (fileState: opens per client host, readers, writers,
// cached opens) and a write generation. An open returns a version (mtime,
// ctime, size, inode, generation): a client keeps its cached pages across
// opens only while the version is unchanged (sequential write sharing). A
// file open on two or more hosts with at least one writer is under
// concurrent write sharing: new opens get FOPEN_DIRECT_IO (no client
// caching), and each write from one host invalidates the other hosts'
// cached opens before it is acknowledged. The close (flush) of a handle
// that wrote invalidates, before it returns, every other host that may
// cache the file: those that asked about it within the kernel's cache time
// or hold it open (interest.go; a host that merely uses the domain is not
// told). Changes on the server's own disk, and every change clients make
// through the server, are seen by inotify on each directory a client has
// looked into and pushed to the clients that may cache them (notifier: one
// queue and goroutine per client host, coalescing); the client that made
// a change is not told of it again (notifier.mark). Server.Settle waits
// until every change made on this disk before the call has reached a given
// client (settle.go): a job's home calls it before it starts the job on
// that client, whose kept handles (package fs/fuse) would otherwise take a
// moment to hear of what the home just wrote.
//
// # Locks and goroutines
//
// Locks: Server.mu, notifier.mu, queue.mu, watcher.mu, settle.mu and
// procCache.mu are leaves (no two are ever held together) but for one order:
// Server.mu, then notifier.mu (a dropped handle unpins its file). None is
// held across a system call on a file, a call to another host or a kernel
// notification. Known deadlock, avoided: a server that
// waits for a client to drop its cache while that client's kernel holds a
// page lock for a write that waits for the same server. The client applies
// invalidations on the RPC goroutine (never inside a FUSE handler) and
// answers after at most 200 ms whether or not the kernel has finished, so
// the server never waits long.
//
// The client's write-behind locks are the exception: a handle's wbuf.mu
// is held across the call that sends its buffer (so writes through that
// handle wait for it), and is taken before Client.wbMu, never after; no
// two handles' wbuf.mu are held together (a write sends the other
// handles' buffers before it takes its own). A recall from a server
// takes wbuf.mu of the file's handles; it waits at most for a send in
// flight, which never waits for a recall.
//
// A file's write descriptor on the server is traded for a read-only one at
// the client's close (flush) and reopened by the next write: a program
// linked through /sprite can be executed on the server's host at once,
// before the client's asynchronous release arrives (no ETXTBSY). That is
// why a file with an execute bit always sends its close.
//
// Goroutines and owners: the notifier's per-client drains (notifier.stop), the watcher's reader
// (watcher.stop), each parallel chunk of a read or write (the call that
// started it waits for it), a write-behind timer's flush (Release stops
// the timer; a flush that has started holds wbuf.mu, which Release waits
// for).
package fs
