package daemon

import (
	"os/user"
	"slices"
	"strconv"
)

// UserName is the name of uid on this host, or the number when it has
// none (jobs and requests carry uids from other hosts).
func UserName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return u.Username
	}
	return strconv.FormatUint(uint64(uid), 10)
}

// IsOwner reports whether uid may act as this host's owner: root, or a
// user named in the config's owners (idle policy, evictions).
func (c *Config) IsOwner(uid uint32) bool {
	return uid == 0 || slices.Contains(c.Owners, UserName(uid))
}
