package fusefs

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"sprite/fs"
)

// credCache remembers each calling process's supplementary groups for a
// moment: reading /proc/PID/status on every request would cost more than
// the request.
type credCache struct {
	mu    sync.Mutex
	byPID map[uint32]credEntry // guarded by mu
}

type credEntry struct {
	groups []uint32
	at     time.Time
}

const credTTL = 2 * time.Second

func newCredCache() *credCache { return &credCache{byPID: map[uint32]credEntry{}} }

// cred is the user a FUSE request acts for.
func (m *Mount) cred(ctx context.Context) fs.Cred {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return fs.Cred{UID: fs.Nobody, GID: fs.Nobody}
	}
	return fs.Cred{UID: c.Uid, GID: c.Gid, Groups: m.creds.groups(c.Pid)}
}

func (cc *credCache) groups(pid uint32) []uint32 {
	if pid == 0 {
		return nil
	}
	now := time.Now()
	cc.mu.Lock()
	e, ok := cc.byPID[pid]
	cc.mu.Unlock()
	if ok && now.Sub(e.at) < credTTL {
		return e.groups
	}
	gs := readGroups(pid)
	cc.mu.Lock()
	if len(cc.byPID) > 4096 {
		clear(cc.byPID)
	}
	cc.byPID[pid] = credEntry{groups: gs, at: now}
	cc.mu.Unlock()
	return gs
}

func readGroups(pid uint32) []uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return nil
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Groups:")
		if !ok {
			continue
		}
		var out []uint32
		for f := range strings.FieldsSeq(rest) {
			if g, err := strconv.ParseUint(f, 10, 32); err == nil {
				out = append(out, uint32(g))
			}
		}
		return out
	}
	return nil
}
