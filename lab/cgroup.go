package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	cgroupRoot = "/sys/fs/cgroup"
	cgroupName = "sprite-lab"
	// cfsPeriodUs is the CFS bandwidth period of a host's quota: 10 ms,
	// not the kernel's 100 ms. A host at a quarter of a CPU then runs 2.5
	// ms in every 10 rather than 25 in every 100, so a host that has
	// spent its share is stopped for at most 7.5 ms, not 75: closer to a
	// slower CPU, which never stops, and the difference matters to
	// request-and-answer work (a file server, distcc's preprocessing)
	// far more than to a compile.
	cfsPeriodUs = 10000
	// minQuotaUs is the kernel's smallest quota (1 ms).
	minQuotaUs   = 1000
	cgroupV1Path = cgroupRoot + "/cpu/" + cgroupName
	// cgroupV1Freezer is the lab's parent in the v1 freezer hierarchy:
	// each host is in freezer:/sprite-lab/hI too, so that its daemon's
	// job cgroups (migrate.Cgroups) nest under its host.
	cgroupV1Freezer = cgroupRoot + "/freezer/" + cgroupName
	cgroupV2Path    = cgroupRoot + "/" + cgroupName
)

// labCgroupRoots are the lab's parent cgroups in every hierarchy it uses.
var labCgroupRoots = []string{cgroupV1Path, cgroupV1Freezer, cgroupV2Path}

// freezerV1 reports whether the v1 freezer hierarchy is mounted.
func freezerV1() bool {
	_, err := os.Stat(cgroupRoot + "/freezer/cgroup.procs")
	return err == nil
}

// freezerPeer returns the freezer cgroup matching a v1 cpu cgroup dir, ""
// on v2, without a freezer hierarchy or for a dir outside the lab's.
func freezerPeer(dir string) string {
	rest, ok := strings.CutPrefix(dir, cgroupV1Path)
	if !ok || cgroupV2() || !freezerV1() {
		return ""
	}
	return cgroupV1Freezer + rest
}

// cgroupV2 reports whether the machine runs the unified hierarchy (cgroup
// v2) at /sys/fs/cgroup. A v1 machine may have an empty cgroup2 elsewhere
// (/sys/fs/cgroup/unified); that one is ignored.
func cgroupV2() bool {
	_, err := os.Stat(cgroupRoot + "/cgroup.controllers")
	return err == nil
}

// labCgroup is the parent cgroup of all hosts on this machine.
func labCgroup() string {
	if cgroupV2() {
		return cgroupV2Path
	}
	return cgroupV1Path
}

// quotaUs turns a CPU count into a CFS quota per period (cfsPeriodUs).
func quotaUs(cpus float64) (int64, error) {
	q := int64(math.Round(cpus * cfsPeriodUs))
	if q < minQuotaUs {
		return 0, fmt.Errorf("--cpus %g is below the smallest quota the lab can set, %g (the kernel's 1 ms in the lab's %d ms period): give a larger --cpus", cpus, float64(minQuotaUs)/cfsPeriodUs, cfsPeriodUs/1000)
	}
	return q, nil
}

// setupCgroupParent creates the lab's parent cgroup (on v1 in the cpu and,
// where mounted, the freezer hierarchy); on v2, for a quota, it enables the
// cpu controller for the children on the way down.
func setupCgroupParent(cpus float64) (string, error) {
	p := labCgroup()
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", p, err)
	}
	if f := freezerPeer(p); f != "" {
		if err := os.MkdirAll(f, 0o755); err != nil {
			return "", fmt.Errorf("create cgroup %s: %w", f, err)
		}
	}
	if !cgroupV2() || cpus <= 0 {
		return p, nil
	}
	for _, dir := range []string{cgroupRoot, p} {
		f := filepath.Join(dir, "cgroup.subtree_control")
		if err := os.WriteFile(f, []byte("+cpu"), 0); err != nil {
			return "", fmt.Errorf("enable the cpu controller in %s: %w (is cpu in %s/cgroup.controllers?)", f, err, dir)
		}
	}
	return p, nil
}

// createHostCgroup makes the host's cgroup (v1: cpu and freezer) and sets
// its quota (cpus > 0). It returns the cpu (v1) or unified (v2) one.
func createHostCgroup(parent, name string, cpus float64) (string, error) {
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	if f := freezerPeer(dir); f != "" {
		if err := os.MkdirAll(f, 0o755); err != nil {
			return "", fmt.Errorf("create cgroup %s: %w", f, err)
		}
	}
	if cpus <= 0 {
		return dir, nil
	}
	q, err := quotaUs(cpus)
	if err != nil {
		return "", err
	}
	if cgroupV2() {
		return dir, writeCg(dir, "cpu.max", fmt.Sprintf("%d %d", q, cfsPeriodUs))
	}
	if err := writeCg(dir, "cpu.cfs_period_us", strconv.Itoa(cfsPeriodUs)); err != nil {
		return "", err
	}
	return dir, writeCg(dir, "cpu.cfs_quota_us", strconv.FormatInt(q, 10))
}

func writeCg(dir, file, val string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
		return fmt.Errorf("set %s/%s to %s: %w", dir, file, val, err)
	}
	return nil
}

// joinCgroup moves process pid (all its threads) into cgroup dir and, for
// a v1 cpu cgroup of the lab, into its peer in the freezer hierarchy (where
// that exists: a lab made before hosts had one has none).
func joinCgroup(dir string, pid int) error {
	if dir == "" {
		return nil
	}
	if err := writeCg(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
		return err
	}
	if f := freezerPeer(dir); f != "" {
		if _, err := os.Stat(f); err == nil {
			return writeCg(f, "cgroup.procs", strconv.Itoa(pid))
		}
	}
	return nil
}

// labCgroupDirs lists existing lab cgroups, v1 (cpu, freezer) and v2,
// nested ones included (the job cgroups of the hosts' daemons), children
// before their parents.
func labCgroupDirs() []string {
	var dirs []string
	for _, p := range labCgroupRoots {
		var tree []string
		_ = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil // gone meanwhile, or p does not exist
			}
			if e.IsDir() {
				tree = append(tree, path)
			}
			return nil
		})
		for i := len(tree) - 1; i >= 0; i-- { // walk order is parents first
			dirs = append(dirs, tree[i])
		}
	}
	return dirs
}

// thawCgroups thaws every lab cgroup (v1 freezer.state, v2 cgroup.freeze):
// a process frozen by a host's daemon does not die of SIGKILL on v1 until
// it is thawed. Best effort: a cgroup may be gone meanwhile.
func thawCgroups() {
	for _, d := range labCgroupDirs() {
		if strings.HasPrefix(d, cgroupV1Freezer) {
			_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0)
		} else if strings.HasPrefix(d, cgroupV2Path) && d != cgroupV2Path {
			_ = os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0)
		}
	}
}

// cgroupPids lists the processes in the lab's cgroups.
func cgroupPids() []int {
	var pids []int
	for _, d := range labCgroupDirs() {
		pids = append(pids, readPids(filepath.Join(d, "cgroup.procs"))...)
	}
	return pids
}

// removeCgroups removes the lab's cgroups, retrying while the kernel still
// counts exiting processes in them.
func removeCgroups(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, d := range labCgroupDirs() {
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w (processes %v still in it)", d, err,
					readPids(filepath.Join(d, "cgroup.procs")))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}
