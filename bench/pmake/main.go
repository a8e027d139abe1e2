// Command pmake measures `pmake -j` of real C projects across 1, 2, 4 and
// 8 CPU-limited lab hosts, beside distcc on the same hosts, in one run:
//
//	sudo flock /tmp/sprite-lab.lock go run ./bench/pmake [-project lua5.4,nginx] [-hosts 1,2,4,8] [-cpus Q] [-runs 3]
//
// (or `sudo bash scripts/bench pmake`). The projects (projects.go) come
// from Debian's source packages (scripts/project), each built with its
// upstream's own Makefile: Lua 5.4, whose largest compile is a quarter of
// the build's work and bounds any spread of it, and nginx, about 120
// compiles of similar size, which shows how far the build spreads when the
// project allows it. Each project's results go to its own page under
// docs/bench/.
//
// For each host count N it brings up a lab of N hosts, each limited to Q
// CPUs (cgroup quota; default: the machine's CPUs divided by the largest
// N, at most 1, so that the largest lab fits in the machine), puts three
// copies of the tree in alice's home on h1, and times there, as alice:
//
//   - make -j on h1 alone (N = 1 only: the baseline every speedup divides);
//   - pmake -j (its default -j: the hosts' slots plus h1's CPUs);
//   - distcc: distccd started on every host with `sprite lab exec`, and
//     `make -j2N CC="distcc gcc -std=gnu99"` on h1 with DISTCC_HOSTS
//     naming h1 (localhost) and the others, each with one slot per CPU.
//
// pmake and distcc are built -runs times each (default 3), alternating, on
// fresh copies of the tree; the table gives each one's median and range,
// because on a shared 2-CPU machine one build of either varies by a
// quarter or more from the next.
//
// Every build's products must be byte-identical to the baseline's. It prints a table and writes docs/bench/pmake.md with an
// ASCII chart. The lab is torn down at the end.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"sprite/bench/internal/benchlab"
)

const h1Home = "/var/lib/sprite-lab/hosts/h1/home/alice"

var (
	sprite string
	runs   int     // -runs
	proj   project // the project being measured
)

