package pmake

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Record is one line of a run's events file: a job shell appends a start
// record once its job runs and an end record once it has ended.
type Record struct {
	Kind   string `json:"k"`              // "start" or "end"
	Job    string `json:"job"`            // the job shell's pid and start time
	Host   string `json:"host"`           // where the job runs; Home for this host
	Target string `json:"target"`         // make's $@
	Line   string `json:"line,omitempty"` // the recipe line (start only), shortened
	At     int64  `json:"at"`             // unix ns
	Ms     int64  `json:"ms,omitempty"`   // end: wall time of the job
	Status string `json:"status,omitempty"`
	Why    string `json:"why,omitempty"` // why the job ran at home
}

// Home is the host name records give a job that ran on this host.
const Home = "home"

// appendRecord writes r as one line with one write(2) on an O_APPEND file,
// so that the lines of concurrent job shells never interleave.
func appendRecord(path string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// tail reads the records appended since the last call.
type tail struct {
	path string
	off  int64
	part []byte
}

func (t *tail) read() []Record {
	f, err := os.Open(t.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	t.off += int64(len(b))
	b = append(t.part, b...)
	t.part = nil
	var out []Record
	for len(b) > 0 {
		i := strings.IndexByte(string(b), '\n')
		if i < 0 {
			t.part = append([]byte(nil), b...)
			break
		}
		var r Record
		if json.Unmarshal(b[:i], &r) == nil {
			out = append(out, r)
		}
		b = b[i+1:]
	}
	return out
}

// readRecords reads a whole events file.
func readRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}

// Job is one finished (or unfinished) job of a run, for --stats.
type Job struct {
	Target, Host, Line, Status, Why string
	Start                           time.Time
	Took                            time.Duration
	Done                            bool
}

// Jobs pairs start and end records, in start order.
func Jobs(recs []Record) []Job {
	by := map[string]*Job{}
	var order []string
	for _, r := range recs {
		j := by[r.Job]
		if j == nil {
			j = &Job{}
			by[r.Job] = j
			order = append(order, r.Job)
		}
		switch r.Kind {
		case "start":
			j.Target, j.Host, j.Line, j.Why = r.Target, r.Host, r.Line, r.Why
			j.Start = time.Unix(0, r.At)
		case "end":
			j.Done, j.Status = true, r.Status
			j.Took = time.Duration(r.Ms) * time.Millisecond
			if r.Host != "" {
				j.Host = r.Host // a job rerun elsewhere ends where it ran last
			}
			if j.Target == "" {
				j.Target = r.Target
			}
		}
	}
	out := make([]Job, 0, len(order))
	for _, k := range order {
		out = append(out, *by[k])
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Start.Before(out[b].Start) })
	return out
}

// WriteStats prints --stats: one line per job (target, host, when it
// started after start, its time, how it ended, the command), then a line
// per host.
func WriteStats(w io.Writer, jobs []Job, start time.Time, wall time.Duration) {
	type agg struct {
		n    int
		busy time.Duration
	}
	hosts := map[string]*agg{}
	var names []string
	fmt.Fprintf(w, "pmake: --stats: %d jobs in %.1fs\n", len(jobs), wall.Seconds())
	fmt.Fprintf(w, "%-24s %-8s %7s %8s  %-8s %-28s %s\n", "TARGET", "HOST", "AT(s)", "SECONDS", "STATUS", "WHY HOME", "COMMAND")
	for _, j := range jobs {
		st, took := j.Status, fmt.Sprintf("%.2f", j.Took.Seconds())
		if !j.Done {
			st, took = "unended", "-"
		}
		why := j.Why
		if j.Host != Home || why == "" {
			why = "-"
		}
		at := fmt.Sprintf("%.2f", max(0, j.Start.Sub(start).Seconds()))
		fmt.Fprintf(w, "%-24s %-8s %7s %8s  %-8s %-28s %s\n", short(j.Target, 24), j.Host, at, took, st, short(why, 28), short(j.Line, 60))
		a := hosts[j.Host]
		if a == nil {
			a = &agg{}
			hosts[j.Host] = a
			names = append(names, j.Host)
		}
		a.n++
		a.busy += j.Took
	}
	sort.Strings(names)
	fmt.Fprintf(w, "%-8s %6s %10s\n", "HOST", "JOBS", "BUSY(s)")
	for _, h := range names {
		fmt.Fprintf(w, "%-8s %6d %10.2f\n", h, hosts[h].n, hosts[h].busy.Seconds())
	}
}

// short cuts s to n characters on one line.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
