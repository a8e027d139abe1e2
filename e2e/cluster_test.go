package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var lab *Harness

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: these tests bring up a lab and need root (sudo bash scripts/test)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "sprite-e2e")
	if err != nil {
		panic(err)
	}
	lab, err = Build(dir)
	if err == nil {
		err = lab.Up(4, "--cpus", "0.5", "--idle-after", "5s")
	}
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		for _, h := range []string{"h1", "h2", "h3", "h4"} {
			fmt.Fprintf(os.Stderr, "--- %s daemon.log\n%s", h, DaemonLog(h))
		}
	} else {
		code = m.Run()
	}
	if err := lab.Down(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestEveryHostSeesTheWholeCluster(t *testing.T) {
	for _, from := range []string{"h1", "h4"} {
		hs, err := lab.Hosts(from)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) != 4 {
			t.Fatalf("%s sees %d hosts, want 4: %v", from, len(hs), hs)
		}
		for i := 1; i <= 4; i++ {
			name := fmt.Sprintf("h%d", i)
			row := hs[name]
			if row.State != "up" || row.CPUs != 0.5 || row.Arch == "" || row.Addr != fmt.Sprintf("10.213.0.%d:7170", 10+i) {
				t.Errorf("%s's view of %s: %+v; want up, 0.5 cpus (the lab's quota), an arch, its address", from, name, row)
			}
		}
	}
	// The table form is for people: one line per host plus a header.
	r := lab.Exec("h2", "sprite", "hosts")
	if r.Code != 0 || strings.Count(r.Stdout, "\n") != 5 || !strings.Contains(r.Stdout, "h3") {
		t.Fatalf("sprite hosts on h2: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestAnyLocalUserCanAskButCannotEnrol(t *testing.T) {
	if r := lab.ExecAs("h2", "alice", "sprite", "hosts", "--json"); r.Code != 0 || !strings.Contains(r.Stdout, `"h1"`) {
		t.Fatalf("alice's sprite hosts: exit %d %s", r.Code, r.Stderr)
	}
	// The CA key is root's: alice cannot mint join tokens.
	r := lab.ExecAs("h1", "alice", "sprite", "token")
	if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") {
		t.Fatalf("alice ran sprite token: exit %d %q", r.Code, r.Stderr)
	}
	if r := lab.Exec("h1", "stat", "-c", "%a", "/var/lib/sprite/ca.key", "/var/lib/sprite/host.key", "/var/lib/sprite/join.key"); r.Stdout != "600\n600\n600\n" {
		t.Fatalf("key modes: %q, want 600 each", r.Stdout)
	}
}

func TestDeadDaemonSeenDownAndBackUp(t *testing.T) {
	if r := lab.Exec("h3", "sh", "-c", "kill -9 $(cat /run/sprite/sprite.pid)"); r.Code != 0 {
		t.Fatalf("kill h3's daemon: %s", r.Stderr)
	}
	took, err := lab.WaitState("h1", "h3", "down", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("h1 saw h3 down after %s", took)
	if r := lab.Run(t.Context(), "lab", "start", "h3"); r.Code != 0 {
		t.Fatalf("lab start h3: %s", r.Stderr)
	}
	took, err = lab.WaitState("h1", "h3", "up", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("h1 saw h3 up again %s after its restart", took)
	// The others are untouched.
	if hs, err := lab.Hosts("h1"); err != nil || hs["h2"].State != "up" || hs["h4"].State != "up" {
		t.Fatalf("h1's view after h3's restart: %v %v", hs, err)
	}
}

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	if r := lab.Run(t.Context(), "lab", "stop", "h4"); r.Code != 0 {
		t.Fatalf("lab stop h4: %s", r.Stderr)
	}
	if !Contains(DaemonLog("h4"), "sprite daemon shutting down") {
		t.Errorf("h4's log does not show a clean shutdown:\n%s", DaemonLog("h4"))
	}
	if r := lab.Exec("h4", "test", "-e", "/run/sprite/sprite.sock"); r.Code == 0 {
		t.Error("h4's socket is still there after shutdown")
	}
	r := lab.Exec("h4", "sprite", "hosts")
	if r.Code == 0 || !strings.Contains(r.Stderr, "no sprite daemon is running") {
		t.Errorf("sprite hosts without a daemon: exit %d %q", r.Code, r.Stderr)
	}
	if _, err := lab.WaitState("h1", "h4", "down", 3*time.Second); err != nil { // it said goodbye
		t.Error(err)
	}
	if r := lab.Run(t.Context(), "lab", "start", "h4"); r.Code != 0 {
		t.Fatalf("lab start h4: %s", r.Stderr)
	}
	if _, err := lab.WaitState("h1", "h4", "up", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestForeignCertificateRefusedAndLogged(t *testing.T) {
	// h4 makes a cluster of its own, then trusts the real CA so that it
	// gets as far as showing h1 its foreign certificate.
	script := `set -e; rm -rf /tmp/evil
sprite init --name evil --state /tmp/evil --addr 10.213.0.14:7999 >/dev/null
cp /var/lib/sprite/ca.crt /tmp/evil/ca.crt
sprite ping --state /tmp/evil -c 1 10.213.0.11:7170`
	r := lab.Exec("h4", "sh", "-c", script)
	if r.Code == 0 {
		t.Fatalf("a host with a foreign certificate reached h1:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "h1 refused this host's certificate") {
		t.Errorf("the refused host was not told why: %q", r.Stderr)
	}
	if log := DaemonLog("h1"); !Contains(log, "refused connection", `certificate of \"evil\" is not signed by this cluster's CA`, "10.213.0.14") {
		t.Fatalf("h1 did not log why it refused evil:\n%s", log)
	}
	// A certified host is still served.
	if r := lab.Exec("h4", "sprite", "ping", "-c", "1", "10.213.0.11:7170"); r.Code != 0 || !strings.Contains(r.Stdout, "h1") {
		t.Fatalf("h4's own ping: exit %d %s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestJoinRefusesBadTokens(t *testing.T) {
	tok := strings.TrimSpace(lab.Exec("h1", "sprite", "token").Stdout)
	short := strings.TrimSpace(lab.Exec("h1", "sprite", "token", "--ttl", "1s").Stdout)
	foreign := strings.TrimSpace(lab.Exec("h2", "sh", "-c",
		"rm -rf /tmp/other && sprite init --name other --state /tmp/other --addr 10.213.0.12:7998 >/dev/null && sprite token --state /tmp/other").Stdout)
	if !strings.HasPrefix(tok, "sprite1.") || !strings.HasPrefix(short, "sprite1.") || !strings.HasPrefix(foreign, "sprite1.") {
		t.Fatalf("tokens: %q %q %q", tok, short, foreign)
	}
	tampered := tok[:len(tok)-10] + flip(tok[len(tok)-10:len(tok)-7]) + tok[len(tok)-7:]
	time.Sleep(1500 * time.Millisecond) // let the short token expire
	for _, tc := range []struct{ name, token, want string }{
		{"tampered", tampered, "signature does not match"},
		{"expired", short, "expired"},
		{"other cluster", foreign, "does not match the token"},
		{"truncated", tok[:20], "malformed"},
		{"name in use", tok, "in use"},
	} {
		name := "newhost"
		if tc.name == "name in use" {
			name = "h2"
		}
		r := lab.Exec("h3", "sh", "-c", fmt.Sprintf("rm -rf /tmp/j && sprite join --state /tmp/j --name %s --addr 10.213.0.13:7997 --token '%s' --server 10.213.0.11:7170", name, tc.token))
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%s token: exit %d, stderr %q; want a failure saying %q", tc.name, r.Code, r.Stderr, tc.want)
		}
		if r := lab.Exec("h3", "test", "-e", "/tmp/j/host.crt"); r.Code == 0 {
			t.Errorf("%s token: a certificate was saved", tc.name)
		}
	}
	// The good token works for a new name.
	r := lab.Exec("h3", "sh", "-c", "rm -rf /tmp/j && sprite join --state /tmp/j --name newhost --addr 10.213.0.13:7997 --token '"+tok+"' --server 10.213.0.11:7170")
	if r.Code != 0 {
		t.Fatalf("join with a good token: %s", r.Stderr)
	}
}

func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}