func main() {
	hostsFlag := flag.String("hosts", "1,2,4,8", "host counts to measure, comma-separated")
	cpus := flag.Float64("cpus", 0, "CPU quota of each host (default: the machine's CPUs / the largest host count, at most 1)")
	projFlag := flag.String("project", "lua5.4,nginx", "projects to build, comma-separated: "+projectNames())
	out := flag.String("out", "", "where to write the results (one project only; default: its page under docs/bench)")
	flag.IntVar(&runs, "runs", 3, "builds of each kind per host count, alternating; the table gives the medians")
	flag.Parse()
	if runs < 1 {
		fmt.Fprintf(os.Stderr, "bench pmake: -runs %d: want at least 1\n", runs)
		os.Exit(2)
	}
	var counts []int
	for _, f := range strings.Split(*hostsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 16 {
			fmt.Fprintf(os.Stderr, "bench pmake: -hosts %q: want host counts from 1 to 16\n", *hostsFlag)
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	var ps []project
	for _, name := range strings.Split(*projFlag, ",") {
		p, ok := projects[strings.TrimSpace(name)]
		if !ok {
			fmt.Fprintf(os.Stderr, "bench pmake: -project %q: want %s\n", *projFlag, projectNames())
			os.Exit(2)
		}
		ps = append(ps, p)
	}
	if *out != "" {
		if len(ps) != 1 {
			fmt.Fprintf(os.Stderr, "bench pmake: -out names one page; with %d projects, leave it out\n", len(ps))
			os.Exit(2)
		}
		ps[0].out = *out
	}
	for _, p := range ps {
		proj = p
		if err := runBench(counts, *cpus); err != nil {
			fmt.Fprintf(os.Stderr, "bench pmake: %s: %v\n", p.pkg, err)
			os.Exit(1)
		}
	}
}

// row is one host count's results.
type row struct {
	hosts                 int
	pmake, distcc         time.Duration
	pmakeRemote, pmakeAll int              // jobs that ran on another host, of all jobs
	homeWhy               map[string]int   // pmake's jobs at home, by the reason --stats gives
	distccRemote          int              // compiles distccd did on another host
	homeDaemonCPU         time.Duration    // h1's daemon's CPU time during pmake's build
	pmakeRange            [2]time.Duration // fastest and slowest of the runs
	distccRange           [2]time.Duration
}

func runBench(counts []int, quota float64) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (it brings up labs): sudo bash scripts/bench pmake")
	}
	for _, b := range []string{"make", "gcc", "distcc", "distccd", "apt-get"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s: %w (sudo bash scripts/setup installs make, gcc, distcc and dpkg-dev)", b, err)
		}
	}
	maxN := 0
	for _, n := range counts {
		maxN = max(maxN, n)
	}
	if quota <= 0 {
		quota = math.Min(1, math.Floor(100*float64(runtime.NumCPU())/float64(maxN))/100)
	}
	dir, err := os.MkdirTemp("", "sprite-bench-pmake")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sprite = filepath.Join(dir, "sprite")
	for _, m := range []string{"sprite", "pmake"} {
		build := []string{"go", "build", "-o", filepath.Join(dir, m), "./cmd/" + m}
		if m == "pmake" { // as scripts/setup builds it: without cgo, it starts faster per recipe line
			build = append([]string{"env", "CGO_ENABLED=0"}, build...)
		}
		if err := benchlab.Run(build[0], build[1:]...); err != nil {
			return fmt.Errorf("build %s: %w", m, err)
		}
	}
	if err := benchlab.Run("bash", "scripts/project", "-p", proj.pkg, proj.src()); err != nil {
		return fmt.Errorf("fetch the project: %w", err)
	}
	var base time.Duration
	var baseSum string
	var rows []row
	defer benchlab.Run(sprite, "lab", "down")
	for _, n := range counts {
		fmt.Fprintf(os.Stderr, "== %d hosts, %.2f CPUs each\n", n, quota)
		benchlab.Run(sprite, "lab", "down")
		if err := benchlab.Run(sprite, "lab", "up", "--hosts", strconv.Itoa(n), "--cpus", fmt.Sprint(quota), "--idle-after", "2s"); err != nil {
			return fmt.Errorf("lab up %d: %w", n, err)
		}
		if err := setup(n); err != nil {
			return err
		}
		if base == 0 {
			d, err := timed("cd ~/" + proj.tree("make") + " && make -j >/tmp/make.log 2>&1")
			if err != nil {
				return fmt.Errorf("make -j on h1: %w", err)
			}
			base = d
			if baseSum, err = sums(proj.tree("make")); err != nil {
				return err
			}
		}
		r := row{hosts: n}
		if err := measure(n, baseSum, &r); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  pmake: %d of %d jobs on other hosts; distcc: %d compiles on other hosts\n", r.pmakeRemote, r.pmakeAll, r.distccRemote)
		rows = append(rows, r)
		if err := benchlab.Run(sprite, "lab", "down"); err != nil {
			return fmt.Errorf("lab down: %w", err)
		}
	}
	md := report(rows, base, quota)
	fmt.Print(md)
	return os.WriteFile(proj.out, []byte(md), 0o644)
}

