package idle

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestLogindHintCountsOnlySeatSessionsThatAreNotIdle(t *testing.T) {
	defer func(old func(context.Context, string, ...string) ([]byte, error)) { runCmd = old }(runCmd)
	sessions := map[string]string{
		"c1": "Seat=\nIdleHint=no\n",       // ssh: no seat, terminals cover it
		"2":  "Seat=seat0\nIdleHint=yes\n", // the desk, screen saver on
	}
	runCmd = func(_ context.Context, name string, args ...string) ([]byte, error) {
		if args[0] == "list-sessions" {
			return []byte("c1 1000 alice\n 2 1000 alice seat0 tty2\n"), nil
		}
		if p, ok := sessions[args[1]]; ok {
			return []byte(p), nil
		}
		return nil, errors.New("no such session")
	}
	if logindActive(context.Background()) {
		t.Fatal("idle desk and a seatless session counted as input")
	}
	sessions["2"] = strings.Replace(sessions["2"], "yes", "no", 1)
	if !logindActive(context.Background()) {
		t.Fatal("a seat session with IdleHint=no is not input")
	}
}
