package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const (
	cgroupRoot   = "/sys/fs/cgroup"
	cgroupName   = "sprite-lab"
	cfsPeriodUs  = 100000
	minQuotaUs   = 1000
	cgroupV1Path = cgroupRoot + "/cpu/" + cgroupName
	cgroupV2Path = cgroupRoot + "/" + cgroupName
)

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

// quotaUs turns a CPU count into a CFS quota per 100 ms period.
func quotaUs(cpus float64) (int64, error) {
	q := int64(math.Round(cpus * cfsPeriodUs))
	if q < minQuotaUs {
		return 0, fmt.Errorf("--cpus %g is below the kernel's minimum of 0.01", cpus)
	}
	return q, nil
}

// setupCgroupParent creates the lab's parent cgroup; on v2, for a quota, it
// enables the cpu controller for the children on the way down.
func setupCgroupParent(cpus float64) (string, error) {
	p := labCgroup()
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", p, err)
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

// createHostCgroup makes the host's cgroup and sets its quota (cpus > 0).
func createHostCgroup(parent, name string, cpus float64) (string, error) {
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
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

// joinCgroup moves process pid (all its threads) into cgroup dir.
func joinCgroup(dir string, pid int) error {
	if dir == "" {
		return nil
	}
	return writeCg(dir, "cgroup.procs", strconv.Itoa(pid))
}

// labCgroupDirs lists existing lab cgroups, v1 and v2, children first.
func labCgroupDirs() []string {
	var dirs []string
	for _, p := range []string{cgroupV1Path, cgroupV2Path} {
		ents, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(p, e.Name()))
			}
		}
		dirs = append(dirs, p)
	}
	return dirs
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
