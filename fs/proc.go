package fs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sprite/pki"
)

// ProcTable is the cluster's remote processes as /proc shows them
// (implemented by package homenode). Errors are syscall.Errno values,
// possibly wrapped; any other error reads as EIO.
type ProcTable interface {
	// Procs lists the processes the tree shows (every home's; ids and
	// owners only).
	Procs(ctx context.Context) ([]ProcEntry, error)
	// ProcStatus is the text of /proc/<id>/status for the caller;
	// syscall.ENOENT, EACCES as errors.
	ProcStatus(ctx context.Context, id string, cred Cred) ([]byte, error)
	// ProcCtl sends sig to process id for the caller (a line written to
	// /proc/<id>/ctl, parsed by ParseProcCtl); errors EACCES, ENOENT,
	// EINVAL.
	ProcCtl(ctx context.Context, id string, cred Cred, sig syscall.Signal) error
}

// ProcEntry is one remote process in /proc: its global id ("h1.1234":
// home host, dot, number) and its owner.
type ProcEntry struct {
	ID  string
	UID uint32
	GID uint32
}

// The files of /proc/<id>/.
const (
	ProcStatusFile = "status"
	ProcCtlFile    = "ctl"
)

// procTTL is how long a listing from ProcTable.Procs answers lookups and
// attributes (a walk to /proc/<id>/status is three lookups and a getattr).
// A name the cached listing lacks is asked again at once, so a new
// process is never missing; a process that has gone may stay visible this
// long, and its files then fail with ENOENT. Readdir always asks.
const procTTL = 250 * time.Millisecond

// procCache is the last listing of ProcTable.Procs.
type procCache struct {
	mu   sync.Mutex  // a leaf
	list []ProcEntry // guarded by mu
	at   time.Time   // guarded by mu; zero: never fetched
}

// ValidProcID reports whether id has the form of a global process id:
// a host name (a DNS label, pki.ValidName), a dot and a decimal number.
func ValidProcID(id string) bool {
	host, num, ok := strings.Cut(id, ".")
	if !ok || pki.ValidName(host) != nil || num == "" || len(num) > 19 {
		return false
	}
	for _, c := range []byte(num) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseProcCtl parses one line written to /proc/<id>/ctl: a signal word
// ("kill" = SIGKILL, "term", "int", "stop", "cont", "hup", "usr1", ...:
// any signal's name, in lower case, without SIG), or "kill" or "signal"
// followed by a signal as a name or number, with or without '-' and SIG
// ("kill -9", "kill TERM", "kill -SIGSTOP", "signal 15"). Anything else
// is EINVAL.
func ParseProcCtl(line string) (syscall.Signal, error) {
	f := strings.Fields(line)
	switch {
	case len(f) == 1 && strings.ToLower(f[0]) == f[0]:
		if s := unix.SignalNum("SIG" + strings.ToUpper(f[0])); s != 0 {
			return s, nil
		}
	case len(f) == 2 && (f[0] == "kill" || f[0] == "signal"):
		if s, ok := parseSignal(f[1]); ok {
			return s, nil
		}
	}
	return 0, fmt.Errorf("proc ctl: %q is not a control line: write kill, term, int, stop, cont, or \"kill SIGNAL\" / \"signal N\": %w",
		line, syscall.EINVAL)
}

// parseSignal reads "9", "-9", "TERM", "-term", "SIGTERM", "-SIGTERM".
func parseSignal(s string) (syscall.Signal, bool) {
	s = strings.TrimPrefix(s, "-")
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 { // SIGRTMAX
			return 0, false
		}
		return syscall.Signal(n), true
	}
	s = strings.ToUpper(s)
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	sig := unix.SignalNum(s)
	return sig, sig != 0
}

// procCtx bounds a call of the ProcTable as do bounds a call to a host.
func (c *Client) procCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	t := c.Timeout
	if t <= 0 {
		t = 10 * time.Second
	}
	return context.WithTimeout(context.WithoutCancel(ctx), t)
}

// procErr gives a ProcTable's error context, keeping its errno (EIO when
// it has none).
func procErr(what string, err error) error {
	var en syscall.Errno
	if errors.As(err, &en) {
		return fmt.Errorf("proc: %s: %w", what, err)
	}
	return fmt.Errorf("proc: %s: %v: %w", what, err, syscall.EIO)
}

