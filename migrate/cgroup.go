package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Job cgroups.
//
// On cgroup v1 a job gets a directory in the freezer hierarchy (freeze,
// kill) and in the cpu hierarchy (cpu.shares=2), each under the daemon's own
// cgroup in that hierarchy. On cgroup v2 it gets one directory; freezing
// (cgroup.freeze) and cgroup.kill are core features there and always work,
// but the CPU weight needs the cpu controller enabled in the daemon's own
// cgroup.subtree_control, which the kernel refuses while the daemon's cgroup
// holds processes (the "no internal processes" rule: the daemon itself is
// in it, unless it runs in the root cgroup). Then job cgroups get no CPU
// weight, and the jobs share the daemon's weight; nice 19 and SCHED_IDLE
// (JobInit) still keep them out of the owner's way.

const (
	cgroupMount   = "/sys/fs/cgroup"
	freezeTimeout = 2 * time.Second
	cgKillTimeout = 5 * time.Second
	rmdirTimeout  = time.Second
	jobCPUShares  = "2" // v1 minimum
	jobCPUWeight  = "1" // v2 minimum
)

// Cgroups makes job cgroups under the daemon's own cgroup (read from
// /proc/self/cgroup). It is immutable after NewCgroups and safe for
// concurrent use.
type Cgroups struct {
	version int
	// hiers are the hierarchies jobs go into: on v1 freezer (first, when
	// mounted) and cpu; on v2 one. parent is the directory on disk under
	// which the job cgroups are made.
	hiers []cgHier
	// weight is set when a job cgroup can be given a low CPU weight.
	weight bool
}

// cgHier is one hierarchy's parent directory for job cgroups.
type cgHier struct {
	ctrl   string // "freezer", "cpu" on v1; "" on v2
	parent string
	cpu    bool // v1: the cpu controller is in this hierarchy (cpu.shares)
}

// cgEnv is what NewCgroups reads from the machine, separate for tests.
type cgEnv struct {
	v2         bool
	v2Mount    string // where the unified hierarchy is mounted (v2)
	selfCgroup string // /proc/self/cgroup
	mountinfo  string // /proc/self/mountinfo
	hostname   string
}

// NewCgroups detects cgroup v1 or v2 and the daemon's own cgroup in each
// hierarchy it uses, and makes the parent directories for job cgroups:
// <own>/<name>, or /<name>-<hostname> where the daemon runs in the root
// cgroup (so that hosts sharing one machine do not collide). name is a
// directory name such as "sprite-jobs".
func NewCgroups(name string) (*Cgroups, error) {
	env, err := readCgEnv()
	if err != nil {
		return nil, err
	}
	c, err := detectCgroups(name, env)
	if err != nil {
		return nil, err
	}
	if err := c.setup(); err != nil {
		return nil, err
	}
	return c, nil
}

func readCgEnv() (cgEnv, error) {
	var env cgEnv
	_, err := os.Stat(cgroupMount + "/cgroup.controllers")
	env.v2 = err == nil
	env.v2Mount = cgroupMount
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return env, fmt.Errorf("cgroups: read own cgroup: %w (is /proc mounted?)", err)
	}
	env.selfCgroup = string(b)
	b, err = os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return env, fmt.Errorf("cgroups: read mounts: %w (is /proc mounted?)", err)
	}
	env.mountinfo = string(b)
	env.hostname, err = os.Hostname()
	if err != nil {
		return env, fmt.Errorf("cgroups: host name: %w", err)
	}
	return env, nil
}

// mountEnt is one line of /proc/self/mountinfo.
type mountEnt struct {
	root, point, fstype string
	super               []string
}

