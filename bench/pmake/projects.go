package main

import (
	"path/filepath"
	"slices"
	"strings"
)

// project is a real C project the benchmark builds: a Debian source
// package, as scripts/project puts it into a directory (configured where
// it needs configuring), built with its upstream's Makefile.
type project struct {
	pkg      string   // the source package: scripts/project -p
	name     string   // the trees' names in alice's home: NAME-make, NAME-pmake, NAME-distcc
	title    string   // the page's title
	about    string   // the page's description of the project and its build
	outputs  []string // the products, byte-identical in every build
	distccCC string   // CC for distcc's builds: distcc and the compiler the Makefile names
	out      string   // the page the results go to
	notes    string   // the page's notes: where the time goes (no figures of the run)
}

// src is where scripts/project keeps the project's tree between runs.
func (p project) src() string { return filepath.Join("/var/tmp/sprite-bench-pmake", p.name) }

// tree is the name of one of the three copies in alice's home on h1.
func (p project) tree(kind string) string { return p.name + "-" + kind }

var projects = map[string]project{
	"lua5.4": {
		pkg: "lua5.4", name: "lua", title: "Lua 5.4",
		about: "Lua 5.4.4 from Debian's lua5.4 source package (scripts/project), upstream's Makefile " +
			"(recursive: `make` runs `$(MAKE)` twice down into src/), about 35 compiles, an ar and two links.",
		outputs:  []string{"src/lua", "src/luac", "src/liblua.a"},
		distccCC: "distcc gcc -std=gnu99",
		out:      "docs/bench/pmake.md",
		notes:    commonNotes + luaNotes,
	},
	"nginx": {
		pkg: "nginx", name: "nginx", title: "nginx",
		about: "nginx 1.22.1 from Debian's nginx source package, configured by scripts/project " +
			"(its own configure, without the rewrite and gzip modules, whose libraries' headers are not installed, " +
			"and with -g0), upstream's Makefile (recursive: `make` runs `$(MAKE) -f objs/Makefile`), " +
			"about 120 compiles of similar size and one link.",
		outputs:  []string{"objs/nginx"},
		distccCC: "distcc cc",
		out:      "docs/bench/pmake-nginx.md",
		notes:    commonNotes + nginxNotes,
	},
}