// measure builds with pmake and with distcc, runs times each, alternating
// (so that a slow spell of the machine falls on both), and keeps each
// one's median run in r.
func measure(n int, baseSum string, r *row) error {
	var ps, ds []row
	for k := range runs {
		if k > 0 {
			if err := freshTrees(proj.tree("pmake"), proj.tree("distcc")); err != nil {
				return err
			}
		}
		if err := waitIdle(n, 60*time.Second); err != nil {
			return err
		}
		var p row
		var err error
		cpu0 := daemonCPU("h1")
		if p.pmake, err = timed("cd ~/" + proj.tree("pmake") + " && pmake -j --stats >/tmp/pmake.log 2>/tmp/pmake.stats"); err != nil {
			stats, _ := os.ReadFile("/var/lib/sprite-lab/hosts/h1/tmp/pmake.stats")
			return fmt.Errorf("pmake with %d hosts: %w\n%s", n, err, stats)
		}
		p.homeDaemonCPU = daemonCPU("h1") - cpu0
		stats, _ := os.ReadFile("/var/lib/sprite-lab/hosts/h1/tmp/pmake.stats")
		p.pmakeRemote, p.pmakeAll, p.homeWhy = countJobs(string(stats))
		if err := same(baseSum, proj.tree("pmake")); err != nil {
			return err
		}
		ps = append(ps, p)
		if k == 0 {
			if err := startDistccd(n); err != nil {
				return err
			}
		}
		var d row
		before := distccCompiles(n)
		if d.distcc, err = timed(distccBuild(n)); err != nil {
			return fmt.Errorf("distcc with %d hosts: %w", n, err)
		}
		if err := same(baseSum, proj.tree("distcc")); err != nil {
			return err
		}
		d.distccRemote = distccCompiles(n) - before
		if n > 1 && d.distccRemote == 0 {
			log, _ := os.ReadFile("/var/lib/sprite-lab/hosts/h1/tmp/distcc.log")
			return fmt.Errorf("distcc compiled nothing on h2..h%d (see distccd's log in each host's /tmp):\n%s", n, log)
		}
		ds = append(ds, d)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].pmake < ps[j].pmake })
	sort.Slice(ds, func(i, j int) bool { return ds[i].distcc < ds[j].distcc })
	p, d := ps[len(ps)/2], ds[len(ds)/2]
	r.pmake, r.pmakeRemote, r.pmakeAll, r.homeWhy, r.homeDaemonCPU = p.pmake, p.pmakeRemote, p.pmakeAll, p.homeWhy, p.homeDaemonCPU
	r.distcc, r.distccRemote = d.distcc, d.distccRemote
	r.pmakeRange = [2]time.Duration{ps[0].pmake, ps[len(ps)-1].pmake}
	r.distccRange = [2]time.Duration{ds[0].distcc, ds[len(ds)-1].distcc}
	return nil
}

// freshTrees replaces trees in alice's home on h1 by clean copies.
func freshTrees(trees ...string) error {
	for _, d := range trees {
		dst := filepath.Join(h1Home, d)
		os.RemoveAll(dst)
		if err := benchlab.Run("cp", "-a", proj.src(), dst); err != nil {
			return err
		}
		if err := benchlab.Run("chown", "-R", "alice:", dst); err != nil {
			return err
		}
	}
	return nil
}

