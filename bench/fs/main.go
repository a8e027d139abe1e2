// Command fs measures the global namespace from another host, beside the
// local disk and sshfs, in one run:
//
//	sudo flock /tmp/sprite-lab.lock go run ./bench/fs [-mib 1024] [-runs 5] [-src zlib.orig.tar.bz2]
//
// It builds sprite, brings up a 2-host lab (h1 serves, h2 measures; no CPU
// quota), starts sshd on h1 and mounts h1's /home/alice on h2 with sshfs
// (Debian's sshfs and openssh-server packages), and runs, as alice on h2,
// on each of: h2's own /home (local), /sprite/home/h1/alice (sprite) and
// the sshfs mount:
//
//   - sequential write of a MiB-sized file (dd, 1 MiB blocks, fsync at the end)
//   - sequential read of it with every cache dropped (cold), and again (warm)
//   - untar of a real source tree (Debian's zlib source), median of -runs
//   - configure and make -j2 of the first tree untarred
//   - a null make (nothing to rebuild) in that tree, median of 5
//   - ls -l of a directory of 1000 files made on the serving host's own
//     disk (h2's for local, h1's for sprite and sshfs): no cache has it;
//     median of -runs, each of a directory of its own
//
// Untar and ls -l run in rounds, each round on the three targets in turn,
// so that a neighbour's load on this machine falls on all of them alike.
//
// Every time is taken inside h2 (no lab exec overhead). It prints a table
// and writes docs/bench/fs.md. The lab is torn down at the end.
//
// The source tarball: Debian's zlib .orig.tar.*, fetched on the first run
// with `apt-get source --download-only zlib` into /var/tmp/sprite-bench
// (scripts/setup adds the deb-src line it needs); -src names another.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	h1IP     = "10.213.0.11"
	sshPort  = 2222
	hostTmp2 = "/var/lib/sprite-lab/hosts/h2/tmp"
	hostTmp1 = "/var/lib/sprite-lab/hosts/h1/tmp"
)

type target struct {
	name, dir string
	// server and its dir: where the files dir shows are on disk
	server, serverDir string
}

func main() {
	mib := flag.Int("mib", 1024, "size of the sequential file in MiB")
	src := flag.String("src", "", "source tarball to untar and make (default: Debian's zlib, fetched into "+srcCache+")")
	out := flag.String("out", "docs/bench/fs.md", "where to write the results")
	runs := flag.Int("runs", 5, "rounds of untar and of ls -l, each round on every target in turn")
	flag.Parse()
	if *runs < 1 {
		fmt.Fprintf(os.Stderr, "bench fs: -runs %d: give 1 or more\n", *runs)
		os.Exit(2)
	}
	if err := runBench(*mib, *runs, *src, *out); err != nil {
		fmt.Fprintf(os.Stderr, "bench fs: %v\n", err)
		os.Exit(1)
	}
}

var sprite string

// srcCache is where the zlib source package is kept between runs.
const srcCache = "/var/tmp/sprite-bench"

// sourceTarball returns src, or Debian's zlib tarball from srcCache,
// fetched there first when it is missing.
func sourceTarball(src string) (string, error) {
	if src != "" {
		if _, err := os.Stat(src); err != nil {
			return "", fmt.Errorf("source tarball: %w", err)
		}
		return src, nil
	}
	find := func() string {
		m, _ := filepath.Glob(filepath.Join(srcCache, "zlib_*.orig.tar.*"))
		if len(m) == 0 {
			return ""
		}
		return m[0]
	}
	if t := find(); t != "" {
		return t, nil
	}
	if err := os.MkdirAll(srcCache, 0o755); err != nil {
		return "", fmt.Errorf("source tarball: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench fs: fetching Debian's zlib source package into %s\n", srcCache)
	cmd := exec.Command("apt-get", "source", "--download-only", "-q", "zlib")
	cmd.Dir, cmd.Stderr = srcCache, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-get source zlib: %w (it needs a deb-src line for Debian's archive: sudo bash scripts/setup adds one; or give -src a tarball)", err)
	}
	if t := find(); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("apt-get source zlib left no zlib_*.orig.tar.* in %s; give -src a tarball", srcCache)
}

func runBench(mib, runs int, src, out string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (it brings up a lab)")
	}
	src, err := sourceTarball(src)
	if err != nil {
		return err
	}
	for _, b := range []string{"sshfs", "/usr/sbin/sshd", "make", "gcc"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s: %w (sudo bash scripts/setup installs sshfs, openssh-server, make and gcc)", b, err)
		}
	}
	dir, err := os.MkdirTemp("", "sprite-bench-fs")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sprite = filepath.Join(dir, "sprite")
	if err := run("go", "build", "-o", sprite, "./cmd/sprite"); err != nil {
		return fmt.Errorf("build sprite: %w", err)
	}
	run(sprite, "lab", "down")
	if err := run(sprite, "lab", "up", "--hosts", "2"); err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	defer run(sprite, "lab", "down")
	if err := setup(src); err != nil {
		return err
	}
	targets := []target{
		{"local disk (h2)", "/home/alice/bench", "h2", "/home/alice/bench"},
		{"sprite (/sprite/home/h1)", "/sprite/home/h1/alice/bench", "h1", "/home/alice/bench"},
		// Not sprite's directory: sshfs would cache for 20 s a
		// directory that sprite's run removed and made again.
		{"sshfs (h1 over ssh)", "/tmp/sshfs/bench-sshfs", "h1", "/home/alice/bench-sshfs"},
	}
	res, err := measureAll(targets, mib, runs)
	if err != nil {
		return err
	}
	table := report(targets, res, mib, runs)
	fmt.Print(table)
	return os.WriteFile(out, []byte(table), 0o644)
}

