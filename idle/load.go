package idle

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Load sources.
const (
	LoadProc = "proc"    // this host's runnable threads, decayed (default)
	LoadAvg  = "loadavg" // the kernel's 1-minute /proc/loadavg
)

// loadMeter measures the host's non-foreign load.
type loadMeter struct {
	source  string
	proc    string // /proc
	self    int    // the daemon's pid: its own threads are not load
	tau     time.Duration
	foreign func(pid int) bool

	avg  float64
	last time.Time
	// quiet holds, for each multi-threaded process that had no runnable
	// thread at the last count, its CPU time then (utime+stime, in
	// ticks). Owned by the goroutine that counts (prime, then the
	// detector's sampler): one at a time.
	quiet map[int]uint64
}

// sample folds one measurement into the average and returns it.
func (m *loadMeter) sample(now time.Time) (float64, error) {
	if m.source == LoadAvg {
		v, err := readLoadAvg(filepath.Join(m.proc, "loadavg"))
		m.avg, m.last = v, now
		return v, err
	}
	n := float64(m.runnable())
	if m.last.IsZero() {
		m.avg = n
	} else {
		a := 1 - math.Exp(-float64(now.Sub(m.last))/float64(m.tau))
		m.avg += a * (n - m.avg)
	}
	m.last = now
	return m.avg, nil
}

// prime starts the average from several quick samples rather than one, so
// a restarted daemon on a busy host starts busy and an idle one idle.
func (m *loadMeter) prime() {
	if m.source == LoadAvg {
		m.sample(time.Now())
		return
	}
	sum := 0
	const k = 5
	for i := range k {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		sum += m.runnable()
	}
	m.avg, m.last = float64(sum)/k, time.Now()
}

func readLoadAvg(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read load: %w", err)
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, fmt.Errorf("read load: %s is empty", path)
	}
	return strconv.ParseFloat(string(f[0]), 64)
}

// runnable counts the runnable threads of this host's processes, leaving
// out the daemon, its direct children and foreign work. The daemon's
// children are its own work: a job's `sprite _jobinit` before it joins the
// job's cgroup, loginctl asked about sessions, fusermount; counted, they
// turned a 0.25-CPU lab host busy under a stream of foreign jobs. A
// process with one thread costs one read; only runnable ones are checked
// for being foreign.
//
// A multi-threaded process needs its task directory read, one file a
// thread, which under a build is most of the count's cost (pmake's job
// shells are Go programs that wait on their remote jobs; each count on a
// 0.25-CPU lab host read hundreds of files). So a process that had no
// runnable thread at the last count and has used no CPU since (its
// utime+stime, summed over its threads, has not moved a tick) counts 0
// unread: a thread that became runnable less than a tick's CPU ago is
// missed once and counted at the next sample, when the tick has moved.
func (m *loadMeter) runnable() int {
	d, err := os.Open(m.proc)
	if err != nil {
		return 0
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	n := 0
	buf := make([]byte, 1024)
	quiet := make(map[int]uint64)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == m.self {
			continue
		}
		dir := filepath.Join(m.proc, name)
		st, ok := readStat(filepath.Join(dir, "stat"), buf)
		if !ok || st.ppid == m.self {
			continue
		}
		c := 0
		switch {
		case st.threads > 1:
			if cpu, seen := m.quiet[pid]; seen && cpu == st.cpu && st.state != 'R' {
				quiet[pid] = cpu
				continue
			}
			if c = runnableTasks(filepath.Join(dir, "task"), buf); c == 0 {
				quiet[pid] = st.cpu
			}
		case st.state == 'R':
			c = 1
		}
		// Only a process that adds load is asked whether it is foreign.
		if c > 0 && (m.foreign == nil || !m.foreign(pid)) {
			n += c
		}
	}
	m.quiet = quiet
	return n
}

func runnableTasks(dir string, buf []byte) int {
	d, err := os.Open(dir)
	if err != nil {
		return 0
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	n := 0
	for _, t := range names {
		if st, ok := readStat(filepath.Join(dir, t, "stat"), buf); ok && st.state == 'R' {
			n++
		}
	}
	return n
}

// procStat is what the load count needs of a /proc stat line.
type procStat struct {
	state   byte
	ppid    int
	threads int
	cpu     uint64 // utime+stime in clock ticks, all threads together
}

// readStat reads and parses a /proc stat file. It uses the system calls
// directly: os.Open's poller registration (refused for /proc files) and
// finalizer were half the cost of a count.
func readStat(path string, buf []byte) (procStat, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return procStat{}, false
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil {
		return procStat{}, false
	}
	return parseStat(buf[:n])
}

// parseStat reads fields 3 (state), 4 (ppid), 14 and 15 (utime, stime)
// and 20 (num_threads) of a stat line; the command name (field 2) may hold
// spaces and parentheses, so fields are counted from its last ')'.
func parseStat(b []byte) (procStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 18 || len(f[0]) != 1 {
		return procStat{}, false
	}
	pp, err1 := strconv.Atoi(string(f[1]))
	ut, err2 := strconv.ParseUint(string(f[11]), 10, 64)
	stime, err3 := strconv.ParseUint(string(f[12]), 10, 64)
	t, err4 := strconv.Atoi(string(f[17]))
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], ppid: pp, threads: t, cpu: ut + stime}, true
}
