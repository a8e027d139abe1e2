package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	firstAnswerTimeout = 15 * time.Second
	allUpTimeout       = 30 * time.Second
	hostsPollEvery     = 50 * time.Millisecond
	commandTimeout     = 10 * time.Second
)

// HostInfo is one entry of `sprite hosts --json`.
type HostInfo struct {
	Name  string  `json:"name"`
	State string  `json:"state"`
	CPUs  float64 `json:"cpus"`
	Arch  string  `json:"arch"`
	Addr  string  `json:"addr"`
}

// run runs argv as root in host and returns its stdout; the error carries
// stderr.
func (l *Lab) run(ctx context.Context, host string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := l.CommandContext(ctx, host, "", argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s on %s: %w: %s", strings.Join(argv, " "), host, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// ClusterHosts runs `sprite hosts --json` on host and parses its answer.
func (l *Lab) ClusterHosts(ctx context.Context, host string) ([]HostInfo, error) {
	out, err := l.run(ctx, host, "sprite", "hosts", "--json")
	if err != nil {
		return nil, err
	}
	var hs []HostInfo
	if err := json.Unmarshal(out, &hs); err != nil {
		return nil, fmt.Errorf("sprite hosts --json on %s: %w", host, err)
	}
	return hs, nil
}

// startCluster makes h1 the first member, starts its daemon, and has every
// other host join it and start its daemon; it returns when h1 sees all up
// and every daemon's socket answers.
func (l *Lab) startCluster(ctx context.Context) error {
	first := &l.Hosts[0]
	idle := time.Duration(l.IdleAfter).String()
	if _, err := l.run(ctx, first.Name, "sprite", "init", "--name", first.Name, "--addr", first.DaemonAddr(),
		"--idle-after", idle, "--export", "/home/"+first.Name+"=/home"); err != nil {
		return fmt.Errorf("initialise the cluster: %w", err)
	}
	if err := l.startAndAnswer(ctx, first); err != nil {
		return err
	}
	out, err := l.run(ctx, first.Name, "sprite", "token")
	if err != nil {
		return fmt.Errorf("get a join token: %w", err)
	}
	if err := l.joinAll(ctx, strings.TrimSpace(string(out)), idle); err != nil {
		return err
	}
	if err := l.waitAllUp(ctx); err != nil {
		return err
	}
	for i := range l.Hosts { // and every daemon answers at home
		if err := waitSocket(ctx, &l.Hosts[i]); err != nil {
			return err
		}
	}
	return l.waitNamespace(ctx)
}

// startAndAnswer starts h's daemon and waits until `sprite hosts --json`
// works there.
func (l *Lab) startAndAnswer(ctx context.Context, h *Host) error {
	st, err := readDaemonState(h)
	if err == nil {
		err = requestStart(ctx, h, st.Starts)
	}
	if err != nil {
		return fmt.Errorf("start the daemon on %s: %w", h.Name, err)
	}
	var last error
	err = poll(ctx, firstAnswerTimeout, func() (bool, error) {
		if st, err := readDaemonState(h); err != nil || !st.Running {
			return false, fmt.Errorf("the daemon on %s ended (%s); see %s", h.Name, st.LastExit, h.DaemonLog())
		}
		_, last = l.ClusterHosts(ctx, h.Name)
		return last == nil, nil
	}, fmt.Sprintf("the daemon on %s does not answer `sprite hosts`; see %s", h.Name, h.DaemonLog()))
	if err != nil && last != nil {
		return fmt.Errorf("%w; last try: %v", err, last)
	}
	return err
}

// joinAll joins h2…hN to the cluster and starts their daemons, in parallel.
func (l *Lab) joinAll(ctx context.Context, token, idle string) error {
	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	for i := 1; i < len(l.Hosts); i++ {
		wg.Add(1)
		go func(h *Host) {
			defer wg.Done()
			errs[h.Index-1] = l.join(ctx, h, token, idle)
		}(&l.Hosts[i])
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) join(ctx context.Context, h *Host, token, idle string) error {
	if _, err := l.run(ctx, h.Name, "sprite", "join", "--name", h.Name, "--token", token,
		"--server", l.Hosts[0].DaemonAddr(), "--addr", h.DaemonAddr(), "--idle-after", idle,
		"--export", "/home/"+h.Name+"=/home"); err != nil {
		return fmt.Errorf("join %s: %w", h.Name, err)
	}
	st, err := readDaemonState(h)
	if err == nil {
		err = requestStart(ctx, h, st.Starts)
	}
	if err != nil {
		return fmt.Errorf("start the daemon on %s: %w", h.Name, err)
	}
	return nil
}

// waitAllUp waits until h1's `sprite hosts --json` lists every host up.
func (l *Lab) waitAllUp(ctx context.Context) error {
	first := l.Hosts[0].Name
	var notUp []string
	var last error
	deadline := time.Now().Add(allUpTimeout)
	for {
		hs, err := l.ClusterHosts(ctx, first)
		last = err
		if err == nil {
			if notUp = l.notUp(hs); len(notUp) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(hostsPollEvery)
	}
	return l.notUpError(notUp, last)
}

// notUp lists the lab's hosts that hs does not show up.
func (l *Lab) notUp(hs []HostInfo) []string {
	up := map[string]bool{}
	for _, h := range hs {
		up[h.Name] = h.State == "up"
	}
	var down []string
	for _, h := range l.Hosts {
		if !up[h.Name] {
			down = append(down, h.Name)
		}
	}
	sort.Strings(down)
	return down
}

func (l *Lab) notUpError(notUp []string, last error) error {
	if notUp == nil {
		return fmt.Errorf("%s does not list the hosts within %v: %v; see %s", l.Hosts[0].Name, allUpTimeout, last, l.Hosts[0].DaemonLog())
	}
	var logs []string
	for _, n := range notUp {
		h, _ := l.Host(n)
		logs = append(logs, h.DaemonLog())
	}
	verb := "are"
	if len(notUp) == 1 {
		verb = "is"
	}
	return fmt.Errorf("%s %s not up after %v; see %s", joinNames(notUp), verb, allUpTimeout, strings.Join(logs, ", "))
}
