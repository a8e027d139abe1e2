package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The global namespace across lab hosts: every host exports its /home as
// /home/<host>; alice has a home on each.

const aliceOnH1 = "/sprite/home/h1/alice"

func TestFSExportsTable(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	out := lab.MustSh(t, "h3", "alice", "sprite exports --json")
	for i := 1; i <= 4; i++ {
		if !strings.Contains(out, fmt.Sprintf(`"prefix": "/home/h%d"`, i)) {
			t.Fatalf("h3's prefix table lacks /home/h%d:\n%s", i, out)
		}
	}
	ls := lab.MustSh(t, "h2", "", "ls /sprite /sprite/home /sprite/hosts && cat /sprite/hosts/h1/state /sprite/hosts/h1/cpus /sprite/hosts/h4/arch")
	for _, want := range []string{"home\nhosts\n", "h1\nh2\nh3\nh4\n", "up\n0.5\n"} {
		if !strings.Contains(ls, want) {
			t.Fatalf("/sprite on h2 lacks %q:\n%s", want, ls)
		}
	}
	facts := lab.MustSh(t, "h3", "alice", "cd /sprite/hosts/h1 && ls && cat uptime load activity")
	var uptime int
	var load float64
	var files, activity string
	for _, f := range []string{"activity", "addr", "arch", "cpus", "idle_for", "last_seen", "load", "state", "uptime", "version"} {
		files += f + "\n"
	}
	if _, err := fmt.Sscanf(strings.TrimPrefix(facts, files), "%d\n%g\n%s", &uptime, &load, &activity); err != nil || uptime < 0 || activity == "" {
		t.Fatalf("/sprite/hosts/h1 on h3: %v\n%s", err, facts)
	}
	if r := lab.Sh("h3", "alice", "echo x > /sprite/hosts/h1/state"); r.Code == 0 {
		t.Fatal("a synthetic host file was writable")
	}
}

// TestFSWriteHereReadThere writes files of many sizes on h1 in alice's
// home, reads them on h2 and h3 through /sprite, writes them back from h2
// and checks every copy byte for byte.
func TestFSWriteHereReadThere(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	sizes := []int{0, 1, 4095, 4096, 4097, 1<<20 + 7, 64 << 20}
	lab.MustSh(t, "h1", "alice", "mkdir -p ~/sizes")
	for _, n := range sizes {
		name := fmt.Sprintf("sizes/f%d", n)
		sum := Field(lab.MustSh(t, "h1", "alice", fmt.Sprintf("head -c %d /dev/urandom > ~/%s && sha256sum ~/%s", n, name, name)))
		for _, h := range []string{"h2", "h3"} {
			if got := Field(lab.MustSh(t, h, "alice", "sha256sum "+aliceOnH1+"/"+name)); got != sum {
				t.Fatalf("%d bytes written on h1, read on %s: sha256 %s, want %s", n, h, got, sum)
			}
		}
		// And back: h2 writes a new file into h1's disk through /sprite.
		back := fmt.Sprintf("sizes/b%d", n)
		sum2 := Field(lab.MustSh(t, "h2", "alice", fmt.Sprintf("head -c %d /dev/urandom > /tmp/b && cp /tmp/b %s/%s && sha256sum /tmp/b", n, aliceOnH1, back)))
		if got := Field(lab.MustSh(t, "h1", "alice", "sha256sum ~/"+back)); got != sum2 {
			t.Fatalf("%d bytes written on h2 through /sprite: on h1's disk sha256 %s, want %s", n, got, sum2)
		}
		if got := Field(lab.MustSh(t, "h3", "alice", "sha256sum "+aliceOnH1+"/"+back)); got != sum2 {
			t.Fatalf("%d bytes written on h2, read on h3: sha256 %s, want %s", n, got, sum2)
		}
	}
	// Small writes held back past what a session message carries go in
	// one fs.writev call of its own, which every host serves (until
	// 2026-12-03 none did, and such writes went a call each).
	sum3 := Field(lab.MustSh(t, "h2", "alice", fmt.Sprintf("head -c 300000 /dev/urandom > /tmp/c && dd if=/tmp/c of=%s/sizes/small bs=4k status=none && sha256sum /tmp/c", aliceOnH1)))
	if got := Field(lab.MustSh(t, "h1", "alice", "sha256sum ~/sizes/small")); got != sum3 {
		t.Fatalf("300000 bytes written in 4 KiB writes on h2: on h1's disk sha256 %s, want %s", got, sum3)
	}
	if l := DaemonLog("h2"); strings.Contains(l, "has no fs.writev") {
		t.Fatalf("h2 found h1 without fs.writev:\n%s", l)
	}
	lab.MustSh(t, "h1", "alice", "rm -rf ~/sizes")
}