// setup waits for h2's namespace, starts sshd on h1 and mounts sshfs on h2.
func setup(src string) error {
	deadline := time.Now().Add(30 * time.Second)
	for sh("h2", "", "test -d /sprite/home/h1/alice") != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("h2's /sprite/home/h1 did not appear within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	cp := func(from, to string) error { return run("cp", from, to) }
	if err := cp(src, filepath.Join(hostTmp2, "src.tar.bz2")); err != nil {
		return err
	}
	if err := sh("h2", "", "bunzip2 /tmp/src.tar.bz2 && chmod 644 /tmp/src.tar"); err != nil {
		return err
	}
	script := fmt.Sprintf(`set -e
mkdir -p /run/sshd /tmp/ssh && cd /tmp/ssh
ssh-keygen -q -t ed25519 -N '' -f host_key
ssh-keygen -q -t ed25519 -N '' -f client_key
cp client_key.pub authorized_keys
chmod 700 /tmp/ssh
/usr/sbin/sshd -p %d -h /tmp/ssh/host_key -o AuthorizedKeysFile=/tmp/ssh/authorized_keys -o PermitRootLogin=prohibit-password -o PidFile=/tmp/ssh/sshd.pid -o StrictModes=no`, sshPort)
	if err := sh("h1", "", script); err != nil {
		return fmt.Errorf("sshd on h1: %w", err)
	}
	if err := cp(filepath.Join(hostTmp1, "ssh", "client_key"), filepath.Join(hostTmp2, "client_key")); err != nil {
		return err
	}
	mount := fmt.Sprintf(`set -e; chmod 600 /tmp/client_key; mkdir -p /tmp/sshfs
sshfs -p %d -o IdentityFile=/tmp/client_key,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,allow_other root@%s:/home/alice /tmp/sshfs
mkdir -p /tmp/sshfs/bench-sshfs && chown alice: /tmp/sshfs/bench-sshfs`, sshPort, h1IP)
	if err := sh("h2", "", mount); err != nil {
		return fmt.Errorf("sshfs on h2: %w", err)
	}
	return nil
}

// measureAll runs every workload as alice on h2. The sequential file and
// the build run on one target after the other; untar and ls -l run in
// rounds, each round on every target in turn, so that a neighbour's load
// on this machine falls on all of them alike, and the table gives each
// one's median.
func measureAll(targets []target, mib, runs int) (map[string]map[string]stat, error) {
	res := map[string]map[string]stat{}
	for _, t := range targets {
		fmt.Fprintf(os.Stderr, "== %s\n", t.name)
		if err := sh("h2", "alice", "rm -rf "+t.dir+" && mkdir -p "+t.dir); err != nil {
			return nil, err
		}
		r, err := measureFile(t, mib)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		res[t.name] = r
	}
	untar := func(t target, i int) (time.Duration, error) {
		dropCaches()
		return timed(fmt.Sprintf("mkdir %s/u%d && tar xf /tmp/src.tar -C %s/u%d", t.dir, i, t.dir, i))
	}
	// As root, then given to alice: through sshfs, whose ssh user is
	// root, the bench directory on h1 is root's.
	lsl := func(t target, i int) (time.Duration, error) {
		d := fmt.Sprintf("%s/ls%d", t.serverDir, i)
		if err := sh(t.server, "", "mkdir "+d+" && cd "+d+" && for i in $(seq 1000); do echo $i > f$i; done && chown -R alice: ."); err != nil {
			return 0, err
		}
		return timed(fmt.Sprintf("ls -l %s/ls%d >/dev/null", t.dir, i))
	}
	for _, w := range []struct {
		key string
		run func(target, int) (time.Duration, error)
	}{{"untar", untar}, {"lsl", lsl}} {
		fmt.Fprintf(os.Stderr, "== %s, %d rounds\n", w.key, runs)
		got := map[string][]float64{}
		for i := range runs {
			for _, t := range targets {
				d, err := w.run(t, i)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", t.name, err)
				}
				got[t.name] = append(got[t.name], d.Seconds())
			}
		}
		for _, t := range targets {
			res[t.name][w.key] = statOf(got[t.name])
		}
	}
	for _, t := range targets {
		fmt.Fprintf(os.Stderr, "== %s: build\n", t.name)
		if err := measureBuild(t, res[t.name]); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		sh("h2", "alice", "rm -rf "+t.dir)
	}
	return res, nil
}

