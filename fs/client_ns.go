package fs

import (
	"context"
	"hash/fnv"
	"path"
	"sort"
	"syscall"
)

// pathIno numbers a synthetic node by its path.
func pathIno(p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("sprite-synthetic:" + p))
	return h.Sum64() | 1
}

// Made is what Mkdir made.
type Made struct {
	Attr Attr  // the new directory's attributes
	Dir  *Attr // its parent's after the change, when the server sent them
	// Watched: the new directory was empty and its server now reports
	// every entry made in it (Resp.Flags DirWatched).
	Watched bool
}

// Mkdir makes directory name in dir.
func (c *Client) Mkdir(ctx context.Context, cr Cred, dir, name string, mode uint32) (Made, error) {
	resp, err := c.makeEntry(ctx, cr, MethodMkdir, dir, name, &Req{Mode: mode})
	if err != nil {
		return Made{}, err
	}
	return Made{Attr: *resp.Attr, Dir: resp.Dir, Watched: resp.Flags&DirWatched != 0}, nil
}

// Symlink makes name in dir, pointing at target.
func (c *Client) Symlink(ctx context.Context, cr Cred, dir, name, target string) (Attr, error) {
	resp, err := c.makeEntry(ctx, cr, MethodSymlink, dir, name, &Req{Data: []byte(target)})
	if err != nil {
		return Attr{}, err
	}
	return *resp.Attr, nil
}

func (c *Client) makeEntry(ctx context.Context, cr Cred, method, dir, name string, req *Req) (*Resp, error) {
	r, err := c.remoteChild(dir, name)
	if err != nil {
		return nil, err
	}
	req.Cred = cr
	req.Path, req.Name = splitPath(r.Rel)
	return c.do(ctx, r.Domain, method, req)
}

// InDomain reports whether p lies inside a domain, below its root (and
// so is no prefix and leads to none).
func (c *Client) InDomain(p string) bool {
	r := c.Table.Route(p)
	return r.Kind == RouteDomain && r.Rel != ""
}

// ListingNotified reports whether every entry of directory p comes from
// one domain's server, which tells the hosts that listed it of each change
// (fs/interest.go), so that a listing of it may be kept for CacheTimeout.
// Not where the prefix table adds names: they change with no word from
// any server.
func (c *Client) ListingNotified(p string) bool {
	return c.Table.Route(p).Kind == RouteDomain && len(c.Table.Children(p)) == 0
}

// Unlink removes name from dir. It also returns dir's attributes after
// the change when the server sent them (nil otherwise).
func (c *Client) Unlink(ctx context.Context, cr Cred, dir, name string) (*Attr, error) {
	return c.remove(ctx, cr, MethodUnlink, dir, name)
}

// Rmdir removes directory name from dir, and returns dir's attributes as
// Unlink does.
func (c *Client) Rmdir(ctx context.Context, cr Cred, dir, name string) (*Attr, error) {
	return c.remove(ctx, cr, MethodRmdir, dir, name)
}

func (c *Client) remove(ctx context.Context, cr Cred, method, dir, name string) (*Attr, error) {
	r, err := c.remoteChild(dir, name)
	if err != nil {
		if err == syscall.EEXIST {
			return nil, syscall.EBUSY // a prefix or the directory leading to one
		}
		return nil, err
	}
	c.forgetStat(path.Join(dir, name)) // its link count changes
	d, n := splitPath(r.Rel)
	resp, err := c.do(ctx, r.Domain, method, &Req{Cred: cr, Path: d, Name: n})
	if err != nil {
		return nil, err
	}
	return resp.Dir, nil
}

// Rename moves dir/name to ndir/nname within one domain; across domains it
// is EXDEV, and mv copies.
func (c *Client) Rename(ctx context.Context, cr Cred, dir, name, ndir, nname string, flags uint32) error {
	r, err := c.remoteChild(dir, name)
	if err != nil {
		return err
	}
	nr, err := c.remoteChild(ndir, nname)
	if err != nil {
		return err
	}
	if r.Domain.Prefix != nr.Domain.Prefix {
		return syscall.EXDEV
	}
	c.flushPath(ctx, path.Join(dir, name))
	c.forgetStat(path.Join(dir, name))   // its change time moves
	c.forgetStat(path.Join(ndir, nname)) // a file it replaces loses a link
	d, n := splitPath(r.Rel)
	nd, nn := splitPath(nr.Rel)
	_, err = c.do(ctx, r.Domain, MethodRename, &Req{Cred: cr, Path: d, Name: n, NewPath: nd, NewName: nn, Flags: flags})
	return err
}