func parseMountinfo(s string) []mountEnt {
	var ms []mountEnt
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+4 {
			continue
		}
		ms = append(ms, mountEnt{
			root:   unescapeMount(f[3]),
			point:  unescapeMount(f[4]),
			fstype: f[sep+1],
			super:  strings.Split(f[sep+3], ","),
		})
	}
	return ms
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup returns the daemon's path in the v1 hierarchy with controller
// ctrl, or in v2 (ctrl "").
func ownCgroup(self, ctrl string) (string, bool) {
	for _, line := range strings.Split(self, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if ctrl == "" {
			if parts[0] == "0" && parts[1] == "" {
				return parts[2], true
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == ctrl {
				return parts[2], true
			}
		}
	}
	return "", false
}

// jobParent is where job cgroups go in a hierarchy whose own path is own.
func jobParent(own, name, hostname string) string {
	if own == "/" {
		return "/" + name + "-" + cleanName(hostname)
	}
	return filepath.Join(own, name)
}

// cleanName maps s onto [A-Za-z0-9._-].
func cleanName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !validIDByte(c) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "host"
	}
	return string(b)
}

// onDisk maps a cgroup path onto the mount m, "" when m does not hold it.
func onDisk(m mountEnt, path string) string {
	rel, err := filepath.Rel(m.root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return ""
	}
	return filepath.Join(m.point, rel)
}

