package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers of the file system tests (fs_test.go).

// Sh runs a shell script on host as user ("" for root).
func (h *Harness) Sh(host, user, script string) Result {
	if user == "" {
		return h.Exec(host, "sh", "-c", script)
	}
	return h.ExecAs(host, user, "sh", "-c", script)
}

// MustSh runs a script that has to succeed and returns its stdout.
func (h *Harness) MustSh(t *testing.T, host, user, script string) string {
	t.Helper()
	r := h.Sh(host, user, script)
	if r.Code != 0 {
		t.Fatalf("on %s as %q: %s\nexit %d\nstdout: %s\nstderr: %s", host, user, script, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// HostTmp is host's /tmp as seen from the machine: tests hand files to
// commands running inside a host through it.
func HostTmp(host string) string {
	return filepath.Join("/var/lib/sprite-lab/hosts", host, "tmp")
}

// WaitFile waits until path exists on the machine, or timeout.
func WaitFile(path string, timeout time.Duration) ([]byte, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return b, true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil, false
}

// Field returns the first whitespace-separated field of s.
func Field(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

var fsReady struct {
	once sync.Once
	err  error
}

// WaitFS waits, once per test binary, until each named host's prefix table
// holds each named host's /home, up.
func (h *Harness) WaitFS(t *testing.T, hosts ...string) {
	t.Helper()
	fsReady.once.Do(func() {
		deadline := time.Now().Add(30 * time.Second)
		for _, host := range hosts {
			for {
				r := h.Exec(host, "sprite", "exports", "--json")
				var rows []struct {
					Prefix string `json:"prefix"`
					Up     bool   `json:"up"`
				}
				up := map[string]bool{}
				if r.Code == 0 && json.Unmarshal([]byte(r.Stdout), &rows) == nil {
					for _, row := range rows {
						up[row.Prefix] = row.Up
					}
				}
				if allHomesUp(up, hosts) {
					break
				}
				if time.Now().After(deadline) {
					fsReady.err = fmt.Errorf("the prefix table on %s did not fill within 30s: %s %s", host, r.Stdout, r.Stderr)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
	if fsReady.err != nil {
		t.Fatal(fsReady.err)
	}
}

// allHomesUp reports whether up has /home/<host> up for every host: the
// named hosts' domains, whatever else the table holds.
func allHomesUp(up map[string]bool, hosts []string) bool {
	for _, h := range hosts {
		if !up["/home/"+h] {
			return false
		}
	}
	return true
}

// BuildPOSIXSuite builds sprite-posix where every lab host can run it
// (/var/tmp is the machine's, shared by the hosts).
func BuildPOSIXSuite(t *testing.T) string {
	t.Helper()
	dir := "/var/tmp/sprite-e2e-fs"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "sprite-posix")
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", bin, "./fs/posixsuite/cmd/sprite-posix")
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sprite-posix: %v\n%s", err, out)
	}
	return bin
}
