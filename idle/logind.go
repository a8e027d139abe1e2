package idle

import (
	"context"
	"os"
	"os/exec"
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

// logindActive reports whether some seat session says it is not idle.
func logindActive(ctx context.Context) bool {
	out, err := runCmd(ctx, "loginctl", "list-sessions", "--no-legend")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		props, err := runCmd(ctx, "loginctl", "show-session", f[0], "-p", "IdleHint", "-p", "Seat")
		if err != nil {
			continue
		}
		seat, idle := "", ""
		for _, p := range strings.Split(string(props), "\n") {
			k, v, _ := strings.Cut(p, "=")
			switch k {
			case "Seat":
				seat = v
			case "IdleHint":
				idle = v
			}
		}
		if seat != "" && idle == "no" {
			return true
		}
	}
	return false
}