func detectCgroups(name string, env cgEnv) (*Cgroups, error) {
	if err := validID(name); err != nil {
		return nil, fmt.Errorf("cgroups: name: %w", err)
	}
	mounts := parseMountinfo(env.mountinfo)
	if env.v2 {
		own, ok := ownCgroup(env.selfCgroup, "")
		if !ok {
			return nil, errors.New("cgroups: no cgroup v2 entry (0::) in /proc/self/cgroup")
		}
		for _, m := range mounts {
			if m.fstype != "cgroup2" || m.point != env.v2Mount {
				continue
			}
			p := onDisk(m, jobParent(own, name, env.hostname))
			if p == "" {
				continue
			}
			return &Cgroups{version: 2, hiers: []cgHier{{parent: p}}}, nil
		}
		return nil, fmt.Errorf("cgroups: own cgroup %s is not visible under %s (is cgroup2 mounted there?)", own, env.v2Mount)
	}
	c := &Cgroups{version: 1}
	seen := map[string]bool{}
	for _, ctrl := range []string{"freezer", "cpu"} {
		own, ok := ownCgroup(env.selfCgroup, ctrl)
		if !ok {
			continue
		}
		for _, m := range mounts {
			if m.fstype != "cgroup" || !contains(m.super, ctrl) {
				continue
			}
			p := onDisk(m, jobParent(own, name, env.hostname))
			if p == "" {
				continue
			}
			if !seen[m.point] { // co-mounted controllers share one directory
				seen[m.point] = true
				c.hiers = append(c.hiers, cgHier{ctrl: ctrl, parent: p, cpu: contains(m.super, "cpu")})
			}
			if ctrl == "cpu" {
				c.weight = true
			}
			break
		}
	}
	if len(c.hiers) == 0 {
		return nil, errors.New("cgroups: neither the freezer nor the cpu cgroup v1 hierarchy is mounted " +
			"(mount them: mount -t cgroup -o freezer cgroup /sys/fs/cgroup/freezer)")
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// setup makes the parent directories and, on v2, tries to enable the cpu
// controller for the job cgroups.
func (c *Cgroups) setup() error {
	for _, h := range c.hiers {
		if err := os.MkdirAll(h.parent, 0o755); err != nil {
			return fmt.Errorf("cgroups: create %s: %w (run the daemon as root)", h.parent, err)
		}
	}
	if c.version == 2 {
		c.weight = enableCPU(c.hiers[0].parent)
	}
	return nil
}

// enableCPU enables the cpu controller in parent's parent and in parent,
// so that parent's children have cpu.weight. It reports whether that
// worked; it fails where the daemon's own cgroup holds processes.
func enableCPU(parent string) bool {
	for _, dir := range []string{filepath.Dir(parent), parent} {
		if hasWord(filepath.Join(dir, "cgroup.subtree_control"), "cpu") {
			continue
		}
		if !hasWord(filepath.Join(dir, "cgroup.controllers"), "cpu") {
			return false
		}
		if os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+cpu"), 0) != nil {
			return false
		}
	}
	return true
}

func hasWord(file, w string) bool {
	b, err := os.ReadFile(file)
	return err == nil && contains(strings.Fields(string(b)), w)
}

// Version returns the cgroup version in use, 1 or 2.
func (c *Cgroups) Version() int { return c.version }

// CanFreeze reports whether job cgroups can be frozen: on v1 when the
// freezer hierarchy is mounted, always on v2.
func (c *Cgroups) CanFreeze() bool { return c.version == 2 || c.hiers[0].ctrl == "freezer" }

// CanWeight reports whether job cgroups get a low CPU weight (see above:
// not on v2 where the daemon's own cgroup holds processes).
func (c *Cgroups) CanWeight() bool { return c.weight }

// Dirs returns the parent directories of the job cgroups, one per
// hierarchy.
func (c *Cgroups) Dirs() []string {
	var d []string
	for _, h := range c.hiers {
		d = append(d, h.parent)
	}
	return d
}

func validIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// validID checks a job id (or directory name) for use as a path element.
func validID(id string) error {
	if id == "" || id == "." || strings.Contains(id, "..") {
		return fmt.Errorf("invalid id %q: want letters, digits, '.', '_' or '-', not empty, no \"..\"", id)
	}
	for i := 0; i < len(id); i++ {
		if !validIDByte(id[i]) {
			return fmt.Errorf("invalid id %q: want letters, digits, '.', '_' or '-', not empty, no \"..\"", id)
		}
	}
	return nil
}

// JobCgroup is one job's cgroup, a directory in each hierarchy. Its
// methods may be called from several goroutines, but Freeze, Thaw and Kill
// should not race each other (the executor serialises them per job).
type JobCgroup struct {
	c    *Cgroups
	id   string
	dirs []string // parallel to c.hiers; immutable
}

// Create makes the cgroup of job id (like "h1.1234": letters, digits, '.',
// '_', '-', no ".."), with a low CPU weight where the cpu controller is
// available (v1 cpu.shares=2, v2 cpu.weight=1; skipped without error
// otherwise). A leftover directory of the same name is reused when no
// process is in it.
func (c *Cgroups) Create(id string) (*JobCgroup, error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("create job cgroup: %w", err)
	}
	j := &JobCgroup{c: c, id: id}
	for _, h := range c.hiers {
		j.dirs = append(j.dirs, filepath.Join(h.parent, id))
	}
	fail := func(err error) (*JobCgroup, error) {
		_ = j.Remove()
		return nil, fmt.Errorf("create job cgroup %s: %w", id, err)
	}
	for i, h := range c.hiers {
		d := j.dirs[i]
		if err := os.MkdirAll(h.parent, 0o755); err != nil {
			return fail(fmt.Errorf("%w (run the daemon as root)", err))
		}
		err := os.Mkdir(d, 0o755)
		if errors.Is(err, fs.ErrExist) {
			if pids := readPidFile(filepath.Join(d, "cgroup.procs")); len(pids) > 0 {
				return nil, fmt.Errorf("create job cgroup %s: %s exists and holds processes %v (does a job with this id still run?)", id, d, pids)
			}
			err = nil
		}
		if err != nil {
			return fail(fmt.Errorf("%w (run the daemon as root)", err))
		}
		switch {
		case h.cpu:
			if err := writeFile(filepath.Join(d, "cpu.shares"), jobCPUShares); err != nil {
				return fail(err)
			}
		case c.version == 2 && c.weight:
			if err := writeFile(filepath.Join(d, "cpu.weight"), jobCPUWeight); err != nil {
				return fail(err)
			}
		}
	}
	// A reused directory may have been left frozen.
	if c.CanFreeze() {
		if err := j.Thaw(); err != nil {
			return fail(err)
		}
	}
	return j, nil
}

// ID returns the job id the cgroup was made for.
func (j *JobCgroup) ID() string { return j.id }

// Dirs returns the cgroup's directories, one per hierarchy.
func (j *JobCgroup) Dirs() []string { return append([]string(nil), j.dirs...) }