// stat is a workload's median and range over its runs.
type stat struct{ med, lo, hi float64 }

func statOf(v []float64) stat {
	v = slices.Clone(v)
	sort.Float64s(v)
	return stat{med: v[len(v)/2], lo: v[0], hi: v[len(v)-1]}
}

// measureFile writes, then reads cold and warm, a file of mib MiB on t.
func measureFile(t target, mib int) (map[string]stat, error) {
	r := map[string]stat{}
	f := t.dir + "/big"
	w, err := timed(fmt.Sprintf("dd if=/dev/zero of=%s bs=1M count=%d conv=fsync status=none", f, mib))
	if err != nil {
		return nil, err
	}
	r["write"] = statOf([]float64{float64(mib) / w.Seconds()})
	dropCaches()
	rd, err := timed(fmt.Sprintf("dd if=%s of=/dev/null bs=1M status=none", f))
	if err != nil {
		return nil, err
	}
	r["read"] = statOf([]float64{float64(mib) / rd.Seconds()})
	rd2, err := timed(fmt.Sprintf("dd if=%s of=/dev/null bs=1M status=none", f))
	if err != nil {
		return nil, err
	}
	r["reread"] = statOf([]float64{float64(mib) / rd2.Seconds()})
	sh("h2", "alice", "rm -f "+f)
	return r, nil
}

// measureBuild configures and makes the first untarred tree on t, then
// makes it again five times with nothing to do.
func measureBuild(t target, r map[string]stat) error {
	tree := "cd " + t.dir + "/u0/zlib-* && "
	cfg, err := timed(tree + "./configure >/dev/null && make -j2 >/dev/null 2>&1")
	if err != nil {
		return err
	}
	r["build"] = statOf([]float64{cfg.Seconds()})
	var nulls []float64
	for range 5 {
		d, err := timed(tree + "make >/dev/null")
		if err != nil {
			return err
		}
		nulls = append(nulls, d.Seconds())
	}
	r["nullmake"] = statOf(nulls)
	return nil
}

func dropCaches() { sh("h2", "", "sync; echo 3 > /proc/sys/vm/drop_caches") }

// timed runs script as alice on h2 and returns how long it took there.
func timed(script string) (time.Duration, error) {
	full := "s=$(date +%s%N); " + script + " || exit 1; e=$(date +%s%N); echo $((e-s))"
	outb, err := exec.Command(sprite, "lab", "exec", "h2", "--user", "alice", "--", "sh", "-c", full).Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return 0, fmt.Errorf("%s: %w: %s", script, err, bytes.TrimSpace(ee.Stderr))
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", script, err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(outb)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: timing %q: %w", script, outb, err)
	}
	fmt.Fprintf(os.Stderr, "  %-70.70s %s\n", script, time.Duration(ns).Round(time.Millisecond))
	return time.Duration(ns), nil
}

