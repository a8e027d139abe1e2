// Package pmake spreads an unmodified Makefile over the idle workstations
// of a sprite cluster: `pmake [-j N] [-L N] [--stats] [make options and
// targets]`.
//
// # The pieces
//
// GNU make is the engine: it reads the makefiles, orders the work, keeps
// -k, -i, -s, -n, -t, -q, the exit statuses, .ONESHELL, output sync and
// the jobserver exactly as it always does. pmake only changes how a recipe
// line is started. It runs
//
//	make [the user's options] -jN -Otarget SHELL=/path/to/pmake \
//	     .SHELLFLAGS="--job-shell --target='$@' $(if $(filter $(PMAKE_NOEXPORT),$@),--home) -c"
//
// so that make starts every recipe line (every recipe, with .ONESHELL) as
//
//	pmake --job-shell --target=TARGET [--home] -c LINE
//
// the job shell. Make expands .SHELLFLAGS in the target's context, so the
// job shell learns the target and whether PMAKE_NOEXPORT names it without
// parsing a makefile. --job-shell is not a make option, so the binary tells
// its two modes apart by its first argument (IsJobShell).
//
//	pmake ── session stream (local.session) ── home daemon ── idle database
//	  │ holds N hosts for the whole build; writes RUN/hosts on each change
//	  └── make -jN SHELL=pmake
//	        ├── pmake --job-shell -c 'cc -c a.c'  ── migrate.Cmd{Session} ──▶ h3
//	        ├── pmake --job-shell -c 'cc -c b.c'  ── migrate.Cmd{Session} ──▶ h4
//	        └── pmake --job-shell -c '$(MAKE) -C lib'  ── exec ──▶ make (here, jobserver)
//
// # The session
//
// Before make starts, pmake asks its daemon (migrate.MethodLocalSession)
// to hold up to -j N hosts (100 when -j gives no number) from the idle
// database for a session named pmake-PID, and keeps that stream open until
// make has exited: closing it releases the hosts. The daemon sends the
// holding (api.Grants) after every change; pmake writes it to the run
// directory's hosts file (for -L) and shows it on the status line. Make's
// -j is fixed when make starts, so pmake waits up to 3 s for the first
// holding; -j defaults to the holding's slots plus this host's CPUs (this
// host's own slots, when the database lends it to its own session, are
// not counted twice).
// PMAKE_SESSION carries the session's id to the job shells, which put it in
// migrate.Cmd.Session: the daemon places such jobs on the session's hosts
// (least loaded, up to each host's slots) and tells the Cmd to run the job
// at home when all are full. No daemon, a failing session, or a build
// directory outside the global namespace (not under /sprite nor under a
// directory this host exports, checked with the prefix table before make
// starts) each give one line on stderr, and the build runs at home.
//
// # The job shell
//
// One job shell per recipe line, a child of make at home. In order:
//
//  1. Before anything else (cmd/pmake's main): did make hand it the
//     jobserver? (JobserverInherited, below.)
//  2. The line: interior [@+-] prefixes of a .ONESHELL recipe are removed
//     (make does that itself only for a SHELL named like a Bourne shell);
//     pmake's own path, as $(SHELL) put it in the line, becomes the real
//     shell; a line that is just ":" succeeds at once, as make's own
//     shortcut does. A line simple enough for make to exec without a shell
//     (SimpleArgv, make's own rules) is run as its words, so that a
//     command killed by a signal is reported as such, not as sh's 128+n.
//  3. Where it runs: the job shell execs the line in place (every
//     descriptor make gave it stays open, the exit is the command's own)
//     when the line is a recursive make, when make calls it for $(shell)
//     while reading makefiles (empty target), or when it is not under a
//     pmake on this host (a make inside a remote job, whose recipes then
//     run on that host with /bin/sh). A target matched by PMAKE_NOEXPORT,
//     a link or archive step (IsLinkStep, linkstep.go; unless
//     --export-links or -L), a build without a session, a session that
//     holds no host (RUN/hosts empty: the daemon is not asked, it would
//     only say so), or no free slot under -L runs as a child here.
//     Everything else goes through migrate.Cmd with Session set.
//  4. Stdio: stdout and stderr are make's (with -O a temporary file per
//     target). When stdout is not a terminal the job's output is held
//     until it ends, by the home (Cmd.HoldOutput: a job the home restarts
//     after an eviction prints once) and by the job shell (a job it runs
//     again here after its host was lost prints once). Stdin is make's unless that is a terminal or
//     /dev/null, then /dev/null: a job that may run on any host does not
//     read the terminal (with -j make itself lends the terminal to one job
//     at a time only).
//  5. Signals: SIGINT, SIGTERM, SIGHUP and SIGQUIT that reach the job shell
//     (a terminal's ^C reaches make's whole process group; make sends
//     SIGTERM itself) go to the job wherever it runs (Cmd.Signal); after
//     5 s it is killed. Once the job has ended, a job shell that got such a
//     signal dies by it, so make reports "Interrupt" and stops as it would.
//     Signals make's caller ignored (make started in the background) stay
//     ignored. pmake itself dies by a terminal's SIGINT or SIGQUIT when
//     make fails after it, even where GNU make 4.3 loses a race with its
//     children and exits 2 instead of dying by it (interruptedBy).
//  6. The exit: the job's status; a job killed by a signal kills the job
//     shell with the same signal (no core file), or exits 128+n when the
//     signal is ignored here. Wait's ErrLost, or a broken daemon
//     connection, runs the line again at home, after dropping what the
//     first try printed.
//  7. A start and an end record go to RUN/events for --stats and the
//     status line.
//
// # Recursive make stays home
//
// A recursive make must run at home: it shares make's jobserver (a pipe
// whose descriptors cannot cross hosts) and its recipe lines need this
// run's job shell. The rule, JobserverInherited or RunsMake:
//
//   - make's own verdict: GNU make marks a line recursive when its text
//     mentions $(MAKE) or ${MAKE} or starts with '+', and only for such a
//     line does it leave the jobserver's descriptors (named in MAKEFLAGS as
//     --jobserver-auth=R,W) open across exec. So when R and W are open in
//     the job shell and are the two ends of one pipe, the line is
//     recursive. This needs no parsing and follows make exactly.
//   - a word rule for what make does not mark: a line one of whose words
//     (split at blanks and shell operators, quotes removed) has the last
//     path element make, gmake, pmake or the name pmake runs make by. This
//     also covers make without a jobserver (-j1) and make 4.4's fifo
//     jobserver, whose descriptors cannot be checked.
//
// Recursive lines are exec'ed, so the sub-make inherits the jobserver and
// PMAKE_* and shares the slots; its own lines come back to job shells.
//
// # Dependencies
//
// Package pmake imports migrate/rexec (Cmd and the protocol's types), not
// migrate, and the local API's api.Grants, not idledb: the job shell is
// started once per recipe line, so what the binary links and initialises
// is paid per job (on the home host, under its owner's CPUs). Keep it so.
// For the same reason pmake is built without cgo (CGO_ENABLED=0, as
// scripts/setup does; it needs no C library: it resolves no names, only
// dials the daemon's socket): a static binary skips the dynamic loader and
// starts in 7.4 ms of CPU instead of 12.0 on the lab's machine (perf stat
// of a job shell running ":", 2026-12-02).
//
// # Options
//
//	-j N, --jobs N     jobs at once (make's -j); default: the session's slots + this host's CPUs, largest first (below)
//	-L N, --local N    at most N jobs at home (Sprite pmake's -L; make's -L is --check-symlink-times)
//	--stats            after the build, each job's target, host, start, time, status (stderr)
//	--export-links     links and archives go to idle hosts too (default: home)
//	-O, --output-sync  as make's; pmake passes -Otarget unless given
//	SHELL=X            the shell recipe lines run under (default /bin/sh)
//
// PMAKE_NOEXPORT (a make variable: in the makefile, on the command line,
// or in the environment) lists targets, with make's % patterns, whose
// lines stay home; a target-specific value works too (install:
// PMAKE_NOEXPORT = %). A .NOEXPORT special target is not read: make has no
// way to hand its prerequisites to a recipe's shell.
//
// -L N: the job shells take slots as flock(2)ed files in RUN/slots: one
// per slot of each held host (r.HOST.I) and N for home (l.I). A job with a
// host slot goes to the session, else one with a home slot runs here, else
// it waits (polling every 20 ms). -L 0 runs nothing at home while a host
// is held. Without -L no slots are taken: make's -j is the only bound and
// the daemon puts what does not fit on a host at home. The daemon's
// placement is not told which slot a job holds; the count is what -L
// needs.
//
// -j without a number (and no -L): make gets -j Window(S) (three times
// S, the session's slots plus this host's CPUs), and the job shells take
// turns from pmake's job queue (queue.go), S at a time. A turn on one of
// the session's hosts goes to the largest estimate (a line with no source
// file to size, then compiles by their sources' bytes); a turn at home,
// where the job shares the CPUs with make and the file server, to the
// smallest, so the largest compiles run on hosts of their own. Make's
// order no longer decides which of the started jobs runs first; a job with no ticket waits in its job shell (a Go process
// at home, blocked on a unix socket), and its --stats time starts with its
// turn.
//
// -n, -q, -t, -p, -v and -h run nothing but recursive makes: pmake then
// holds no hosts and runs make with exactly the user's options, so the
// output is make's own.
//
// # The run directory and the status line
//
// RUN is a fresh directory under $TMPDIR (PMAKE_RUN), removed at the end:
// events (the job shells' records, one JSON line each, appended with one
// write on an O_APPEND file), hosts, slots/ and queue (the job queue's
// socket). On a terminal (stderr is one) make's stderr, and its stdout
// when that is the same terminal, pass through pmake through one pipe; a
// status line (hosts held, jobs done, jobs running per host) is drawn
// after make's output only at the start of a line, taken off with
// "\r\033[K" before make writes again, and cleared when make exits.
// Nothing of it appears when stderr is not a terminal.
//
// # Locks
//
// One mutex per process: statusLine.mu serialises the terminal between
// make's output and the redraws; session.mu guards the holding; queue.mu
// the job queue. None is held while taking another (the queue asks the
// session for its slots before it locks). Slot files are locked only by
// job shells, each holding at most one, so they cannot deadlock.
//
// # What make sees differently
//
// $(SHELL) is pmake's path (a recipe that runs it as a command gets the
// shell; one that prints it sees pmake). A makefile's own SHELL or
// .SHELLFLAGS assignment is overridden by the command line: give
// SHELL=/bin/bash to pmake instead. MAKEFLAGS holds pmake's SHELL and
// .SHELLFLAGS. A recipe's output is always a pipe or file, never the
// terminal, when it runs on another host.
package pmake