// setup waits for the namespace and copies the tree three times into
// alice's home on h1.
func setup(n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for i := 2; i <= n; i++ {
		for benchlab.Sh(sprite, fmt.Sprintf("h%d", i), "", "test -d /sprite/home/h1/alice") != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("h%d's /sprite/home/h1 did not appear within 60s", i)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := freshTrees(proj.tree("make"), proj.tree("pmake"), proj.tree("distcc")); err != nil {
		return err
	}
	return nil
}

// startDistccd starts distccd on every host, after pmake's build, so that
// its start does not count as the hosts' own load while pmake runs.
func startDistccd(n int) error {
	for i := 1; i <= n; i++ {
		h := fmt.Sprintf("h%d", i)
		script := fmt.Sprintf(`: > /tmp/distccd.log && chmod 666 /tmp/distccd.log
distccd --daemon --allow 10.213.0.0/24 --listen 10.213.0.%d --jobs %d --log-file /tmp/distccd.log --log-level info`, 10+i, 1)
		if err := benchlab.Sh(sprite, h, "", script); err != nil {
			return fmt.Errorf("distccd on %s: %w", h, err)
		}
	}
	return nil
}

// waitIdle waits until h1 sees the other hosts idle (they can be lent).
func waitIdle(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, _ := exec.Command(sprite, "lab", "exec", "h1", "--", "sprite", "hosts", "--json").Output()
		if strings.Count(string(out), `"idle": true`) >= n-1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("h1 did not see %d idle hosts within %v:\n%s", n-1, timeout, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// daemonCPU is the CPU time (user + system) host's daemon has used.
func daemonCPU(host string) time.Duration {
	out, err := exec.Command(sprite, "lab", "exec", host, "--", "sh", "-c", "cat /proc/$(cat /run/sprite/sprite.pid)/stat").Output()
	if err != nil {
		return 0
	}
	s := string(out)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s) // from field 3 (state) on: utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100 // USER_HZ
}

// distccBuild is the distcc build's script: one slot per host (each has
// under one CPU), twice as many jobs as hosts so that preprocessing on h1
// overlaps the compiles.
func distccBuild(n int) string {
	hosts := []string{"localhost/1"}
	for i := 2; i <= n; i++ {
		hosts = append(hosts, fmt.Sprintf("10.213.0.%d/1", 10+i))
	}
	return fmt.Sprintf(`mkdir -p /tmp/distcc-alice && cd ~/%s && DISTCC_HOSTS='%s' DISTCC_DIR=/tmp/distcc-alice make -j%d CC='%s' >/tmp/distcc.log 2>&1`,
		proj.tree("distcc"), strings.Join(hosts, " "), 2*n, proj.distccCC)
}

// distccCompiles counts the compiles distccd finished on h2..hN.
func distccCompiles(n int) int {
	c := 0
	for i := 2; i <= n; i++ {
		b, _ := os.ReadFile(fmt.Sprintf("/var/lib/sprite-lab/hosts/h%d/tmp/distccd.log", i))
		c += strings.Count(string(b), "COMPILE_OK")
	}
	return c
}

// statsRow is a job's row of --stats: target, host, start, seconds, status.
var statsRow = regexp.MustCompile(`(?m)^(\S+)\s+(h\d+|home)\s+([0-9.]+)\s+([0-9.]+|-)\s+(\S+)`)

// countJobs reads pmake --stats: jobs on other hosts, all jobs, and the
// jobs at home by the reason given (the WHY HOME column, 28 wide, where
// the header puts it).
func countJobs(stats string) (remote, all int, why map[string]int) {
	why = map[string]int{}
	col := -1
	for _, line := range strings.Split(stats, "\n") {
		if i := strings.Index(line, "WHY HOME"); i >= 0 && strings.HasPrefix(line, "TARGET") {
			col = len([]rune(line[:i])) // the columns are padded in runes
			continue
		}
		m := statsRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		all++
		switch m[2] {
		case "home":
			w, rs := "?", []rune(line)
			if col >= 0 && len(rs) > col {
				w = strings.TrimSpace(string(rs[col:min(len(rs), col+28)]))
			}
			why[w]++
		case "h1":
		default:
			remote++
		}
	}
	return remote, all, why
}

// sums hashes a tree's products.
func sums(tree string) (string, error) {
	h := sha256.New()
	for _, f := range proj.outputs {
		b, err := os.ReadFile(filepath.Join(h1Home, tree, f))
		if err != nil {
			return "", fmt.Errorf("%s: %w", tree, err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func same(base, tree string) error {
	s, err := sums(tree)
	if err != nil {
		return err
	}
	if s != base {
		return fmt.Errorf("%s's %s differ from the local make's", tree, strings.Join(proj.outputs, ", "))
	}
	return nil
}

// timed runs script as alice on h1 and returns how long it took there.
func timed(script string) (time.Duration, error) {
	full := "s=$(date +%s%N); " + script + " || exit 1; e=$(date +%s%N); echo $((e-s))"
	outb, err := exec.Command(sprite, "lab", "exec", "h1", "--user", "alice", "--", "sh", "-c", full).Output()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", script, err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(outb)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: timing %q: %w", script, outb, err)
	}
	fmt.Fprintf(os.Stderr, "  %-80.80s %s\n", script, time.Duration(ns).Round(time.Millisecond))
	return time.Duration(ns), nil
}

func report(rows []row, base time.Duration, quota float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# pmake benchmark: %s\n\n", proj.title)
	fmt.Fprintf(&b, "Run %s on a %d-CPU %s machine (`sudo bash scripts/bench pmake`, i.e. `go run ./bench/pmake -project %s`). "+
		"The project: %s "+
		"Each lab host is limited to **%.2f CPUs** (cgroup quota in a 10 ms period): the brief asks for one CPU per host, but "+
		"this machine has %d, so the quota is scaled down to keep the largest lab within the machine. "+
		"Every build runs as alice in her home on h1; *make -j* is h1 alone, the baseline of every speedup. "+
		"*pmake* is `pmake -j --stats` (default -j: the session's slots plus h1's); *distcc* is `make -j2N "+
		"CC=\"%s\"` with distccd (Debian's) on every host, h1 as localhost. Every build's "+
		"%s are byte-identical to the baseline's (checked).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.GOARCH, proj.pkg, proj.about,
		quota, runtime.NumCPU(), proj.distccCC, strings.Join(proj.outputs, ", "))
	fmt.Fprintf(&b, "Baseline, make -j on h1 alone: **%.1f s**\n\n", base.Seconds())
	fmt.Fprintf(&b, "Each row: the median of %d builds of each kind, pmake and distcc alternating (fastest and slowest in brackets); the job counts are the median build's.\n\n", runs)
	fmt.Fprintf(&b, "| hosts | pmake | pmake speedup | jobs on other hosts | distcc | distcc speedup | compiles on other hosts | pmake vs distcc |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %.1f s (%.1f–%.1f) | %.2fx | %d of %d | %.1f s (%.1f–%.1f) | %.2fx | %d | %.2fx faster |\n", r.hosts,
			r.pmake.Seconds(), r.pmakeRange[0].Seconds(), r.pmakeRange[1].Seconds(), base.Seconds()/r.pmake.Seconds(), r.pmakeRemote, r.pmakeAll,
			r.distcc.Seconds(), r.distccRange[0].Seconds(), r.distccRange[1].Seconds(), base.Seconds()/r.distcc.Seconds(), r.distccRemote, r.distcc.Seconds()/r.pmake.Seconds())
	}
	b.WriteString("\nh1's daemon's CPU time during pmake's build (the home side of every job: placement, stdio, and the file server every remote compile reads through):\n\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "- %d hosts: %.2f s CPU over %.1f s (h1's quota allows %.1f s)\n", r.hosts, r.homeDaemonCPU.Seconds(), r.pmake.Seconds(), r.pmake.Seconds()*quota)
	}
	b.WriteString("\npmake's jobs at home, by the reason its --stats gives:\n\n")
	for _, r := range rows {
		var ws []string
		for w, k := range r.homeWhy {
			ws = append(ws, fmt.Sprintf("%d %q", k, w))
		}
		sort.Strings(ws)
		fmt.Fprintf(&b, "- %d hosts: %s\n", r.hosts, strings.Join(ws, ", "))
	}
	b.WriteString("\nSpeedup over make -j on one host (`#` pmake, `=` distcc; one mark per 0.25x):\n\n```\n")
	for _, r := range rows {
		ps, ds := base.Seconds()/r.pmake.Seconds(), base.Seconds()/r.distcc.Seconds()
		fmt.Fprintf(&b, "%2d hosts pmake  %-40s %.2fx\n", r.hosts, strings.Repeat("#", int(math.Round(ps*4))), ps)
		fmt.Fprintf(&b, "         distcc %-40s %.2fx\n", strings.Repeat("=", int(math.Round(ds*4))), ds)
	}
	b.WriteString("```\n")
	if len(rows) > 0 {
		last := rows[len(rows)-1]
		ps := base.Seconds() / last.pmake.Seconds()
		goal := func(ok bool) string {
			if ok {
				return "met"
			}
			return "**not met**"
		}
		fmt.Fprintf(&b, "\n| goal (brief) | this run |\n|---|---|\n")
		fmt.Fprintf(&b, "| >= 7x on 8 hosts vs 1 | %.2fx on %d hosts: %s |\n", ps, last.hosts, goal(last.hosts >= 8 && ps >= 7))
		faster := goal(last.pmake < last.distcc)
		if last.pmakeRange[1] >= last.distccRange[0] && last.distccRange[1] >= last.pmakeRange[0] {
			faster = "**not shown**: the two kinds' ranges overlap, a tie within this machine's noise"
		}
		fmt.Fprintf(&b, "| faster than distcc on the same hosts | %.2fx distcc's speed on %d hosts: %s |\n",
			last.distcc.Seconds()/last.pmake.Seconds(), last.hosts, faster)
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "\nMachine load average (1, 5, 15 min) at the end: %s (other work on the machine inflates every figure).\n", strings.TrimSpace(string(la)))
	}
	b.WriteString(proj.notes)
	return b.String()
}