func sh(host, user, script string) error {
	args := []string{"lab", "exec", host}
	if user != "" {
		args = append(args, "--user", user)
	}
	return run(sprite, append(args, "--", "sh", "-c", script)...)
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func report(targets []target, res map[string]map[string]stat, mib, runs int) string {
	var b strings.Builder
	local, spr, ssh := res[targets[0].name], res[targets[1].name], res[targets[2].name]
	fmt.Fprintf(&b, "# sprite file system benchmark\n\n")
	fmt.Fprintf(&b, "Run %s on a %d-CPU %s machine (`go run ./bench/fs`): a 2-host lab, no CPU quota; "+
		"every workload runs as alice on h2. *sprite* is h1's /home through h2's /sprite, *sshfs* h1's "+
		"/home/alice mounted on h2 with sshfs over ssh (a directory of its own there), *local* h2's own /home. Both hosts share one kernel, "+
		"so \"cold\" reads drop the page cache of both (`drop_caches`).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.GOARCH)
	fmt.Fprintf(&b, "Untar and ls -l run in %d rounds, each round on local, sprite and sshfs in turn, so that "+
		"a neighbour's load on this virtual machine falls on all three alike: their rows give the median "+
		"and, in brackets, the fastest and slowest run. The sequential file and the build run once on each, "+
		"one after the other: compare runs, not one row.", runs)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, " Machine load average (1, 5, 15 min) at the end: %s.", strings.Join(strings.Fields(string(la))[:3], " "))
	}
	fmt.Fprintf(&b, "\n\n| workload | local | sprite | sshfs | sprite/local | sprite vs sshfs |\n|---|---|---|---|---|---|\n")
	rate := func(name, key string) {
		fmt.Fprintf(&b, "| %s | %.0f MB/s | %.0f MB/s | %.0f MB/s | %.0f%% | %.2fx |\n", name,
			local[key].med, spr[key].med, ssh[key].med, 100*spr[key].med/local[key].med, spr[key].med/ssh[key].med)
	}
	cell := func(st stat) string {
		if st.lo == st.hi {
			return fmt.Sprintf("%.3f s", st.med)
		}
		return fmt.Sprintf("%.3f s (%.3f–%.3f)", st.med, st.lo, st.hi)
	}
	secs := func(name, key string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2fx the time | %.2fx faster |\n", name,
			cell(local[key]), cell(spr[key]), cell(ssh[key]), spr[key].med/local[key].med, ssh[key].med/spr[key].med)
	}
	rate(fmt.Sprintf("sequential write, %d MiB, fsync", mib), "write")
	rate(fmt.Sprintf("sequential read, %d MiB, cold", mib), "read")
	rate(fmt.Sprintf("sequential read, %d MiB, warm", mib), "reread")
	secs(fmt.Sprintf("untar zlib source (median of %d)", runs), "untar")
	secs("configure + make -j2", "build")
	secs("null make (median of 5)", "nullmake")
	secs(fmt.Sprintf("ls -l of 1000 new files (median of %d)", runs), "lsl")
	fmt.Fprintf(&b, "\nGoals (brief): sequential read >= 70%% of local and >= 2x sshfs; "+
		"metadata-heavy work (untar, null make, ls -l) within 2x of local and >= 2x faster than sshfs.\n")
	goal := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	m := func(r map[string]stat, key string) float64 { return r[key].med }
	fmt.Fprintf(&b, "\n| goal | this run |\n|---|---|\n")
	fmt.Fprintf(&b, "| cold sequential read >= 70%% of local | %.0f%%: %s |\n", 100*m(spr, "read")/m(local, "read"), goal(m(spr, "read") >= 0.7*m(local, "read")))
	fmt.Fprintf(&b, "| cold sequential read >= 2x sshfs | %.2fx: %s |\n", m(spr, "read")/m(ssh, "read"), goal(m(spr, "read") >= 2*m(ssh, "read")))
	for _, w := range []struct{ name, key string }{{"untar", "untar"}, {"null make", "nullmake"}, {"ls -l", "lsl"}} {
		fmt.Fprintf(&b, "| %s within 2x of local | %.1fx: %s |\n", w.name, m(spr, w.key)/m(local, w.key), goal(m(spr, w.key) <= 2*m(local, w.key)))
		fmt.Fprintf(&b, "| %s >= 2x faster than sshfs | %.2fx: %s |\n", w.name, m(ssh, w.key)/m(spr, w.key), goal(m(ssh, w.key) >= 2*m(spr, w.key)))
	}
	b.WriteString(notes)
	return b.String()
}

