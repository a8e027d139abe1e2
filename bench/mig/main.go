// Command mig measures remote execution of `true` beside local fork/exec and
// `ssh host true`, in one run:
//
//	sudo bash scripts/bench mig    (or bin/bench-mig -n 200 -ssh-n 100 -warm 10)
//
// It brings up a 3-host lab with bin/sprite (built by scripts/setup; no
// CPU quota), starts OpenSSH's sshd on h2 (a host key and a key pair for
// alice made for the run, alice's ~/.ssh/authorized_keys in h2's /home)
// and runs its own binary, copied into the lab, as the driver on h1, as
// alice in /home/alice (h1's export). The driver times each way, one after
// the other, with warm-up runs before each:
//
//   - local: fork/exec of /bin/true on h1 (os/exec, start to exit)
//   - sprite mig: `sprite mig --host h2 -- true`, the CLI as a user types it
//   - Go API: migrate.Command("true") with Host "h2", Run, in the driver's
//     own process (placement and relay without the CLI's process start)
//   - ssh: `ssh alice@h2 true` (OpenSSH, a new connection each time)
//
// It prints a table and writes docs/bench/mig.md with the machine's load
// before and after. The lab is torn down at the end, also on failure.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"sprite/bench/internal/benchlab"
)

const (
	labBin   = "/var/lib/sprite-lab/bin"
	hostsDir = "/var/lib/sprite-lab/hosts"
	selfName = "sprite-bench-mig"
	h2Addr   = "10.213.0.12"
	sshPort  = 22
	keyDir   = "/tmp/bench-mig-ssh"  // in h1, alice's
	sshdDir  = "/tmp/bench-mig-sshd" // in h2, root's
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "drive" {
		fatal(drive(os.Args[2:]))
		return
	}
	n := flag.Int("n", 200, "timed runs of local, sprite mig and the Go API")
	sshN := flag.Int("ssh-n", 100, "timed runs of ssh (a quarter of a second each here)")
	warm := flag.Int("warm", 10, "untimed warm-up runs of each way")
	out := flag.String("out", "docs/bench/mig.md", "where to write the results")
	sprite := flag.String("sprite", "bin/sprite", "the sprite binary")
	flag.Parse()
	fatal(orchestrate(*sprite, *n, *sshN, *warm, *out))
}

func fatal(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench mig: %v\n", err)
		os.Exit(1)
	}
}

func orchestrate(sprite string, n, sshN, warm int, out string) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs root: run with sudo (sudo bash scripts/bench mig)")
	}
	fi, err := os.Stat(sprite)
	if err != nil {
		return fmt.Errorf("sprite binary: %w (build it: go build -o bin/sprite ./cmd/sprite)", err)
	}
	binMB := float64(fi.Size()) / 1e6
	for _, b := range []string{"ssh", "ssh-keygen", "/usr/sbin/sshd"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s: %w (install openssh-server and openssh-client: sudo bash scripts/setup)", b, err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	loadBefore := benchlab.Loadavg()
	start := time.Now()

	benchlab.Run(sprite, "lab", "down")
	if err := benchlab.Run(sprite, "lab", "up", "--hosts", "3"); err != nil {
		benchlab.Down(sprite)
		return fmt.Errorf("lab up: %w", err)
	}
	defer func() {
		if derr := benchlab.Down(sprite); derr != nil && err == nil {
			err = derr
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to copy into the lab: %w", err)
	}
	if err := copyFile(self, filepath.Join(labBin, selfName)); err != nil {
		return fmt.Errorf("copy the driver into the lab: %w", err)
	}
	sshd, err := startSSHD(ctx, sprite)
	if err != nil {
		return err
	}
	sshdLog := filepath.Join(hostsDir, "h2", "tmp", strings.TrimPrefix(sshdDir, "/tmp/"), "sshd.log")
	defer func() {
		sshd.Process.Signal(syscall.SIGTERM)
		sshd.Wait()
	}()

	fmt.Fprintf(os.Stderr, "== driver on h1 as alice: %d runs of each way, %d of ssh (+%d warm-up each)\n", n, sshN, warm)
	drv := exec.CommandContext(ctx, sprite, "lab", "exec", "h1", "--user", "alice", "--",
		selfName, "drive", "-n", fmt.Sprint(n), "-ssh-n", fmt.Sprint(sshN), "-warm", fmt.Sprint(warm),
		"-host", "h2", "-key", keyDir+"/id", "-dest", "alice@"+h2Addr, "-port", fmt.Sprint(sshPort))
	drv.Stderr = os.Stderr
	b, err := drv.Output()
	if err != nil {
		if log, lerr := os.ReadFile(sshdLog); lerr == nil {
			fmt.Fprintf(os.Stderr, "sshd's log on h2:\n%s", benchlab.Tail(log, 20))
		}
		return fmt.Errorf("driver on h1: %w (its messages are above)", err)
	}
	var res samples
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("driver output %q: %w", b, err)
	}
	for _, w := range ways {
		if len(res[w]) == 0 {
			return fmt.Errorf("the driver timed no run of %s", w)
		}
	}
	loadAfter := benchlab.Loadavg()
	table := render(res, n, sshN, warm, binMB, loadBefore, loadAfter, time.Since(start))
	fmt.Print(table)
	if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
		return fmt.Errorf("write the results: %w", err)
	}
	return nil
}

