package idle

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
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
// process with one thread costs one read; only multi-threaded ones have
// their task directory read, and only runnable ones are checked for being
// foreign.
func (m *loadMeter) runnable() int {
	d, err := os.Open(m.proc)
	if err != nil {
		return 0
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	n := 0
	buf := make([]byte, 1024)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == m.self {
			continue
		}
		dir := filepath.Join(m.proc, name)
		state, ppid, threads, ok := readStat(filepath.Join(dir, "stat"), buf)
		if !ok || ppid == m.self {
			continue
		}
		c := 0
		switch {
		case threads > 1:
			c = runnableTasks(filepath.Join(dir, "task"), buf)
		case state == 'R':
			c = 1
		}
		// Only a process that adds load is asked whether it is foreign.
		if c > 0 && (m.foreign == nil || !m.foreign(pid)) {
			n += c
		}
	}
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
		if state, _, _, ok := readStat(filepath.Join(dir, t, "stat"), buf); ok && state == 'R' {
			n++
		}
	}
	return n
}

// readStat returns the state, parent and thread count from a /proc stat
// file.
func readStat(path string, buf []byte) (state byte, ppid, threads int, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, false
	}
	n, _ := f.Read(buf)
	f.Close()
	return parseStat(buf[:n])
}

// parseStat reads fields 3 (state), 4 (ppid) and 20 (num_threads) of a
// stat line; the command name (field 2) may hold spaces and parentheses,
// so fields are counted from its last ')'.
func parseStat(b []byte) (state byte, ppid, threads int, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 18 || len(f[0]) != 1 {
		return 0, 0, 0, false
	}
	pp, err1 := strconv.Atoi(string(f[1]))
	t, err2 := strconv.Atoi(string(f[17]))
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	return f[0][0], pp, t, true
}