// TestFSMetadataSeenAtOnce changes names and modes on one host and looks
// on another right away, with no waiting in between.
func TestFSMetadataSeenAtOnce(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	d := aliceOnH1 + "/meta"
	lab.MustSh(t, "h2", "alice", "rm -rf "+d+" && mkdir "+d+" && echo one > "+d+"/a")
	steps := []struct{ on, do, check, want string }{
		{"h2", "mkdir " + d + "/sub", "test -d " + d + "/sub && echo yes", "yes\n"},
		{"h3", "mv " + d + "/a " + d + "/sub/b", "cat " + d + "/sub/b; test -e " + d + "/a || echo gone", "one\ngone\n"},
		{"h4", "ln -s sub/b " + d + "/ln", "readlink " + d + "/ln; cat " + d + "/ln", "sub/b\none\n"},
		{"h2", "chmod 640 " + d + "/sub/b", "stat -c %a " + d + "/sub/b", "640\n"},
		{"h3", "rm " + d + "/ln", "test -e " + d + "/ln || echo gone", "gone\n"},
		{"h4", "rm " + d + "/sub/b && rmdir " + d + "/sub", "ls -A " + d + "; echo end", "end\n"},
	}
	lookers := []string{"h3", "h4", "h2", "h1"}
	for i, s := range steps {
		other := lookers[i%len(lookers)]
		if other == s.on {
			other = "h1"
		}
		// The other host looks first, so that it has something cached.
		lab.Sh(other, "alice", s.check)
		lab.MustSh(t, s.on, "alice", s.do)
		check := s.check
		if other == "h1" {
			check = strings.ReplaceAll(check, aliceOnH1, "/home/alice")
		}
		if got := lab.MustSh(t, other, "alice", check); got != s.want {
			t.Errorf("after %q on %s, %q on %s said %q, want %q", s.do, s.on, check, other, got, s.want)
		}
	}
}

// TestFSSequentialWriteSharing: a file rewritten and closed on one host is
// read with its new contents on another that had it cached.
func TestFSSequentialWriteSharing(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	f := aliceOnH1 + "/seq"
	for i := range 5 {
		v := fmt.Sprintf("version %d of the file\n", i)
		w := map[bool]string{true: "h2", false: "h4"}[i%2 == 0]
		lab.MustSh(t, w, "alice", fmt.Sprintf("printf '%s' > %s", v, f))
		for _, r := range []string{"h3", "h3", "h1"} {
			p := f
			if r == "h1" {
				p = "/home/alice/seq"
			}
			if got := lab.MustSh(t, r, "alice", "cat "+p); got != v {
				t.Fatalf("round %d: written on %s, %s read %q, want %q", i, w, r, got, v)
			}
		}
	}
}

// TestFSLocalChangeReachesClients: a change made on the exporting host's
// own disk (not through /sprite) is seen by clients that read the file
// just before (and keep its handle, fs/fuse kept.go): at once by a job
// that host starts after the change (it settles first), and as soon as
// the notification arrives by a reader of its own.
func TestFSLocalChangeReachesClients(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	lab.MustSh(t, "h1", "alice", "printf 'before\\n' > ~/local")
	for range 2 {
		for _, h := range []string{"h2", "h3"} {
			if got := lab.MustSh(t, h, "alice", "cat "+aliceOnH1+"/local"); got != "before\n" {
				t.Fatalf("%s read %q", h, got)
			}
		}
	}
	for i, v := range []string{"after!\n", "and now a longer line than before\n", "s\n"} {
		got := lab.MustSh(t, "h1", "alice", fmt.Sprintf("printf '%s' > ~/local && cd && sprite mig --host h2 -- cat local", strings.ReplaceAll(v, "\n", "\\n")))
		if got != v {
			t.Fatalf("change %d on h1's disk: a job h1 started on h2 then read %q, want %q", i, got, v)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			got := lab.MustSh(t, "h3", "alice", "cat "+aliceOnH1+"/local")
			if got == v {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("change %d on h1's disk: h3 still reads %q after 2 s, want %q", i, got, v)
			}
		}
	}
	lab.MustSh(t, "h1", "alice", "mkdir ~/ldir && touch ~/ldir/x")
	if got := lab.MustSh(t, "h3", "alice", "ls "+aliceOnH1+"/ldir"); got != "x\n" {
		t.Fatalf("h3 lists %q", got)
	}
	lab.MustSh(t, "h1", "alice", "mv ~/ldir/x ~/ldir/y")
	if got := lab.MustSh(t, "h3", "alice", "ls "+aliceOnH1+"/ldir; cat "+aliceOnH1+"/ldir/x 2>/dev/null || echo none"); got != "y\nnone\n" {
		t.Fatalf("after a local rename h3 sees %q", got)
	}
}

