package pmake

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The run directory's files:
//
//	events       the job shells' records (Record, one JSON line each)
//	hosts        the session's hosts now: "NAME SLOTS" lines, replaced whole
//	slots/       lock files: r.NAME.I (remote slot I of NAME), l.I (home slot I)
//	queue        the job queue's unix socket (queue.go)
const (
	eventsFile = "events"
	hostsFile  = "hosts"
	slotsDir   = "slots"
)

// Slot is one held slot: a lock file locked with flock(2). The kernel drops
// the lock when the holder dies, so a killed job shell never leaks a slot.
type Slot struct {
	f      *os.File
	Remote bool
}

// Release gives the slot back.
func (s *Slot) Release() {
	if s != nil && s.f != nil {
		s.f.Close()
	}
}

// writeHosts replaces the hosts file with the session's current holding.
func writeHosts(run string, hosts []HostSlots) error {
	var b strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s %d\n", h.Host, h.Slots)
	}
	tmp := filepath.Join(run, hostsFile+".new")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(run, hostsFile))
}

// HostSlots is one host of the session and how many jobs it takes at once.
type HostSlots struct {
	Host  string
	Slots int
}

func readHosts(run string) []HostSlots {
	f, err := os.Open(filepath.Join(run, hostsFile))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []HostSlots
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, n, ok := strings.Cut(sc.Text(), " ")
		k, err := strconv.Atoi(n)
		if ok && err == nil && k > 0 {
			out = append(out, HostSlots{name, k})
		}
	}
	return out
}

// tryLock takes name's lock without waiting.
func tryLock(path string) *os.File {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		f.Close()
		return nil
	}
	return f
}

// AcquireSlot waits for a slot under -L: a free slot on one of the
// session's hosts (the job then goes to the session) or one of the local
// home slots (the job then runs here); -L 0 means no home slot while the
// session holds a host, one while it holds none. It polls every 20 ms: slots change
// hands at job granularity, far slower than that.
func AcquireSlot(run string, local int) *Slot {
	dir := filepath.Join(run, slotsDir)
	for {
		hosts := readHosts(run)
		for _, h := range hosts {
			for i := range h.Slots {
				if f := tryLock(filepath.Join(dir, fmt.Sprintf("r.%s.%d", h.Host, i))); f != nil {
					return &Slot{f: f, Remote: true}
				}
			}
		}
		n := local
		if n == 0 && len(hosts) == 0 {
			n = 1 // -L 0 holds nothing at home only while there are hosts
		}
		for i := range n {
			if f := tryLock(filepath.Join(dir, fmt.Sprintf("l.%d", i))); f != nil {
				return &Slot{f: f}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