// notes explain where the time goes; they hold no figures of this run.
const notes = `
## Where the time goes

- Every FUSE request that reaches sprite is one round trip to the serving
  host: a message on the client's fs.session stream (metadata, and reads
  and writes of up to 64 KiB) or a QUIC stream of its own (larger reads
  and writes; package transport, whose benchmark,
  ` + "`go run ./bench/transport`" + `, puts a round trip on an open stream, as
  fs.session's, at about 0.2 ms, ten times TCP+TLS's, and one stream's
  throughput at 150 to 200 MB/s on this machine, a third of TCP+TLS's). Both hosts, their daemons and QUIC's
  per-packet work (about 1.4 KB a packet, each sealed, sent, received and
  opened on its own) share the machine's two CPUs: a round trip costs the
  two daemons together most of a millisecond of CPU.
- Untar: per file two round trips (three for a file with an execute
  bit): the create (whose reply carries the directory's new attributes,
  which the kernel asks for next; the lookup of the new name before it is
  answered by the client itself, in a directory it made, empty and watched
  by the server), and one fs.writev that carries every ` + "`write(2)`" + ` of
  the file and the times tar sets through its descriptor (write-behind,
  docs/consistency.md) and has the server invalidate the other hosts'
  copies, as a close would, before it answers (close-to-open: another
  host's stat sees the file at once). The close then has nothing to send
  and makes no call (since 2026-12-02; before, it was a third round trip).
  The release goes later, batched with others. sshfs pipelines its writes and closes and promises
  no cross-host consistency. A ` + "`perf record -a`" + ` of six untars puts
  most of the daemons' time in the kernel, waking and switching threads
  (the FUSE request, the QUIC packet each way, the server's worker), not
  in sprite's code: on this virtual machine a round trip costs about half
  a millisecond however little it carries. The local disk does the same
  work without a round trip, so "within 2x of local" is out of reach of
  any scheme that waits for a server per call.
- Cold sequential reads are bound by the CPU: the kernel asks for up to
  1 MiB at a time (the mount raises the FUSE read-ahead cap of 128 KiB to
  4 MiB), sprite splits each request into parallel 256 KiB calls whose
  data travels as raw frames (no encoding), and most of the time goes to
  quic-go's packets on both sides. Since 2026-12-03 the frames are read
  into the kernel's buffer for the request (the client) and a reused one
  (the server), and a frame's bytes are no longer copied into a buffer of
  their own to be sent; large writes go as raw frames too (fs.writedata;
  before, fs.write carried them in CBOR: encoded, framed and decoded into
  fresh buffers). In transport's benchmarks (go test -bench 'ReadData|
  WriteData' ./transport: both peers in one run, loopback) a 256 KiB read
  went from about 160 to 210 MB/s and a write from about 95 to 170 MB/s.
  Through /sprite (512 MiB with dd, alternating old and new daemons,
  same session): writes 62–72 MB/s before, 79–90 after; cold reads
  86–107 before, 94–113 after, within this machine's noise.
- Warm reads are served by the client's page cache: a file unchanged since
  this host last read it (the server's version check) is not fetched again.
- A compile on /sprite: one fs.open per file it includes (the version
  check; the pages stay cached), a lookup of each name new to the host,
  the object's create and its writes. Since 17:30 UTC on 2026-12-02 the
  fstat that follows each open is answered from the open's reply (the
  kernel asks again after every read from the server, having dropped the
  atime), and the assembler's reads of blocks it wrote, from what its
  descriptor wrote (the file was empty at its open): Lua's lcode.c,
  compiled on another host after lapi.c, makes 48 calls to the home host
  instead of 69 (counted at the server). The lookups are a compiler's
  search of each -I directory for each header (and for its precompiled
  form), mostly of names that are not there, and the kernel keeps the
  answers for 5 s only: a compile of nginx on another host made about
  470 lookups whenever that time had passed. Since the evening of
  2026-12-03 the third lookup within 5 s in a directory nobody listed
  lists it instead (at most 1024 entries), and the listing answers the
  rest, missing names and present ones, whatever else this host wrote
  meanwhile (only a change of that very file or of the directory
  stops it): such a compile makes 23 lookups and 8 readdirs, 113 calls
  in all (71 of them the opens), against about 560 before.
- A link on /sprite: GNU ld writes its output a section at a time and
  fstats it in between, about a hundred times for one of zlib's test
  programs. Since 2026-12-03 those fstats are answered by the writing
  host from what its descriptor wrote (the file was empty at its open),
  and its writes, held back, reach the server in one fs.writev at the
  close; before, each fstat was a call carrying the writes before it,
  and held-back writes of more than 64 KiB went an fs.write per extent
  (the servers did not serve fs.writev outside a session). zlib's
  make -j2 after its configure: about 2,700 calls to the home host
  before, 793 after (counted at the server); 5.5 s before, 4.3 s after,
  local 4.3 to 4.6 s (one run each, the same lab).
- A configure script on /sprite: an "echo ... >> config.log" for each
  check (over a hundred for zlib's) and "rm -f" of its test files. Since
  2026-12-03 a small append goes in an fs.writev that tells the other
  hosts as a close would, so its close makes no call (three calls to
  two), and an unlink's reply carries the directory's new attributes,
  which the kernel asks for at the next path walk (two calls to one):
  the first alone took zlib's configure from 644 calls to 527. Configure + make -j2
  went from 1.40x the local time (the run of 07:56 that day) to 1.12x.
- A null make is a few hundred stat(2) calls, a readdir of each
  directory it searches and an open of the makefile; names, attributes
  and (since 2026-12-02) directory listings are cached for 5 s and
  invalidated by the server, so a null make of zlib right after another
  makes two calls: the open of the Makefile (its version check) and its
  release (later, batched). Before that day it made six: a readdir of
  each of its two directories, and a getattr of each, which the kernel
  asks again after every readdir (it drops a directory's atime) and the
  client now answers from what it kept. One after a pause pays a
  readdir of each directory, whose entries (since the afternoon of
  2026-12-03) carry every name's attributes to the kernel; before, it
  paid a lookup through FUSE per file too (see ls -l). Since the evening
  of 2026-12-03 the kernel keeps the names the listing says are missing
  (make looks for RCS, SCCS and its targets in each directory; go-fuse
  had answered those lookups with an error, which the kernel never
  keeps) and reads a directory from its own cache while the client keeps
  the listing: a null make right after another went from 14 requests
  through FUSE to 7 (an opendir and a releasedir of each directory, the
  Makefile's open, flush and release), and from 8.1 to 7.6 ms (medians
  of six runs of 15, alternating daemons, one session). The local disk's figure is
  make's own start, which varies with the machine's load as much as the
  difference does (from 5 to 12 ms in the runs of 2026-12-02).
- ls -l of a directory of 1000 files no host had seen (made on the
  serving host's disk): since 2026-12-03 one fs.readdir whose reply
  carries every entry's attributes, and the client answers the 1000
  lookups that follow from it (the server counts it as asking about each
  entry, so their changes reach it). Before, each lookup was a call: 1.67
  s for the same listing (2026-12-03, a 2-host lab), 0.12 to 0.16 s
  after. Since the afternoon of 2026-12-03 the kernel reads directories with READDIRPLUS,
  whose entries the client fills from that listing (never with a call
  each: an entry the listing cannot answer goes without attributes, and
  one the kernel holds with more than half its 5 s left is not handed
  again), so
  the 1000 lookups through FUSE are gone too: in one session, 7 ls -l
  of a new directory each, alternating daemons, 140 ms before and 88 ms
  after (medians of 14); a second ls -l right after, 64 and 68 ms. A
  null make of zlib 6 s after the last (the names' cache has expired)
  went from 17 to 13 ms (medians of 10), and an rm -rf of zlib's
  tree (made on the serving host's disk) from 167 to 106 ms (medians
  of 10): rm no longer has each name looked up before its unlink.
  What was left of ls -l was 2000
  getxattrs (ls asks each file for its SELinux label and its ACL), each
  a request through the kernel of 10 to 50 us on this machine, answered
  by go-fuse and the client daemon ("no such attribute"). sshfs does not
  support extended attributes: the kernel stops asking after its first
  "not supported". /sprite carries no security labels and no POSIX ACLs
  (the serving host enforces its own, as the requesting user), and since
  the afternoon of 2026-12-03 it says so: "not supported", answered by
  the client daemon, after which ls stops asking for the rest of the
  file system (the kernel does not turn extended attributes off for the
  mount; a user attribute still reads). In one session, 7 ls -l of a new
  directory each, alternating daemons: 122 ms before, 34 ms after
  (medians of 14); a second ls -l right after, 89 and 12 ms. The
  server's part of such a listing was then half a stat of each entry,
  half a listxattr(2) of each (to tell the client which files have no
  extended attributes), through /proc's magic link of the directory:
  since the evening of 2026-12-03 it asks listxattrat(2) (Linux 6.13,
  the magic link before), and its record of which hosts asked about
  what no longer makes two maps per entry. Serving a listing of 1000
  files went from 4.3 to 1.9 ms (a Go benchmark of the server alone),
  and ls -l from 26.9 to 24.1 ms (medians of 21, alternating daemons,
  one session).
`