// Link makes ndir/nname another name of p.
func (c *Client) Link(ctx context.Context, cr Cred, p, ndir, nname string) (Attr, error) {
	r, err := c.remote(p)
	if err != nil {
		return Attr{}, err
	}
	nr, err := c.remoteChild(ndir, nname)
	if err != nil {
		return Attr{}, err
	}
	if r.Domain.Prefix != nr.Domain.Prefix {
		return Attr{}, syscall.EXDEV
	}
	dropOwnOf(c.writers(p)) // the file may be written under the new name too
	c.flushPath(ctx, p)
	nd, nn := splitPath(nr.Rel)
	resp, err := c.do(ctx, r.Domain, MethodLink, &Req{Cred: cr, Path: r.Rel, NewPath: nd, NewName: nn})
	if err != nil {
		return Attr{}, err
	}
	return *resp.Attr, nil
}

// Readlink returns symlink p's target.
func (c *Client) Readlink(ctx context.Context, cr Cred, p string) (string, error) {
	r, err := c.remote(p)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, r.Domain, MethodReadlink, &Req{Cred: cr, Path: r.Rel})
	if err != nil {
		return "", err
	}
	return string(resp.Data), nil
}

// Readdir lists directory p, a snapshot in a stable order: "." and "..",
// the server's entries, then names leading to other domains' prefixes
// (which hide entries of the same name).
func (c *Client) Readdir(ctx context.Context, cr Cred, p string) ([]Dirent, error) {
	return c.readdirDots(ctx, cr, p, ReaddirAttrs)
}

// ReaddirSmall is Readdir of a directory that holds at most SmallDir
// entries; a larger one is E2BIG, and costs its server no more than
// reading the names.
func (c *Client) ReaddirSmall(ctx context.Context, cr Cred, p string) ([]Dirent, error) {
	return c.readdirDots(ctx, cr, p, ReaddirAttrs|ReaddirSmall)
}

func (c *Client) readdirDots(ctx context.Context, cr Cred, p string, flags uint32) ([]Dirent, error) {
	ents, err := c.readdir(ctx, cr, p, flags)
	if err != nil {
		return nil, err
	}
	dots := []Dirent{{Name: ".", Ino: pathIno(p), Type: syscall.DT_DIR}, {Name: "..", Ino: pathIno(path.Dir(p)), Type: syscall.DT_DIR}}
	return append(dots, ents...), nil
}

func (c *Client) readdir(ctx context.Context, cr Cred, p string, flags uint32) ([]Dirent, error) {
	r := c.Table.Route(p)
	var out []Dirent
	switch r.Kind {
	case RouteNone:
		return nil, syscall.ENOENT
	case RouteHosts:
		return c.hostsDir(r.Rel)
	case RouteProc:
		return c.procDir(ctx, r.Rel)
	case RouteDomain:
		ents, err := c.readRemoteDir(ctx, cr, r, flags)
		if err != nil {
			return nil, err
		}
		out = ents
	}
	kids := c.Table.Children(p)
	if len(kids) == 0 {
		return out, nil
	}
	hide := map[string]bool{}
	for _, k := range kids {
		hide[k] = true
	}
	merged := out[:0]
	for _, e := range out {
		if !hide[e.Name] {
			merged = append(merged, e)
		}
	}
	for _, k := range kids {
		merged = append(merged, Dirent{Name: k, Ino: pathIno(path.Join(p, k)), Type: syscall.DT_DIR})
	}
	return merged, nil
}

func (c *Client) readRemoteDir(ctx context.Context, cr Cred, r Route, flags uint32) ([]Dirent, error) {
	var out []Dirent
	for {
		resp, err := c.do(ctx, r.Domain, MethodReaddir, &Req{Cred: cr, Path: r.Rel, Offset: int64(len(out)), Flags: flags})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Entries...)
		if resp.Flags&DirMore == 0 || len(resp.Entries) == 0 {
			return out, nil
		}
	}
}

// Statfs reports the file system holding p; outside every domain, an
// empty one.
func (c *Client) Statfs(ctx context.Context, cr Cred, p string) (Statfs, error) {
	r := c.Table.Route(p)
	if r.Kind != RouteDomain {
		return Statfs{Bsize: 4096, Frsize: 4096, NameLen: MaxName}, nil
	}
	resp, err := c.do(ctx, r.Domain, MethodStatfs, &Req{Cred: cr})
	if err != nil {
		return Statfs{}, err
	}
	return *resp.Statfs, nil
}

// Xattr runs one of the four extended-attribute methods on p.
func (c *Client) Xattr(ctx context.Context, cr Cred, method, p, name string, data []byte, size int, flags uint32) ([]byte, int, error) {
	r, err := c.remote(p)
	if err != nil {
		if err == ErrNotRemote {
			return nil, 0, syscall.ENODATA
		}
		return nil, 0, err
	}
	resp, err := c.do(ctx, r.Domain, method, &Req{Cred: cr, Path: r.Rel, Name: name, Data: data, Size: int64(size), Flags: flags})
	if err != nil {
		return nil, 0, err
	}
	return resp.Data, int(resp.N), nil
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