// Procs returns the cgroup.procs files a process writes its pid to, to
// join the job's cgroup: one per v1 hierarchy, one on v2.
func (j *JobCgroup) Procs() []string {
	p := make([]string, len(j.dirs))
	for i, d := range j.dirs {
		p[i] = filepath.Join(d, "cgroup.procs")
	}
	return p
}

// freezeDir returns the directory that freezes, "" when none can.
func (j *JobCgroup) freezeDir() string {
	if !j.c.CanFreeze() {
		return ""
	}
	return j.dirs[0]
}

// Freeze freezes every process of the job and returns once all are frozen
// (v1: freezer.state reads FROZEN; v2: cgroup.events says frozen 1), or
// after 2 s with an error. It makes no network call.
func (j *JobCgroup) Freeze() error {
	if err := j.setFrozen(true, freezeTimeout); err != nil {
		return fmt.Errorf("freeze job %s: %w", j.id, err)
	}
	return nil
}

// Thaw lets the job's processes run again and returns once they do.
func (j *JobCgroup) Thaw() error {
	if err := j.setFrozen(false, freezeTimeout); err != nil {
		return fmt.Errorf("thaw job %s: %w", j.id, err)
	}
	return nil
}

func (j *JobCgroup) setFrozen(frozen bool, timeout time.Duration) error {
	d := j.freezeDir()
	if d == "" {
		return errors.New("no cgroup freezer (is the freezer controller mounted at /sys/fs/cgroup/freezer?)")
	}
	var ctl, val, state string
	var done func() (bool, error)
	if j.c.version == 2 {
		ctl, val = filepath.Join(d, "cgroup.freeze"), "0"
		if frozen {
			val = "1"
		}
		ev := filepath.Join(d, "cgroup.events")
		done = func() (bool, error) {
			b, err := os.ReadFile(ev)
			if err != nil {
				return false, err
			}
			state = strings.TrimSpace(string(b))
			return bytes.Contains(b, []byte("frozen "+val+"\n")), nil
		}
	} else {
		ctl, val = filepath.Join(d, "freezer.state"), "THAWED"
		if frozen {
			val = "FROZEN"
		}
		done = func() (bool, error) {
			b, err := os.ReadFile(ctl)
			if err != nil {
				return false, err
			}
			state = strings.TrimSpace(string(b))
			return state == val, nil
		}
	}
	deadline := time.Now().Add(timeout)
	sleep := 100 * time.Microsecond
	for {
		// v1 retries a stuck FREEZING when FROZEN is written again.
		if err := writeFile(ctl, val); err != nil {
			return err
		}
		ok, err := done()
		if err != nil {
			return fmt.Errorf("read state: %w", err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still %q after %v, not %s (a process stuck in the kernel, on I/O or on a FUSE mount?)",
				d, state, timeout, val)
		}
		time.Sleep(sleep)
		if sleep < 10*time.Millisecond {
			sleep *= 2
		}
	}
}

// Pids lists the processes in the job's cgroup and in cgroups nested in
// it (as seen from this PID namespace).
func (j *JobCgroup) Pids() ([]int, error) {
	seen := map[int]bool{}
	var pids []int
	for _, d := range j.tree() {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) && d != j.dirs[0] {
			continue // a nested one removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list job %s: %w", j.id, err)
		}
		for _, p := range parsePids(b) {
			if !seen[p] {
				seen[p] = true
				pids = append(pids, p)
			}
		}
	}
	return pids, nil
}

// tree lists the job's directories in every hierarchy with the cgroups
// nested in them (a root job may make some), parents first.
func (j *JobCgroup) tree() []string {
	var all []string
	for _, d := range j.dirs {
		all = append(all, d)
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() && p != d {
				all = append(all, p)
			}
			return nil
		})
	}
	return all
}

// thawNested thaws cgroups nested in the job's that were frozen by
// themselves: thawing the job's own does not thaw those on v1.
func (j *JobCgroup) thawNested() {
	for _, d := range j.tree() {
		if d == j.dirs[0] {
			continue
		}
		if j.c.version == 2 {
			_ = os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0)
		} else if j.c.hiers[0].ctrl == "freezer" && strings.HasPrefix(d, j.dirs[0]+"/") {
			_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0)
		}
	}
}