// sharer runs a python program on host that keeps one file open (read and
// write) and obeys commands the test drops into the host's /tmp:
// cmd-N holds "w TEXT" (write TEXT at offset 0) or "r" (read 64 bytes at
// 0); the answer goes to ans-N.
const sharer = `
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
open("/tmp/sharer-ready", "w").close()
i = 0
while True:
    p = "/tmp/cmd-%d" % i
    if not os.path.exists(p):
        time.sleep(0.002); continue
    c = open(p).read()
    if c == "q": break
    if c.startswith("w "):
        os.pwrite(fd, c[2:].encode(), 0); ans = "ok"
    else:
        ans = os.pread(fd, 64, 0).decode()
    with open("/tmp/ans-%d.tmp" % i, "w") as f: f.write(ans)
    os.rename("/tmp/ans-%d.tmp" % i, "/tmp/ans-%d" % i)
    i += 1
`

type sharerProc struct {
	host string
	n    int
	done chan Result
}

func startSharer(t *testing.T, host, file string) *sharerProc {
	t.Helper()
	tmp := HostTmp(host)
	os.Remove(filepath.Join(tmp, "sharer-ready"))
	for i := range 1000 {
		os.Remove(filepath.Join(tmp, fmt.Sprintf("cmd-%d", i)))
		os.Remove(filepath.Join(tmp, fmt.Sprintf("ans-%d", i)))
	}
	s := &sharerProc{host: host, done: make(chan Result, 1)}
	go func() { s.done <- lab.ExecAs(host, "alice", "python3", "-c", sharer, file) }()
	if _, ok := WaitFile(filepath.Join(tmp, "sharer-ready"), 20*time.Second); !ok {
		t.Fatalf("the sharer on %s did not open %s", host, file)
	}
	return s
}

func (s *sharerProc) do(t *testing.T, cmd string) string {
	t.Helper()
	tmp := HostTmp(s.host)
	os.WriteFile(filepath.Join(tmp, fmt.Sprintf("cmd-%d.tmp", s.n)), []byte(cmd), 0o644)
	os.Rename(filepath.Join(tmp, fmt.Sprintf("cmd-%d.tmp", s.n)), filepath.Join(tmp, fmt.Sprintf("cmd-%d", s.n)))
	b, ok := WaitFile(filepath.Join(tmp, fmt.Sprintf("ans-%d", s.n)), 20*time.Second)
	if !ok {
		t.Fatalf("sharer on %s did not answer %q", s.host, cmd)
	}
	s.n++
	return string(b)
}

