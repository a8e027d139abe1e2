package idle

import (
	"os"
	"strconv"
	"strings"
)

// JobsCgroup names the cgroup directory under which the executor (package
// migrate) runs foreign jobs, one cgroup per job: a process in it is
// foreign work, not the owner's load.
const JobsCgroup = "sprite-jobs"

// InJobsCgroup reports whether pid runs in a foreign job's cgroup, from
// /proc/<pid>/cgroup (the Config.ForeignFilter of the daemon's detector).
func InJobsCgroup(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	return strings.Contains(string(b), "/"+JobsCgroup)
}