// Kill sends SIGKILL to every process in the job's cgroup, also to those
// forked meanwhile (v2 cgroup.kill where the kernel has it; else freeze,
// kill all, thaw, repeated), and waits until the cgroup is empty, at most
// 5 s. A process that exited but was not yet waited for does not count.
func (j *JobCgroup) Kill() error {
	if err := j.kill(cgKillTimeout); err != nil {
		return fmt.Errorf("kill job %s: %w", j.id, err)
	}
	return nil
}

func (j *JobCgroup) kill(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if j.c.version == 2 {
		if err := writeFile(filepath.Join(j.dirs[0], "cgroup.kill"), "1"); err == nil {
			return j.waitEmpty(deadline)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	canFreeze := j.c.CanFreeze()
	for {
		frozen := canFreeze && j.setFrozen(true, 200*time.Millisecond) == nil
		pids, err := j.Pids()
		if err != nil {
			return err
		}
		for _, p := range pids {
			if err := syscall.Kill(p, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
				return fmt.Errorf("kill %d: %w", p, err)
			}
		}
		if canFreeze {
			// v1: a frozen process dies only once thawed.
			if err := j.setFrozen(false, freezeTimeout); err != nil {
				return err
			}
			j.thawNested()
		}
		if len(pids) == 0 || frozen {
			// Frozen, nothing could fork between listing and killing.
			return j.waitEmpty(deadline)
		}
		if time.Now().After(deadline) {
			return j.waitEmpty(deadline)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitEmpty waits until no process is in the cgroup.
func (j *JobCgroup) waitEmpty(deadline time.Time) error {
	sleep := 100 * time.Microsecond
	for {
		pids, err := j.Pids()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v are still in %s after SIGKILL (stuck in the kernel?)", pids, j.dirs[0])
		}
		time.Sleep(sleep)
		if sleep < 10*time.Millisecond {
			sleep *= 2
		}
	}
}

// Remove removes the job's cgroup directories, and the cgroups nested in
// them first (call it after Kill; the kernel refuses while processes are
// in them). It retries for up to 1 s while exiting processes are still
// counted; a directory already gone is no error.
func (j *JobCgroup) Remove() error {
	var errs []error
	tree := j.tree()
	deadline := time.Now().Add(rmdirTimeout)
	for i := len(tree) - 1; i >= 0; i-- {
		if err := rmdirWait(tree[i], deadline); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove job cgroup %s: %w (kill the job first)", j.id, err)
	}
	return nil
}

func rmdirWait(d string, deadline time.Time) error {
	for {
		err := syscall.Rmdir(d)
		if err == nil || err == syscall.ENOENT {
			return nil
		}
		if err != syscall.EBUSY || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Cleanup kills and removes every job cgroup under the parent directories,
// nested ones included: the jobs an earlier daemon left when it died. Call
// it at start, before Create.
func (c *Cgroups) Cleanup() error {
	var errs []error
	names := map[string]bool{}
	for _, h := range c.hiers {
		ents, err := os.ReadDir(h.parent)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && validID(e.Name()) == nil {
				names[e.Name()] = true
			}
		}
	}
	for id := range names {
		j := &JobCgroup{c: c, id: id}
		for _, h := range c.hiers {
			j.dirs = append(j.dirs, filepath.Join(h.parent, id))
		}
		// A job dir may be missing in one hierarchy (a daemon killed
		// while making it): make it, so that every step finds it.
		for _, d := range j.dirs {
			_ = os.Mkdir(d, 0o755)
		}
		if err := j.Kill(); err != nil {
			errs = append(errs, err)
		} else if err := j.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up job cgroups: %w", err)
	}
	return nil
}

func writeFile(path, val string) error {
	if err := os.WriteFile(path, []byte(val), 0); err != nil {
		return fmt.Errorf("write %s to %s: %w", val, path, err)
	}
	return nil
}

func readPidFile(path string) []int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return parsePids(b)
}

func parsePids(b []byte) []int {
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil && p > 0 {
			pids = append(pids, p)
		}
	}
	return pids
}