// procList is the listing, from the cache when it is younger than procTTL
// and fresh is false.
func (c *Client) procList(ctx context.Context, fresh bool) ([]ProcEntry, error) {
	if c.Procs == nil {
		return nil, nil
	}
	if !fresh {
		c.procs.mu.Lock()
		list, at := c.procs.list, c.procs.at
		c.procs.mu.Unlock()
		if !at.IsZero() && time.Since(at) < procTTL {
			return list, nil
		}
	}
	ctx, cancel := c.procCtx(ctx)
	defer cancel()
	start := time.Now()
	list, err := c.Procs.Procs(ctx)
	if err != nil {
		return nil, procErr("list the processes", err)
	}
	c.procs.mu.Lock()
	if start.After(c.procs.at) {
		c.procs.list, c.procs.at = list, start
	}
	c.procs.mu.Unlock()
	return list, nil
}

// procFind finds process id (ENOENT when it is not there or id is not a
// process id).
func (c *Client) procFind(ctx context.Context, id string) (ProcEntry, error) {
	if !ValidProcID(id) || c.Procs == nil {
		return ProcEntry{}, syscall.ENOENT
	}
	for _, fresh := range []bool{false, true} {
		list, err := c.procList(ctx, fresh)
		if err != nil {
			return ProcEntry{}, err
		}
		for _, e := range list {
			if e.ID == id {
				return e, nil
			}
		}
	}
	return ProcEntry{}, syscall.ENOENT
}

// splitProc splits a path below /proc into the process id and the file
// name ("" for the process's directory).
func splitProc(rel string) (id, file string, err error) {
	id, file, _ = strings.Cut(rel, "/")
	if strings.Contains(file, "/") {
		return "", "", syscall.ENOTDIR
	}
	if file != "" && file != ProcStatusFile && file != ProcCtlFile {
		return "", "", syscall.ENOENT
	}
	return id, file, nil
}

// procMayUse reports whether cr may read status or write ctl of e: its
// owner and root only. The core checks this itself: a mount without
// default_permissions leaves the mode bits unchecked.
func procMayUse(cr Cred, e ProcEntry) bool { return cr.UID == 0 || cr.UID == e.UID }

func procFileAttr(p string, e ProcEntry, perm uint32) Attr {
	now := time.Now().UnixNano()
	return Attr{Ino: pathIno(p), Mode: syscall.S_IFREG | perm, Nlink: 1, UID: e.UID, GID: e.GID,
		Mtime: now, Atime: now, Ctime: now}
}

// procAttr is the attributes of /proc/<rel>.
func (c *Client) procAttr(ctx context.Context, rel string) (Attr, error) {
	p := "/" + SynthProc
	if rel == "" {
		return dirAttr(p), nil
	}
	p += "/" + rel
	id, file, err := splitProc(rel)
	if err != nil {
		return Attr{}, err
	}
	e, err := c.procFind(ctx, id)
	if err != nil {
		return Attr{}, err
	}
	switch file {
	case "":
		a := dirAttr(p)
		a.UID, a.GID = e.UID, e.GID
		a.Mtime = time.Now().UnixNano()
		a.Atime, a.Ctime = a.Mtime, a.Mtime
		return a, nil
	case ProcStatusFile:
		// Size 0, as in the kernel's /proc: the text is computed at
		// open, for the opener, and read with direct I/O.
		return procFileAttr(p, e, 0o400), nil
	default:
		return procFileAttr(p, e, 0o200), nil
	}
}

// procDir lists /proc/<rel>.
func (c *Client) procDir(ctx context.Context, rel string) ([]Dirent, error) {
	base := "/" + SynthProc
	if rel == "" {
		list, err := c.procList(ctx, true)
		if err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(list))
		for _, e := range list {
			if ValidProcID(e.ID) {
				ids = append(ids, e.ID)
			}
		}
		slices.SortFunc(ids, compareProcIDs)
		ids = slices.Compact(ids)
		out := make([]Dirent, 0, len(ids))
		for _, id := range ids {
			out = append(out, Dirent{Name: id, Ino: pathIno(base + "/" + id), Type: syscall.DT_DIR})
		}
		return out, nil
	}
	id, file, err := splitProc(rel)
	if err != nil {
		return nil, err
	}
	if file != "" {
		return nil, syscall.ENOTDIR
	}
	if _, err := c.procFind(ctx, id); err != nil {
		return nil, err
	}
	var out []Dirent
	for _, n := range []string{ProcCtlFile, ProcStatusFile} {
		out = append(out, Dirent{Name: n, Ino: pathIno(base + "/" + rel + "/" + n), Type: syscall.DT_REG})
	}
	return out, nil
}