// startSSHD makes a key pair for alice on h1 and starts sshd on h2 (in the
// foreground, under `sprite lab exec`) with a host key of its own and
// alice's authorized_keys in h2's /home.
func startSSHD(ctx context.Context, sprite string) (*exec.Cmd, error) {
	if err := benchlab.Sh(sprite, "h1", "alice", "rm -rf "+keyDir+" && mkdir -m 700 "+keyDir+
		" && ssh-keygen -q -t ed25519 -N '' -C bench-mig -f "+keyDir+"/id"); err != nil {
		return nil, fmt.Errorf("make alice's ssh key on h1: %w", err)
	}
	pub, err := os.ReadFile(filepath.Join(hostsDir, "h1", "tmp", strings.TrimPrefix(keyDir, "/tmp/"), "id.pub"))
	if err != nil {
		return nil, fmt.Errorf("read alice's public key from h1's /tmp: %w", err)
	}
	config := fmt.Sprintf(`ListenAddress %s
Port %d
HostKey %s/host_key
PidFile %s/sshd.pid
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM yes
`, h2Addr, sshPort, sshdDir, sshdDir)
	script := fmt.Sprintf(`set -e
mkdir -p /run/sshd
rm -rf %[1]s && mkdir -m 700 %[1]s
ssh-keygen -q -t ed25519 -N '' -f %[1]s/host_key
cat > %[1]s/sshd_config <<'EOF'
%[2]sEOF
install -d -o alice -g alice -m 700 /home/alice/.ssh
printf '%%s\n' '%[3]s' > /home/alice/.ssh/authorized_keys
chown alice:alice /home/alice/.ssh/authorized_keys
chmod 600 /home/alice/.ssh/authorized_keys
/usr/sbin/sshd -t -f %[1]s/sshd_config`, sshdDir, config, strings.TrimSpace(string(pub)))
	if err := benchlab.Sh(sprite, "h2", "", script); err != nil {
		return nil, fmt.Errorf("set up sshd on h2: %w", err)
	}
	cmd := exec.CommandContext(ctx, sprite, "lab", "exec", "h2", "--", "/usr/sbin/sshd", "-D", "-f", sshdDir+"/sshd_config", "-E", sshdDir+"/sshd.log")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sshd on h2: %w", err)
	}
	return cmd, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// stats are one way's figures in milliseconds.
type stats struct {
	n                   int
	p50, p90, p99, mean float64
}

func summarize(ns []int64) stats {
	s := append([]int64(nil), ns...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1 // nearest rank
		return float64(s[min(max(i, 0), len(s)-1)]) / 1e6
	}
	var sum int64
	for _, v := range s {
		sum += v
	}
	return stats{n: len(s), p50: pct(0.50), p90: pct(0.90), p99: pct(0.99), mean: float64(sum) / float64(len(s)) / 1e6}
}

var names = map[string]string{
	wayLocal: "local fork/exec of `true` (h1)",
	wayStart: "breakdown: `sprite help` (the CLI's process start alone)",
	wayCLI:   "`sprite mig --host h2 -- true` (CLI)",
	wayAPI:   "Go API: migrate.Command, Host h2, Run (no stdio)",
	wayAPIIO: "breakdown: the Go API with stdin, stdout, stderr set, as the CLI's",
	waySSH:   "`ssh alice@h2 true` (OpenSSH)",
}

