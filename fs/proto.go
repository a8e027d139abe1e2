package fs

// Methods between hosts. Every fs.* call from a client carries a Req and is
// answered with a Resp; the server's answer to a failed file operation is a
// Resp with Errno set (the call itself succeeds), so errno values cross the
// network unchanged. fs.invalidate goes the other way, server to client.
const (
	MethodExports = "fs.exports"
	MethodLookup  = "fs.lookup"
	MethodGetattr = "fs.getattr"
	MethodSetattr = "fs.setattr"
	MethodOpen    = "fs.open"
	MethodCreate  = "fs.create"
	MethodRead    = "fs.read"
	MethodWrite   = "fs.write"
	// MethodWriteV writes several extents of one handle in one call, in
	// order (a client's write-behind buffer, Req.Extents); with Flags
	// WriteVFlush it is also the handle's fs.flush, with WriteVStat its
	// fs.getattr, with WriteVSetattr an fs.setattr of Path, and with
	// Size > 0 an fs.read of Size bytes at Offset, after the writes. A
	// server that does not
	// know it is sent fs.write calls instead.
	MethodWriteV     = "fs.writev"
	MethodFlush      = "fs.flush"
	MethodFsync      = "fs.fsync"
	MethodRelease    = "fs.release"
	MethodMkdir      = "fs.mkdir"
	MethodUnlink     = "fs.unlink"
	MethodRmdir      = "fs.rmdir"
	MethodRename     = "fs.rename"
	MethodLink       = "fs.link"
	MethodSymlink    = "fs.symlink"
	MethodReadlink   = "fs.readlink"
	MethodReaddir    = "fs.readdir"
	MethodStatfs     = "fs.statfs"
	MethodGetxattr   = "fs.getxattr"
	MethodSetxattr   = "fs.setxattr"
	MethodListxattr  = "fs.listxattr"
	MethodRmxattr    = "fs.removexattr"
	MethodInvalidate = "fs.invalidate"
	// MethodReadData is fs.read whose data comes back as raw data frames
	// ahead of the reply (a Resp without Data): no encoding, fewer
	// copies. A server that does not know it is asked fs.read instead.
	MethodReadData = "fs.readdata"
	// MethodWriteData is fs.write whose data follows the arguments (a Req
	// with Size for the data's length and no Data) as raw data frames. A
	// server that does not know it is asked fs.write instead.
	MethodWriteData = "fs.writedata"
	// MethodSession is one long-lived streaming call per client and server
	// that carries small requests (everything but reads and writes larger
	// than SessionIO), so that each costs a message rather than a new
	// stream.
	MethodSession = "fs.session"
)

// ViaSession says whether a request of method goes on fs.session: every
// method but reads and writes of more than SessionIO bytes, which take a
// stream each so that they run in parallel and never hold up a small
// request.
func ViaSession(method string, req *Req) bool {
	switch method {
	case MethodRead:
		return req.Size <= SessionIO
	case MethodWrite:
		return len(req.Data) <= SessionIO
	case MethodWriteV:
		return extentBytes(req.Extents) <= SessionIO && req.Size <= SessionIO
	}
	return true
}

// SessionReq is one request inside fs.session (a Msg from the client).
type SessionReq struct {
	ID     uint64 `cbor:"1,keyasint"`
	Method string `cbor:"2,keyasint"`
	Req    Req    `cbor:"3,keyasint"`
}

// SessionResp answers the SessionReq with the same ID (a Msg from the
// server, in any order); Err is set when the request broke the protocol.
type SessionResp struct {
	ID   uint64 `cbor:"1,keyasint"`
	Resp *Resp  `cbor:"2,keyasint,omitempty"`
	Err  string `cbor:"3,keyasint,omitempty"`
}

// Limits on what a request may carry.
const (
	MaxIO    = 1 << 20 // bytes per read or write (the mount's MaxWrite)
	MaxName  = 255     // bytes in one path component
	MaxPath  = 4096    // bytes in a path or a symlink target
	MaxXattr = 64 << 10
	DirPage  = 4096 // directory entries per fs.readdir reply
	// SessionIO is the largest read or write that travels on fs.session:
	// a small file's data costs a message, not a stream of its own, and
	// holds up the session's other requests for a few microseconds only.
	SessionIO  = 64 << 10
	maxReadBuf = 2 * MaxIO
)

// Cred is the user a request acts for. It travels in every request; the
// server squashes root (uid 0) to nobody.
type Cred struct {
	UID    uint32   `cbor:"1,keyasint"`
	GID    uint32   `cbor:"2,keyasint"`
	Groups []uint32 `cbor:"3,keyasint,omitempty"`
}

