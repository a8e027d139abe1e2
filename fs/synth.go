package fs

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"sprite/api"
)

// HostsFunc lists the cluster's hosts (daemon.Members.List).
type HostsFunc func() []api.HostStatus

// The synthetic tree /hosts/<host>/ holds one small read-only file per
// fact about the host, computed at each open from the membership (and the
// idle database, where the daemon has one): state (up or down), activity
// (idle, active, busy, never, unknown), load, idle_for (seconds), cpus,
// arch, addr, version, uptime (seconds since the host's daemon started)
// and last_seen. Its sibling /proc/<host>.<pid>/ (status, ctl) is in
// proc.go; /dev/ will join them.
func hostFiles(h api.HostStatus, now time.Time) map[string]string {
	seen := "never"
	if h.LastSeen > 0 {
		seen = time.UnixMilli(h.LastSeen).UTC().Format(time.RFC3339Nano)
	}
	uptime := "unknown"
	if h.Boot > 0 && h.State == api.StateUp {
		uptime = fmt.Sprintf("%.0f", now.Sub(time.Unix(0, h.Boot)).Seconds())
	}
	activity := h.Activity
	if activity == "" {
		activity = "unknown"
	}
	return map[string]string{
		"state":     h.State + "\n",
		"activity":  activity + "\n",
		"load":      fmt.Sprintf("%.2f\n", h.Load),
		"idle_for":  fmt.Sprintf("%.0f\n", h.IdleFor),
		"cpus":      fmt.Sprintf("%g\n", h.CPUs),
		"arch":      h.Arch + "\n",
		"addr":      h.Addr + "\n",
		"version":   h.Version + "\n",
		"uptime":    uptime + "\n",
		"last_seen": seen + "\n",
	}
}

func (c *Client) findHost(name string) (api.HostStatus, bool) {
	if c.Hosts == nil {
		return api.HostStatus{}, false
	}
	for _, h := range c.Hosts() {
		if h.Name == name {
			return h, true
		}
	}
	return api.HostStatus{}, false
}

// HostsFile returns the contents of /hosts/<rel>.
func (c *Client) HostsFile(rel string) ([]byte, error) {
	host, file, ok := strings.Cut(rel, "/")
	if !ok {
		return nil, syscall.EISDIR
	}
	h, found := c.findHost(host)
	if !found {
		return nil, syscall.ENOENT
	}
	s, ok := hostFiles(h, time.Now())[file]
	if !ok {
		return nil, syscall.ENOENT
	}
	return []byte(s), nil
}

func (c *Client) hostsAttr(rel string) (Attr, error) {
	p := "/" + SynthHosts
	if rel != "" {
		p += "/" + rel
	}
	if rel == "" {
		return dirAttr(p), nil
	}
	host, _, isFile := strings.Cut(rel, "/")
	if _, ok := c.findHost(host); !ok {
		return Attr{}, syscall.ENOENT
	}
	if !isFile {
		return dirAttr(p), nil
	}
	b, err := c.HostsFile(rel)
	if err != nil {
		return Attr{}, err
	}
	now := time.Now().UnixNano()
	return Attr{Ino: pathIno(p), Mode: syscall.S_IFREG | 0o444, Nlink: 1, Size: int64(len(b)), Mtime: now, Atime: now, Ctime: now}, nil
}

func (c *Client) hostsDir(rel string) ([]Dirent, error) {
	base := "/" + SynthHosts
	var out []Dirent
	if rel == "" {
		if c.Hosts != nil {
			for _, h := range c.Hosts() {
				out = append(out, Dirent{Name: h.Name, Ino: pathIno(base + "/" + h.Name), Type: syscall.DT_DIR})
			}
		}
		return out, nil
	}
	if strings.Contains(rel, "/") {
		return nil, syscall.ENOTDIR
	}
	h, ok := c.findHost(rel)
	if !ok {
		return nil, syscall.ENOENT
	}
	for _, n := range sortedNames(hostFiles(h, time.Now())) {
		out = append(out, Dirent{Name: n, Ino: pathIno(base + "/" + rel + "/" + n), Type: syscall.DT_REG})
	}
	return out, nil
}