func render(res samples, n, sshN, warm int, binMB float64, loadBefore, loadAfter string, took time.Duration) string {
	st := map[string]stats{}
	for _, w := range ways {
		st[w] = summarize(res[w])
	}
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Remote execution benchmark: `true` on another host\n\n")
	fmt.Fprintf(&b, "Run %s on %s (%d CPUs, %s/%s): `sudo bash scripts/bench mig` (-n %d -ssh-n %d -warm %d; %s in all).\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		n, sshN, warm, took.Round(time.Second))
	fmt.Fprintf(&b, "Machine load average (1, 5, 15 min): %s before, %s after (a busy machine inflates every figure).\n\n",
		loadBefore, loadAfter)
	fmt.Fprintf(&b, "A 3-host lab, no CPU quota. Every time is taken on h1 by one driver process running as alice in\n"+
		"/home/alice (h1's export), from just before the start to the exit. The ways run one after the\n"+
		"other, each with %d untimed runs and then its timed runs back to back (taking turns run by run\n"+
		"would charge each way for the cleanup of the one before: sshd's session teardown on h2).\n\n", warm)
	fmt.Fprintf(&b, "| way | runs | p50 ms | p90 ms | p99 ms | mean ms | p50 over local |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range []string{wayLocal, wayCLI, wayAPI, waySSH, wayStart, wayAPIIO} {
		s := st[w]
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f | %.2f | %.2f | %+.2f ms |\n", names[w], s.n, s.p50, s.p90, s.p99, s.mean, s.p50-st[wayLocal].p50)
	}
	local, cli, api, ssh := st[wayLocal], st[wayCLI], st[wayAPI], st[waySSH]
	goal := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintf(&b, "\n| goal (brief) | this run |\n|---|---|\n")
	fmt.Fprintf(&b, "| remote exec of `true` < 3 ms over local (sprite mig p50 - local p50) | %.2f ms: %s |\n",
		cli.p50-local.p50, goal(cli.p50-local.p50 < 3))
	fmt.Fprintf(&b, "| remote exec >= 10x faster than ssh (ssh p50 / sprite mig p50) | %.1fx: %s |\n",
		ssh.p50/cli.p50, goal(ssh.p50 >= 10*cli.p50))
	fmt.Fprintf(&b, "| the same through the Go API (API p50 - local p50; ssh p50 / API p50) | %.2f ms, %.1fx |\n",
		api.p50-local.p50, ssh.p50/api.p50)
	fmt.Fprintf(&b, "\n## What it means\n\n")
	start, apiIO := st[wayStart], st[wayAPIIO]
	met := func(ok bool) string {
		if ok {
			return "meets"
		}
		return "misses"
	}
	fmt.Fprintf(&b, "`sprite mig` ran `true` on h2 in %.2f ms at the median, %.2f ms more than a local fork/exec\n"+
		"(%.2f ms): it %s the goal of < 3 ms over local. `ssh` took %.2f ms, %.1fx as long: sprite mig\n"+
		"%s the goal of >= 10x faster than ssh.\n\n",
		cli.p50, cli.p50-local.p50, local.p50, met(cli.p50-local.p50 < 3), ssh.p50, ssh.p50/cli.p50,
		met(ssh.p50 >= 10*cli.p50))
	fmt.Fprintf(&b, "Where the CLI's time goes (medians do not add exactly, so these are approximate): starting the\n"+
		"sprite binary at all (`sprite help`, a %.0f MB Go binary) costs %.2f ms, %.2f ms more than a fork/exec\n"+
		"of `true`; the remote exec itself, as the Go API sees it in a warm process, costs %.2f ms (%.2f ms\n"+
		"with stdin, stdout and stderr relayed, as the CLI has them); the remaining %.2f ms is what a fresh\n"+
		"`sprite mig` process does besides (flags, signal handlers, a cold Go heap, its first connection).\n"+
		"The Go API, which programs such as pmake's job shell use, is %.2f ms over local: over the goal\n"+
		"too, so the CLI's start is not the only cost to cut.\n\n",
		binMB, start.p50, start.p50-local.p50, api.p50, apiIO.p50, cli.p50-start.p50-apiIO.p50, api.p50-local.p50)
	b.WriteString(notes)
	return b.String()
}

// notes explain where the time goes; they hold no figures of this run.
const notes = `Both remote ways pay, on top of the fork/exec that the target does
too: the call to the local daemon on its unix socket, placement, one QUIC
call from h1's daemon to h2's (the connection between daemons is kept
open, so no handshake per job), the job's cgroup and its job init on h2
(` + "`sprite _jobinit`" + `, a second start of the same Go binary, in a new mount
namespace with h1's exports bound in, then the exec of the command), and
the exit status and rusage relayed home. ssh pays a new TCP connection, a
key exchange and public-key authentication on every run, then sshd's
fork, privilege separation, its PAM session and alice's login shell
(bash -c true); a user who keeps an ssh master connection open
(ControlMaster) pays much less, but that is not the ` + "`ssh host true`" + ` the
brief compares with. The sshd here runs with PAM, as Debian's does (the
lab's alice has no password, and sshd without PAM refuses such a locked
account), and without DNS lookups. All three lab hosts share the
machine's CPUs, so the target's work and the home's compete with the
driver; a busy machine stretches the tail (p99) most.
`