// projectNames lists the projects, for the -project flag.
func projectNames() string {
	var ns []string
	for n := range projects {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return strings.Join(ns, ", ")
}

// commonNotes explain where the time goes in any project's build.
const commonNotes = `
## Where the time goes

- All hosts share one machine: N hosts at the quota above are N slices of
  the same CPUs, so the speedup measures how well the build spreads, not
  more hardware.
- h1 is a host like the others, with the same quota, and it carries the
  home side of every job: make, one job shell per recipe line, its daemon
  (each job's stream and stdio), and the file server of its /home, which
  every remote compile reads its sources and headers from and writes its
  object to. Under a small quota that home work bounds the speedup.
- distcc preprocesses every file on h1 (under the same quota) and ships the
  result; pmake ships nothing but the command: the remote compiler reads
  the tree through /sprite.
- "the session holds no idle host" among the reasons above: with one
  host there is none to hold. With more it means that the idle database
  withdrew the session's hosts during the build as busy (h1's daemon log:
  "grant withdrawn ... why=busy"); until 2026-12-02 the idle detector
  counted the daemon's own children (a job's init before it joins the
  job's cgroup, loginctl) as owner load, and a 0.25-CPU host turned busy
  under pmake's jobs.
`

// luaNotes are Lua's: its build's critical path.
const luaNotes = `- Where the machine's CPU goes (` + "`perf record -a`" + ` of one 8-host pmake
  build, 2026-12-02): the compiler (cc1, as) about 36%, the eight
  daemons 27% (each remote one about 2.7%: FUSE requests, QUIC packets,
  CBOR; h1's 5%), pmake's job shells 4%, idle 25%. Most of the daemons'
  share is the kernel waking and switching threads for each request (a
  virtual machine makes that dear), not sprite's own code. Eight idle
  daemons used 14% of it (heartbeats, load sampling, timers), after two
  fixes of this run's day: one hello per pair of hosts a heartbeat instead
  of two, and no loginctl where no seat session exists. Each job shell is
  a Go program started per recipe line: since the same day it links only
  the wire format and the local API (migrate/rexec), and it is built
  without cgo (no dynamic loader): 7.4 ms of CPU a start instead of 12.0
  (` + "`perf stat`" + ` of a job shell running ":"), 4 times that in wall time
  under the quota.
- h1's daemon during an 8-host build (` + "`perf record -a`" + `, its samples
  only, 2026-12-02): QUIC about 38% (every remote job's file requests,
  stdio and control), the file server 14%, Go's scheduler 13%, Go's
  sysmon thread 10%, and the idle detector's load count 11%: it read the
  stat file of every thread of every multi-threaded process each second,
  and the job shells waiting on their remote jobs are Go programs. It now
  skips the threads of a process that had none runnable at the last count
  and has used no CPU since (idle/load.go): a count of this machine's
  /proc with 24 waiting Go programs in it took 1.3 ms instead of 3.5.
- Until 2026-12-02 h1's file server told every change in alice's home to
  every host that had used the domain: each object a compile host wrote,
  and each write of a link at home, cost h1 one call to each of the other
  hosts (with 8 hosts, one read-after-write of the linker through /sprite
  cost h1's daemon 2.4 ms of CPU, against 0.5 ms with no other host). It
  now tells only the hosts that may cache the file: those that asked
  about it within the kernel's cache time, or hold it open
  (fs/interest.go). 8-host builds the same morning, 3 of each: before,
  pmake 24.7 s and distcc 21.3 s, h1's daemon 2.09 s of CPU per build;
  after, pmake 18.1 s and distcc 19.4 s, h1's daemon 1.24 s.
- pmake keeps the ar, the ranlib and the two links at home ("a link"
  above; --export-links sends them out too): they read every object and
  use little CPU, so through /sprite they took 2 to 4 times as long as at
  home, and they run one after another at the end of the build.
- The build's critical path is the largest compile, lvm.c (about 1.1 s of
  the build's 9.6 s of CPU at full speed on this machine), then the ar,
  the ranlib and a link in series. Make starts lvm.c only as its 19th
  compile, and distcc runs in make's order; pmake lets make start three
  times as many jobs as it has slots and runs the largest first (its job
  queue, pmake/queue.go: lvm.c begins as soon as the first job ends, not
  after eleven). On 2026-12-02, three 8-host builds with the queue took
  9.1 to 9.6 s against 10.1 to 11.1 s for three without it, on the same
  machine in the same hour (a quieter one than this table's: the
  machine's speed drifts by a third over a day). Even so no spread of this Makefile passes about 5.5x
  with 8 hosts of equal speed (9.6 s of work, a critical path of about
  1.75 s): the brief's 7x cannot be reached with this project, by pmake
  or by distcc; under the quota lvm.c alone takes 6 to 7 s of an 8-host
  build.
`

// nginxNotes are nginx's: a build that spreads.
const nginxNotes = `- nginx's build is about 120 compiles of similar size: at full speed on
  this machine (make -j2 with each compile timed, 2026-12-03) they took
  22.6 s of CPU together, the largest, ngx_http_upstream.c, 0.93 s, and
  no other above 0.9 s. Its critical path (the largest compile, then the
  link) is under a tenth of the work, so what bounds the spread is the
  hosts' number and what each job costs besides the compiler (the job
  shell, the remote start, the file requests to h1), not the Makefile.
- nginx's top-level Makefile runs ` + "`$(MAKE) -f objs/Makefile`" + `: that make
  stays on h1 and shares the build's job slots (the jobserver).
- What a remote compile costs besides the compiler (2026-12-03, an
  idle 8-host lab, nginx's ngx_http_parse.c compiled on h2 through
  /sprite and from a copy on h2's own disk): 0.3 to 0.8 s more under
  the 0.25-CPU quota. h2's daemon used 90 to 120 ms of CPU per compile
  (h2's quota makes that four times as long): about 113 calls to h1
  (71 of them the opens of the headers, each a version check; a second
  compile on the same host within 5 s makes the opens alone), each about
  a millisecond of the daemon's CPU, three quarters of it in the kernel
  (the FUSE request and reply, the QUIC packets). Until the evening of
  2026-12-03 such a compile also made about 470 lookups whenever the
  kernel's 5 s had passed (the compiler searching seven -I directories
  for each header): then an 8-host build took 54 s and h1's daemon used
  6 s of CPU; the listings made for lookups (fs/fuse/listing.go) took it
  to 30 s and 2.8 s, in builds of one each.
- Since the evening of 2026-12-03 a host keeps a header's read-only
  handle for 5 s after the compile closes it (fs/fuse/kept.go), and the
  next compile there opens it with no call: the same compile run twice
  on h2 made 164 calls to h1 the first time and none the second (counted
  at h1's server). Three 8-host builds of each, alternating: 34.1 s
  (30.3 to 35.1) before, 26.5 s (24.9 to 26.7) after. Before it starts
  a job elsewhere, h1 waits until that host has heard of every change
  on h1's own disk (fs.Server.Settle), so a kept header is never older
  than what a job at home wrote.
- h1 keeps one job slot of its own (its quarter of a CPU, rounded up),
  and pmake gives it the smallest waiting jobs. With 8 hosts h1's
  quarter of a CPU is already full with make, the job shells and the
  file server: two 8-host builds without that slot took 21.3 and 26.6
  s against 29.8 and 27.8 s with it (2026-12-03, alternating). With 2
  hosts the slot is what keeps h1 busy: 145 s without it, 57 s with it.
  A home slot that follows h1's measured headroom would take both; it is
  not built.
`
