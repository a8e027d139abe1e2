package daemon

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// DetectCPUs returns the CPUs this host may use: the processor count,
// lowered by any CPU quota on this process's cgroup or its ancestors
// (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us).
func DetectCPUs() float64 {
	n := float64(runtime.NumCPU())
	if q := cgroupQuota(); q > 0 && q < n {
		return math.Round(q*100) / 100
	}
	return n
}

func cgroupQuota() float64 {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	defer f.Close()
	best := 0.0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var q float64
		switch {
		case parts[0] == "0" && parts[1] == "":
			q = walkQuota("/sys/fs/cgroup", parts[2], readV2)
		case hasController(parts[1], "cpu"):
			q = walkQuota("/sys/fs/cgroup/cpu", parts[2], readV1)
		}
		if q > 0 && (best == 0 || q < best) {
			best = q
		}
	}
	return best
}

func hasController(list, c string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == c {
			return true
		}
	}
	return false
}

// walkQuota returns the smallest quota from dir up to the hierarchy root.
func walkQuota(root, path string, read func(dir string) float64) float64 {
	best := 0.0
	for p := filepath.Clean("/" + path); ; p = filepath.Dir(p) {
		if q := read(filepath.Join(root, p)); q > 0 && (best == 0 || q < best) {
			best = q
		}
		if p == "/" {
			return best
		}
	}
}

func readV2(dir string) float64 {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	return ratio(f[0], f[1])
}

func readV1(dir string) float64 {
	q, err1 := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0
	}
	return ratio(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func ratio(a, b string) float64 {
	q, err1 := strconv.ParseFloat(a, 64)
	p, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0
	}
	return q / p
}