func (s *sharerProc) stop(t *testing.T) {
	tmp := HostTmp(s.host)
	// Whole or not at all, as do's commands: a sharer that read the file
	// between its creation and its write took "" for a read, answered it
	// and waited for the next command for good.
	os.WriteFile(filepath.Join(tmp, fmt.Sprintf("cmd-%d.tmp", s.n)), []byte("q"), 0o644)
	os.Rename(filepath.Join(tmp, fmt.Sprintf("cmd-%d.tmp", s.n)), filepath.Join(tmp, fmt.Sprintf("cmd-%d", s.n)))
	select {
	case r := <-s.done:
		if r.Code != 0 {
			t.Errorf("sharer on %s: exit %d %s", s.host, r.Code, r.Stderr)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("sharer on %s did not stop", s.host)
	}
}

// TestFSConcurrentWriteSharing: two hosts hold one file open at once and
// take turns writing and reading; every read sees the last write, whoever
// made it. The first opener's cache predates the sharing.
func TestFSConcurrentWriteSharing(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	f := aliceOnH1 + "/shared"
	lab.MustSh(t, "h1", "alice", "printf 'initial-contents' > ~/shared")
	a := startSharer(t, "h2", f)
	defer a.stop(t)
	if got := a.do(t, "r"); got != "initial-contents" {
		t.Fatalf("h2 first read %q", got)
	}
	b := startSharer(t, "h3", f)
	defer b.stop(t)
	for i := range 20 {
		v := fmt.Sprintf("write-%02d-by-h2-x", i)
		w, r := a, b
		if i%2 == 1 {
			v = fmt.Sprintf("write-%02d-by-h3-x", i)
			w, r = b, a
		}
		if got := w.do(t, "w "+v); got != "ok" {
			t.Fatalf("write %d: %q", i, got)
		}
		if got := r.do(t, "r"); got != v {
			t.Fatalf("step %d: %s wrote %q, %s read %q", i, w.host, v, r.host, got)
		}
		if got := w.do(t, "r"); got != v {
			t.Fatalf("step %d: %s wrote %q and read back %q", i, w.host, v, got)
		}
	}
}

// TestFSDeadServer: with h4's daemon killed, its domain fails within the
// timeout while the others work; restarting it brings the domain back.
func TestFSDeadServer(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	lab.MustSh(t, "h4", "alice", "echo from-h4 > ~/alive")
	lab.MustSh(t, "h1", "alice", "echo from-h1 > ~/alive")
	if got := lab.MustSh(t, "h2", "alice", "cat /sprite/home/h4/alice/alive"); got != "from-h4\n" {
		t.Fatalf("before: %q", got)
	}
	if r := lab.Exec("h4", "sh", "-c", "kill -9 $(cat /run/sprite/sprite.pid)"); r.Code != 0 {
		t.Fatalf("kill h4's daemon: %s", r.Stderr)
	}
	// h2 read the file just now and keeps its handle (fs/fuse kept.go):
	// until it hears that h4 is down, or for 5 s, it may read it again
	// from its cache. Then reads fail.
	start := time.Now()
	var r Result
	for {
		r = lab.Sh("h2", "alice", "cat /sprite/home/h4/alice/alive")
		if r.Code != 0 || r.Stdout != "from-h4\n" || time.Since(start) > 15*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	if r.Code == 0 || !strings.Contains(r.Stderr, "Input/output error") {
		t.Fatalf("reading a dead host's file: exit %d %q %q after %v", r.Code, r.Stdout, r.Stderr, took)
	}
	if took > 15*time.Second {
		t.Fatalf("the failure took %s; the timeout is 10s", took)
	}
	t.Logf("dead domain failed with EIO after %s", took.Round(time.Millisecond))
	if got := lab.MustSh(t, "h2", "alice", "cat /sprite/home/h1/alice/alive; ls /sprite/home"); got != "from-h1\nh1\nh2\nh3\nh4\n" {
		t.Fatalf("other domains while h4 is dead: %q", got)
	}
	if r := lab.Run(context.Background(), "lab", "start", "h4"); r.Code != 0 {
		t.Fatalf("lab start h4: %s", r.Stderr)
	}
	waitRead(t, "h2", "/sprite/home/h4/alice/alive", "from-h4\n")
	// h4's daemon found its dead mount, detached it and mounted again.
	waitRead(t, "h4", "/sprite/home/h1/alice/alive", "from-h1\n")
	if log := DaemonLog("h4"); !Contains(log, "fs: detached a stale mount") {
		t.Errorf("h4's log does not mention the stale mount:\n%s", log)
	}
}

// waitRead polls until file reads as want on host (a restarted daemon
// needs a moment to learn the cluster and its prefix table).
func waitRead(t *testing.T, host, file, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := lab.Sh(host, "alice", "cat "+file)
		if r.Code == 0 && r.Stdout == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not read %s within 20s of the restart: %q %q", host, file, r.Stdout, r.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFSPOSIXSuite runs sprite's POSIX suite (fs/posixsuite) as alice on
// h2, in h1's domain through /sprite.
func TestFSPOSIXSuite(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	bin := BuildPOSIXSuite(t)
	lab.MustSh(t, "h2", "alice", "mkdir -p "+aliceOnH1+"/posix")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := lab.Run(ctx, "lab", "exec", "h2", "--user", "alice", "--", bin, "-large", "16", aliceOnH1+"/posix")
	t.Logf("sprite-posix on /sprite:\n%s", r.Stdout)
	if r.Code != 0 {
		t.Fatalf("the POSIX suite failed on /sprite: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	lab.MustSh(t, "h1", "alice", "rm -rf ~/posix")
}

// TestFSLinkHereRunThere: a program linked through /sprite on h2 runs at
// once on h3 (through /sprite) and on h1 (its own disk), with no ETXTBSY.
func TestFSLinkHereRunThere(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	lab.MustSh(t, "h2", "alice", "cd "+aliceOnH1+" && printf 'int main(void){return 42;}\\n' > p.c && gcc -o p p.c")
	for _, run := range []struct{ host, path string }{{"h3", aliceOnH1 + "/p"}, {"h1", "/home/alice/p"}, {"h2", aliceOnH1 + "/p"}} {
		if got := lab.MustSh(t, run.host, "alice", run.path+"; echo $?"); got != "42\n" {
			t.Fatalf("running %s on %s: %q", run.path, run.host, got)
		}
	}
	lab.MustSh(t, "h1", "alice", "rm -f ~/p ~/p.c")
}

// TestFSClientCrashKeepsAcknowledgedWrites: data a client wrote and closed
// is on the server when the client's daemon dies right after.
func TestFSClientCrashKeepsAcknowledgedWrites(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	// A file written and closed, and one written, fsynced and still open
	// (its writer sleeps on) when h3's daemon is killed.
	lab.MustSh(t, "h3", "alice", "rm -f /tmp/synced; head -c 3000000 /dev/urandom > /tmp/w && cp /tmp/w "+aliceOnH1+"/crash && "+
		"(python3 -c \"import os, time; f=os.open('"+aliceOnH1+"/crash2', os.O_WRONLY|os.O_CREAT, 0o644); os.write(f, b'fsynced'); os.fsync(f); open('/tmp/synced', 'w').write(str(os.getpid())); time.sleep(60)\" >/dev/null 2>&1 &) ; "+
		"for i in $(seq 100); do test -s /tmp/synced && exit 0; sleep 0.1; done; exit 1")
	lab.MustSh(t, "h3", "", "kill -9 $(cat /run/sprite/sprite.pid)")
	defer lab.Sh("h3", "", "kill -9 $(cat /tmp/synced)")
	want := Field(lab.MustSh(t, "h3", "alice", "sha256sum /tmp/w"))
	if got := Field(lab.MustSh(t, "h1", "alice", "sha256sum ~/crash")); got != want {
		t.Fatalf("closed before the crash: %s on h1, want %s", got, want)
	}
	if got := lab.MustSh(t, "h1", "alice", "cat ~/crash2"); got != "fsynced" {
		t.Fatalf("fsynced (still open) before the crash: %q on h1", got)
	}
	if r := lab.Run(context.Background(), "lab", "start", "h3"); r.Code != 0 {
		t.Fatalf("lab start h3: %s", r.Stderr)
	}
	waitRead(t, "h3", aliceOnH1+"/crash2", "fsynced")
	lab.MustSh(t, "h1", "alice", "rm -f ~/crash ~/crash2")
}

// TestFSStopWithBusyMount: a shell sitting in /sprite does not hold up the
// daemon's shutdown, and the restarted daemon mounts again.
func TestFSStopWithBusyMount(t *testing.T) {
	lab.WaitFS(t, "h1", "h2", "h3", "h4")
	lab.MustSh(t, "h2", "alice", "(cd "+aliceOnH1+" && exec sleep 120 >/dev/null 2>&1) & echo $! > /tmp/busy.pid")
	defer lab.Sh("h2", "", "kill $(cat /tmp/busy.pid)")
	start := time.Now()
	if r := lab.Run(context.Background(), "lab", "stop", "h2"); r.Code != 0 {
		t.Fatalf("lab stop h2: %s", r.Stderr)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("stopping h2's daemon with a busy /sprite took %s", took)
	}
	if log := DaemonLog("h2"); !Contains(log, "fs: mount busy", "sprite daemon shutting down") {
		t.Fatalf("h2's log:\n%s", log)
	}
	if r := lab.Run(context.Background(), "lab", "start", "h2"); r.Code != 0 {
		t.Fatalf("lab start h2: %s", r.Stderr)
	}
	lab.MustSh(t, "h1", "alice", "echo back > ~/busy")
	waitRead(t, "h2", aliceOnH1+"/busy", "back\n")
}