// compareProcIDs orders ids by host, then by number.
func compareProcIDs(a, b string) int {
	ha, na, _ := strings.Cut(a, ".")
	hb, nb, _ := strings.Cut(b, ".")
	if c := strings.Compare(ha, hb); c != 0 {
		return c
	}
	if len(na) != len(nb) {
		return len(na) - len(nb)
	}
	return strings.Compare(na, nb)
}

// ProcOpen opens /proc/<rel> for cr: the text of a status file (read
// only), computed now; nil for a ctl file (write only; O_TRUNC and
// O_CREAT are ignored, so a shell's `echo kill > ctl` works). Only the
// process's owner and root may open either: EACCES.
func (c *Client) ProcOpen(ctx context.Context, cr Cred, rel string, flags uint32) ([]byte, error) {
	id, file, err := splitProc(rel)
	if err != nil {
		return nil, err
	}
	if file == "" {
		return nil, syscall.EISDIR
	}
	e, err := c.procFind(ctx, id)
	if err != nil {
		return nil, err
	}
	acc := flags & syscall.O_ACCMODE
	if !procMayUse(cr, e) ||
		file == ProcStatusFile && acc != syscall.O_RDONLY ||
		file == ProcCtlFile && acc != syscall.O_WRONLY {
		return nil, syscall.EACCES
	}
	if file == ProcCtlFile {
		return nil, nil
	}
	ctx, cancel := c.procCtx(ctx)
	defer cancel()
	b, err := c.Procs.ProcStatus(ctx, id, cr)
	if err != nil {
		return nil, procErr("status of "+id, err)
	}
	return b, nil
}

// ProcWrite carries out data written to /proc/<rel> (a ctl file) by cr:
// one control line or several (ParseProcCtl), all checked before the
// first is carried out. It returns len(data) when all were.
func (c *Client) ProcWrite(ctx context.Context, cr Cred, rel string, data []byte) (int, error) {
	id, file, err := splitProc(rel)
	if err != nil {
		return 0, err
	}
	if file != ProcCtlFile {
		return 0, syscall.EBADF
	}
	var sigs []syscall.Signal
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		sig, err := ParseProcCtl(line)
		if err != nil {
			return 0, err
		}
		sigs = append(sigs, sig)
	}
	e, err := c.procFind(ctx, id)
	if err != nil {
		return 0, err
	}
	if !procMayUse(cr, e) {
		return 0, syscall.EACCES
	}
	ctx, cancel := c.procCtx(ctx)
	defer cancel()
	for _, sig := range sigs {
		if err := c.Procs.ProcCtl(ctx, id, cr, sig); err != nil {
			return 0, procErr(fmt.Sprintf("signal %s to %s", unix.SignalName(sig), id), err)
		}
	}
	return len(data), nil
}

// procSetattr allows only what a shell's `> ctl` does: truncate a ctl
// file to size 0 (and touch its times), as its owner or root; nothing
// changes. Anything else under /proc is EROFS.
func (c *Client) procSetattr(ctx context.Context, cr Cred, rel string, set SetAttr) (Attr, error) {
	id, file, err := splitProc(rel)
	if err != nil {
		return Attr{}, err
	}
	if file != ProcCtlFile || set.Valid&(SetMode|SetUID|SetGID) != 0 || set.Valid&SetSize != 0 && set.Size != 0 {
		return Attr{}, ErrNotRemote
	}
	e, err := c.procFind(ctx, id)
	if err != nil {
		return Attr{}, err
	}
	if !procMayUse(cr, e) {
		return Attr{}, syscall.EACCES
	}
	return procFileAttr("/"+SynthProc+"/"+rel, e, 0o200), nil
}