// Req is the argument of every fs.* method. Path is relative to the
// domain's root ("" is the root itself), in clean slash form; Name is one
// component.
type Req struct {
	Prefix  string   `cbor:"1,keyasint"`
	Path    string   `cbor:"2,keyasint,omitempty"`
	Name    string   `cbor:"3,keyasint,omitempty"`
	Cred    Cred     `cbor:"4,keyasint"`
	NewPath string   `cbor:"5,keyasint,omitempty"` // rename, link: target directory
	NewName string   `cbor:"6,keyasint,omitempty"`
	Flags   uint32   `cbor:"7,keyasint,omitempty"` // open, rename, xattr flags
	Mode    uint32   `cbor:"8,keyasint,omitempty"`
	Handle  uint64   `cbor:"9,keyasint,omitempty"`
	Offset  int64    `cbor:"10,keyasint,omitempty"`
	Size    int64    `cbor:"11,keyasint,omitempty"`
	Data    []byte   `cbor:"12,keyasint,omitempty"` // write data, symlink target, xattr value/name
	Set     *SetAttr `cbor:"13,keyasint,omitempty"`
	Boot    int64    `cbor:"14,keyasint,omitempty"` // the client daemon's boot id
	// Handles: fs.release, more handles of the same client to close.
	Handles []uint64 `cbor:"15,keyasint,omitempty"`
	// Extents: fs.writev, the writes to make, in order.
	Extents []Extent `cbor:"16,keyasint,omitempty"`

	// Lazy (never sent) tells the Caller that nobody waits for this
	// request's effect: it may be delayed and sent with others
	// (fs.release of a handle that holds no write descriptor).
	Lazy bool `cbor:"-"`
}

// MaxBatch bounds Req.Handles.
const MaxBatch = 1024

// SetAttr says which attributes fs.setattr changes.
type SetAttr struct {
	Valid uint32 `cbor:"1,keyasint"` // SetMode | SetUID | ...
	Mode  uint32 `cbor:"2,keyasint,omitempty"`
	UID   uint32 `cbor:"3,keyasint,omitempty"`
	GID   uint32 `cbor:"4,keyasint,omitempty"`
	Size  int64  `cbor:"5,keyasint,omitempty"`
	Atime int64  `cbor:"6,keyasint,omitempty"` // unix ns
	Mtime int64  `cbor:"7,keyasint,omitempty"`
}

// SetAttr.Valid bits.
const (
	SetMode = 1 << iota
	SetUID
	SetGID
	SetSize
	SetAtime
	SetMtime
	SetAtimeNow
	SetMtimeNow
)

// Open reply flags (Resp.Flags).
const (
	OpenKeepCache = 1 << iota // the client's cached data is current
	OpenDirect                // concurrent write sharing: do not cache
	DirMore                   // fs.readdir: more entries follow
	// DirWatched: fs.mkdir made an empty directory that the server
	// watches, so the client hears of every entry made in it from now on
	// (fs.invalidate) and may answer lookups of other names itself.
	DirWatched
	// OpenWatched: the opened file's directory has an inotify watch on
	// the server, so every change of the file, through the server or on
	// its disk, reaches the client (fs.invalidate) while it holds the
	// handle: the client may keep the handle after the close and reuse
	// it for the next open (package fs/fuse, kept.go).
	OpenWatched
)

// Resp is the result of every fs.* method.
type Resp struct {
	Errno   uint32     `cbor:"1,keyasint,omitempty"`
	Attr    *Attr      `cbor:"2,keyasint,omitempty"`
	Handle  uint64     `cbor:"3,keyasint,omitempty"`
	Data    []byte     `cbor:"4,keyasint,omitempty"`
	Entries []Dirent   `cbor:"5,keyasint,omitempty"`
	Flags   uint32     `cbor:"6,keyasint,omitempty"`
	Version uint64     `cbor:"7,keyasint,omitempty"`
	Statfs  *Statfs    `cbor:"8,keyasint,omitempty"`
	N       int64      `cbor:"9,keyasint,omitempty"`
	Exports []Exported `cbor:"10,keyasint,omitempty"`
	// Dir: fs.create and fs.mkdir, the attributes of the directory the
	// entry was made in, after the change: the client's kernel asks for
	// them next, and the client answers from here.
	Dir *Attr `cbor:"11,keyasint,omitempty"`
}

