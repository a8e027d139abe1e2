package idle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogindHintCountsOnlySeatSessionsThatAreNotIdle(t *testing.T) {
	defer func(old func(context.Context, string, ...string) ([]byte, error)) { runCmd = old }(runCmd)
	defer func(old string) { logindSessions = old }(logindSessions)
	logindSessions = t.TempDir()
	state := map[string]string{
		"c1": "UID=1000\nUSER=alice\nACTIVE=1\nTYPE=tty\nREMOTE=1\n", // ssh: no seat, terminals cover it
		"2":  "UID=1000\nUSER=alice\nACTIVE=1\nTYPE=x11\nSEAT=seat0\nVTNR=2\n",
	}
	for id, st := range state {
		if err := os.WriteFile(filepath.Join(logindSessions, id), []byte(st), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(logindSessions, "2.ref"), nil, 0o644)
	hint := map[string]string{"c1": "IdleHint=no\n", "2": "IdleHint=yes\n"} // the desk: screen saver on
	var asked []string
	runCmd = func(_ context.Context, name string, args ...string) ([]byte, error) {
		asked = append(asked, strings.Join(args, " "))
		if len(args) > 1 && args[0] == "show-session" {
			if p, ok := hint[args[1]]; ok {
				return []byte(p), nil
			}
		}
		return nil, errors.New("no such session")
	}
	if logindActive(context.Background()) {
		t.Fatal("idle desk and a seatless session counted as input")
	}
	hint["2"] = "IdleHint=no\n"
	if !logindActive(context.Background()) {
		t.Fatal("a seat session with IdleHint=no is not input")
	}
	for _, a := range asked {
		if !strings.HasPrefix(a, "show-session 2 ") {
			t.Errorf("asked loginctl %q; want only the seat session's IdleHint", a)
		}
	}
	os.Remove(filepath.Join(logindSessions, "2"))
	asked = nil
	if logindActive(context.Background()) || len(asked) > 0 {
		t.Errorf("no seat session: active or ran loginctl %q", asked)
	}
}
