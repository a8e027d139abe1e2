package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	spritelab "sprite/lab"
)

// IdleRow is one object of `sprite hosts --json` with the idle fields.
type IdleRow struct {
	Name        string  `json:"name"`
	State       string  `json:"state"`
	Activity    string  `json:"activity"`
	Idle        bool    `json:"idle"`
	IdleFor     float64 `json:"idle_for_s"`
	Load        float64 `json:"load"`
	ForeignJobs int     `json:"foreign_jobs"`
	GrantedTo   string  `json:"granted_to"`
}

// IdleHosts returns `sprite hosts --json` as seen from host, by name. It
// asks host's daemon from the machine, through the host init's root, not
// by `lab exec`: a probe run inside host every half second would itself be
// load there (under a busy machine enough to turn a 0.5-CPU host busy).
func (h *Harness) IdleHosts(host string) (map[string]IdleRow, error) {
	l, err := spritelab.Load()
	if err != nil {
		return nil, err
	}
	pid := 0
	for _, x := range l.Hosts {
		if x.Name == host {
			pid = x.InitPID
		}
	}
	if pid == 0 {
		return nil, fmt.Errorf("no host %s in the lab", host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := h.Run(ctx, "hosts", "--json", "--socket", fmt.Sprintf("/proc/%d/root/run/sprite/sprite.sock", pid))
	if r.Code != 0 {
		return nil, fmt.Errorf("sprite hosts on %s: exit %d: %s", host, r.Code, r.Stderr)
	}
	var rows []IdleRow
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
		return nil, fmt.Errorf("sprite hosts --json on %s: %w\n%s", host, err, r.Stdout)
	}
	m := map[string]IdleRow{}
	for _, row := range rows {
		m[row.Name] = row
	}
	return m, nil
}

// WaitHosts polls host's view until ok holds, or timeout; it returns the
// last view.
func (h *Harness) WaitHosts(host string, timeout time.Duration, ok func(map[string]IdleRow) bool) (map[string]IdleRow, error) {
	start := time.Now()
	var last map[string]IdleRow
	for time.Since(start) < timeout {
		if hs, err := h.IdleHosts(host); err == nil {
			last = hs
			if ok(hs) {
				return hs, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last, fmt.Errorf("%s's view did not get there within %v; last: %+v", host, timeout, last)
}

// Line is one line of a Stream's output and when the test read it.
type Line struct {
	At   time.Time
	Text string
}

// Stream is a long-running command in a lab host whose output lines are
// read as they come.
type Stream struct {
	h     *Harness
	host  string
	Pid   int // inside the host
	Lines chan Line
	cmd   *exec.Cmd
	done  sync.WaitGroup
}

// Start runs argv in host (as root) and reads its stdout line by line.
func (h *Harness) Start(host string, argv ...string) (*Stream, error) {
	script := `echo $$; exec "$@"`
	args := append([]string{"lab", "exec", host, "--", "sh", "-c", script, "sh"}, argv...)
	cmd := exec.CommandContext(context.Background(), h.Bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("start %v on %s: no pid line", argv, host)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("start %v on %s: pid line %q", argv, host, sc.Text())
	}
	s := &Stream{h: h, host: host, Pid: pid, Lines: make(chan Line, 4096), cmd: cmd}
	s.done.Go(func() {
		defer close(s.Lines)
		for sc.Scan() {
			s.Lines <- Line{At: time.Now(), Text: sc.Text()}
		}
	})
	return s, nil
}

// Kill sends sig to the command inside its host and waits for it to end.
func (s *Stream) Kill(sig string) {
	s.h.Exec(s.host, "kill", "-"+sig, strconv.Itoa(s.Pid))
	s.done.Wait()
	s.cmd.Wait()
}

// Next returns the next line that satisfies ok, or an error after timeout.
func (s *Stream) Next(timeout time.Duration, ok func(Line) bool) (Line, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, open := <-s.Lines:
			if !open {
				return Line{}, fmt.Errorf("the command on %s ended", s.host)
			}
			if ok(l) {
				return l, nil
			}
		case <-deadline:
			return Line{}, fmt.Errorf("no matching line within %v", timeout)
		}
	}
}

// rowsOf decodes a `sprite hosts --watch --json` line.
func rowsOf(l Line) []IdleRow {
	var rows []IdleRow
	json.Unmarshal([]byte(l.Text), &rows)
	return rows
}

// hasRow reports whether a watch line says host's activity is act.
func hasRow(l Line, host, act string) bool {
	for _, r := range rowsOf(l) {
		if r.Name == host && r.Activity == act {
			return true
		}
	}
	return false
}

// grantLine is a `sprite grant --json` line.
type grantLine struct {
	ID    string `json:"id"`
	Hosts []struct {
		Host string `json:"host"`
	} `json:"hosts"`
	Event string `json:"event"`
}

func grantsOf(l Line) grantLine {
	var g grantLine
	json.Unmarshal([]byte(l.Text), &g)
	return g
}

// grantedTo counts the hosts h1 shows granted to each requester.
func grantedTo(hs map[string]IdleRow) map[string]int {
	m := map[string]int{}
	for _, r := range hs {
		if r.GrantedTo != "" {
			m[r.GrantedTo]++
		}
	}
	return m
}