// Attr is a file's attributes. Ino is unique within a domain.
type Attr struct {
	Ino     uint64 `cbor:"1,keyasint"`
	Mode    uint32 `cbor:"2,keyasint"`
	Nlink   uint32 `cbor:"3,keyasint"`
	UID     uint32 `cbor:"4,keyasint"`
	GID     uint32 `cbor:"5,keyasint"`
	Size    int64  `cbor:"6,keyasint"`
	Blocks  int64  `cbor:"7,keyasint"`
	Atime   int64  `cbor:"8,keyasint"` // unix ns
	Mtime   int64  `cbor:"9,keyasint"`
	Ctime   int64  `cbor:"10,keyasint"`
	Rdev    uint32 `cbor:"11,keyasint,omitempty"`
	Blksize uint32 `cbor:"12,keyasint,omitempty"`
	// NoXattr (fs.lookup, fs.getattr of a path) says the file has no
	// extended attributes but those /sprite does not carry (NotCarried):
	// the client may answer getxattr and listxattr itself while it
	// trusts these attributes.
	NoXattr bool `cbor:"13,keyasint,omitempty"`
	// Local (never sent) marks attributes a client made up from its own
	// writes (owncopy.go): not to be kept.
	Local bool `cbor:"-"`
}

// Dirent is one directory entry.
type Dirent struct {
	Name string `cbor:"1,keyasint"`
	Ino  uint64 `cbor:"2,keyasint"`
	Type uint8  `cbor:"3,keyasint"` // DT_* from dirent.h
	// Attr is the entry's attributes, as a lookup of it answers (NoXattr
	// included), when the fs.readdir asked for them (ReaddirAttrs) and
	// the caller may search the directory; nil otherwise.
	Attr *Attr `cbor:"4,keyasint,omitempty"`
}

// ReaddirAttrs (Req.Flags of an fs.readdir) asks for each entry's
// attributes: `ls -l` of a directory is then one call, not one lookup
// per name. The server counts the client as asking about every entry
// (fs/interest.go), so a change of one reaches it.
const ReaddirAttrs = 1

// ReaddirSmall (with ReaddirAttrs) asks for the listing only if the
// directory holds at most SmallDir entries; a larger one answers E2BIG
// and nothing else. A client asks so when it lists a directory on its
// own, to answer the lookups it sees coming (package fuse), and a
// listing that would cost the server a stat of every entry of a large
// directory would cost more than those lookups.
const ReaddirSmall = 2

// SmallDir is the most entries a ReaddirSmall listing has.
const SmallDir = 1024

// Statfs is a domain's file system usage.
type Statfs struct {
	Blocks  uint64 `cbor:"1,keyasint"`
	Bfree   uint64 `cbor:"2,keyasint"`
	Bavail  uint64 `cbor:"3,keyasint"`
	Files   uint64 `cbor:"4,keyasint"`
	Ffree   uint64 `cbor:"5,keyasint"`
	Bsize   uint32 `cbor:"6,keyasint"`
	NameLen uint32 `cbor:"7,keyasint"`
	Frsize  uint32 `cbor:"8,keyasint"`
}

// Exported is one domain a host serves.
type Exported struct {
	Prefix string `cbor:"1,keyasint" json:"prefix"`
	Path   string `cbor:"2,keyasint" json:"path"`
}

// Invalidate is the argument of fs.invalidate: entries whose cached names,
// attributes and data a client must drop. Recall says that the file has
// just come under concurrent write sharing: the client sends what it
// holds in its write-behind buffers for the items before it answers, and
// writes through from then on.
type Invalidate struct {
	Items  []Item `cbor:"1,keyasint"`
	Recall bool   `cbor:"2,keyasint,omitempty"`
}

// Extent is one write of an fs.writev: Data at Offset.
type Extent struct {
	Offset int64  `cbor:"1,keyasint"`
	Data   []byte `cbor:"2,keyasint"`
}

// Flags of an fs.writev: after the writes, flush the handle (close(2)
// after write-behind, one call instead of two), or answer with its
// attributes (fstat(2), as the kernel asks after writes), or change the
// attributes of Path by Set and answer with them (fs.setattr by path:
// tar's futimens(2) before its close). WriteVSync, alone or with
// WriteVStat or WriteVSetattr (not with WriteVFlush, which does it
// anyway), also does what a flush tells other clients (every one drops
// what it caches of the file) before the answer, but the handle
// stays open for writing; a server that did so sets WriteVSync in
// Resp.Flags. A close with nothing written since then need not call the
// server at all (docs/consistency.md).
const (
	WriteVFlush = 1 << iota
	WriteVStat
	WriteVSetattr
	WriteVSync
)

func extentBytes(ex []Extent) int {
	n := 0
	for _, e := range ex {
		n += len(e.Data)
	}
	return n
}

// Item names one entry: Path (relative to the domain's root) in Prefix.
type Item struct {
	Prefix string `cbor:"1,keyasint"`
	Path   string `cbor:"2,keyasint"`
}
