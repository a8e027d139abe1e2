// Package lab runs a cluster of sprite workstations on one Linux machine, for
// tests, benchmarks and the demo. It needs root.
//
// # Concepts
//
// A lab has N hosts h1…hN. A host is not a virtual machine: it is one process
// tree, rooted in a host init, that lives in its own PID, mount, UTS and
// network namespaces. Everything a workstation has of its own, a lab host has
// of its own: hostname, process table and /proc, IP address, /home, /tmp,
// /var/lib/sprite (the daemon's state), /run/sprite (the daemon's socket), a
// devpts instance with its own /dev/ptmx (owner keyboard activity), /dev/shm,
// and whatever the daemon mounts (/sprite). The rest of the file tree (/usr,
// /etc, /root, …) is the machine's, shared, read-write.
//
// # Layout on the machine
//
//	/var/lib/sprite-lab/state.json      the lab: hosts, init pids, addresses, cgroups
//	/var/lib/sprite-lab/bin/            copies of sprite (and pmake); hosts run these
//	/var/lib/sprite-lab/hosts/hI/home   -> /home in hI (alice/ inside, owned by alice)
//	/var/lib/sprite-lab/hosts/hI/state  -> /var/lib/sprite in hI (daemon.log)
//	/var/lib/sprite-lab/hosts/hI/tmp    -> /tmp in hI (mode 1777)
//	/var/lib/sprite-lab/hosts/hI/init.log     the host init's own log
//	/var/lib/sprite-lab/hosts/hI/daemon.json  the daemon as the init sees it
//	/var/lib/sprite-lab/hosts/hI/console.sock where Type sends keys
//	bridge sprite0 10.213.0.1/24; veth sprite-hI <-> eth0 (10.213.0.(10+I)/24) in hI
//	netns registered as sprite-hI (`ip netns`), so `ip -n sprite-hI ...` works
//	cgroup v1 /sys/fs/cgroup/cpu/sprite-lab/hI and /sys/fs/cgroup/freezer/sprite-lab/hI,
//	v2 /sys/fs/cgroup/sprite-lab/hI; a host's daemon makes its job cgroups
//	below its host's (hI/sprite-jobs/<job id>, see migrate.Cgroups)
//
// The binaries are copied because the original often lives under /tmp or
// /home, which every host overmounts. Commands in a host run with
// PATH=/var/lib/sprite-lab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin.
//
// # The process tree
//
// Up re-executes the copied binary as `sprite lab _hostinit --name hI --dir D`
// with CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWNET and two pipes (fd 3:
// "go" from the parent, fd 4: "ready" to the parent). The child is PID 1 of
// the host. It makes its mounts private (so nothing leaks back to the
// machine), drops copies of other hosts' /run/netns bind mounts and whatever
// the machine has on /sprite (the host's daemon mounts its own), mounts /proc,
// the bind mounts, tmpfs on /run/sprite and /dev/shm, a new devpts instance on
// /dev/pts with /dev/pts/ptmx bound over /dev/ptmx, a fresh sysfs on /sys
// (with the machine's /sys/fs/cgroup bound back in; best effort) and sets its
// hostname. Meanwhile the parent puts it into its cgroups and wires its
// network, then writes "go". Only after "go" does the init start anything,
// so every process of the host is in the host's cgroup. If Up dies before
// that, the init reads EOF instead and exits. After "go" the init opens the
// console (below) and answers "ok".
//
//	machine
//	└── sprite lab _hostinit --name hI   (PID 1 in hI; reaps orphans)
//	    └── sprite daemon                (started and stopped on request)
//	        └── …                        (jobs, FUSE server, …)
//
// Killing a host init kills its whole host: the kernel kills every process of
// a PID namespace whose init dies, and the namespaces go away with their last
// process.
//
// # Commands in a host
//
// Command builds
//
//	nsenter -t INIT -n -m -u -- sprite lab _run --cgroup C --user U -- CMD...
//
// nsenter enters the host's network, mount and UTS namespaces and execs _run
// (without -p it does not fork). _run joins the host's cgroups, so commands
// run from the machine are CPU-limited like the host's own processes, and
// enters the host's PID namespace for its children (setns on a locked
// thread; a Go program cannot enter a mount namespace, but it can this). It
// starts CMD as U (uid, gid and groups from /etc, which hosts share with the
// machine) in U's home if the host has it, else /, waits, and ends the way
// CMD ended: its exit code or death by the same signal (so `sprite lab exec`
// exits 128+signal). _run is the only process between the caller and CMD;
// it stays in the caller's process group, ignores SIGINT and SIGQUIT (a
// terminal sends them to CMD too) and passes SIGTERM and SIGHUP on.
// CommandContext puts the chain in a process group of its own and kills the
// group when the context ends.
//
// # Owner activity: the console
//
// Every host init holds a terminal open for the host's life: its console,
// /dev/pts/0 in the host's own devpts, with a reader on the slave side like
// a login shell. Type (`sprite lab type`) sends keys to the init over the
// unix socket hosts/hI/console.sock; the init writes them to the master side
// and answers once the reader has read them all. A reader's read is what an
// idle detector sees: IN_ACCESS on /dev/pts/0. Note that the kernel reports
// IN_ACCESS and IN_MODIFY of a tty only to a watch on the tty itself, not to
// a watch on /dev/pts (the directory): a detector must watch each
// /dev/pts/N, and /dev/pts for IN_CREATE to add new ones. A terminal made
// and used at once (TypeNewPty, `sprite lab type --new-pty`) comes and goes
// before a detector can watch it; the console is there from the start.
//
// # Daemon supervision
//
// The host init starts `sprite daemon` (stdout and stderr appended to
// /var/lib/sprite/daemon.log in the host) only when told, and never restarts
// it by itself. It is told with signals:
//
//	SIGUSR2   start the daemon if it is not running
//	SIGUSR1   stop the daemon with SIGTERM
//	SIGHUP    stop the daemon with SIGKILL
//	SIGTERM   stop the daemon (SIGTERM, SIGKILL after 10 s), then exit, ending the host
//
// (SIGURG is not used: the Go runtime sends it to itself for preemption.) The
// init reports in hosts/hI/daemon.json (pid inside the host, whether it runs,
// how often it was started, how it last exited). StartDaemon and StopDaemon
// signal and then wait on that file, and StartDaemon also until the daemon's
// socket /run/sprite/sprite.sock accepts a connection (reached from the
// machine through /proc/INIT/root).
//
// # Down and leftovers
//
// Down does not trust state.json alone, because a lab up may have died half
// way. It kills (SIGKILL) every process whose argv is `… lab _hostinit …`, the
// pids in state.json, every process still in a sprite-h* netns (`ip netns
// pids`) and in a lab cgroup or one nested in it (a job cgroup a killed
// daemon left), thawing frozen cgroups meanwhile (a frozen v1 process dies
// only once thawed); waits until they are gone (zombies count as gone);
// deletes every netns named sprite-h*, every link named sprite-h* and
// sprite0; removes the lab cgroups, nested ones first (v1 cpu and freezer,
// and v2 paths); detaches any mount on the machine under /var/lib/sprite-lab
// or /run/netns/sprite-h*; and removes state.json, bin/ and (unless keep)
// hosts/. Every step tolerates what is already gone, so Down is idempotent
// and works without a state file. A failed Up calls Down with keep, so the
// logs it points at survive. Down never kills its own ancestors (a test that
// entered a lab netns).
//
// There is one lab per machine. Up and Down serialise on
// /run/sprite-lab.lock; whoever runs a series of lab commands (a test run)
// should hold /tmp/sprite-lab.lock around it (`flock /tmp/sprite-lab.lock
// go test ./...`), which the lab's own tests also take.
package lab
