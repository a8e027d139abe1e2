package idle

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// LogindPollEvery is how often the logind hook asks for idle hints. Hints
// are a desktop's own summary (screen savers set them after minutes); the
// keystroke path is evdev and the terminals, so polling here costs no
// latency that matters.
const LogindPollEvery = 5 * time.Second

// LogindPresent reports whether this machine has logind seats and loginctl.
func LogindPresent() bool {
	if _, err := os.Stat("/run/systemd/seats"); err != nil {
		return false
	}
	_, err := exec.LookPath("loginctl")
	return err == nil
}

// runCmd runs a command and returns its output (a variable for tests).
var runCmd = func(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).Output()
}

// LogindHook is a Hook: every LogindPollEvery it asks logind for each
// session's IdleHint, and any session not idle counts as owner input.
func LogindHook(ctx context.Context, touch func(time.Time)) {
	t := time.NewTicker(LogindPollEvery)
	defer t.Stop()
	for {
		if logindActive(ctx) {
			touch(time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logindSessions is where logind keeps a state file per session (a
// variable for tests).
var logindSessions = "/run/systemd/sessions"

// logindActive reports whether some seat session says it is not idle.
// The seat sessions are found from logind's state files, with no process
// started; loginctl is run only for them (a desk has one), so a host with
// no seat session (a server, a lab host) runs nothing at all. (Running
// loginctl list-sessions on every host every 5 s cost 3% of the lab
// machine's CPU during a build.)
func logindActive(ctx context.Context) bool {
	for _, id := range seatSessions(logindSessions) {
		props, err := runCmd(ctx, "loginctl", "show-session", id, "-p", "IdleHint")
		if err != nil {
			continue
		}
		for _, p := range strings.Split(string(props), "\n") {
			if k, v, _ := strings.Cut(p, "="); k == "IdleHint" && v == "no" {
				return true
			}
		}
	}
	return false
}

// seatSessions returns the ids of the sessions in dir whose state file
// names a seat (SEAT=seat0): someone at the machine's own screen and
// keyboard. Sessions without a seat (ssh) are covered by the terminals.
func seatSessions(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var ids []string
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.ContainsRune(e.Name(), '.') {
			continue // FIFOs and their .ref files
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "SEAT="); ok && v != "" {
				ids = append(ids, e.Name())
				break
			}
		}
	}
	return ids
}
