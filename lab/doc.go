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
//	bridge sprite0 10.213.0.1/24; veth sprite-hI <-> eth0 (10.213.0.(10+I)/24) in hI
//	netns registered as sprite-hI (`ip netns`), so `ip -n sprite-hI ...` works
//	cgroup v1 /sys/fs/cgroup/cpu/sprite-lab/hI, v2 /sys/fs/cgroup/sprite-lab/hI
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
// machine), drops copies of other hosts' /run/netns bind mounts, mounts /proc,
// the bind mounts, tmpfs on /run/sprite and /dev/shm, a new devpts instance on
// /dev/pts with /dev/pts/ptmx bound over /dev/ptmx, a fresh sysfs on /sys
// (with the machine's /sys/fs/cgroup bound back in; best effort) and sets its
// hostname. Meanwhile the parent puts it into its cgroup and wires its
// network, then writes "go". Only after "go" does the init start anything,
// so every process of the host is in the host's cgroup.
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
// Command builds `sprite lab _enter --cgroup C -- nsenter -t INIT -n -m -u -p
// --wd=HOME [setpriv --reuid U --regid G --init-groups] -- CMD...`. _enter puts
// itself into the host's cgroup and execs nsenter, so commands run from the
// machine are CPU-limited like the host's own processes. The working
// directory is the user's home if it exists in the host, else /.
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
// pids`) and in a lab cgroup; waits until they are gone (zombies count as
// gone); deletes every netns named sprite-h*, every link named sprite-h* and
// sprite0; removes the lab cgroups (v1 and v2 paths); detaches any mount on
// the machine under /var/lib/sprite-lab or /run/netns/sprite-h*; and removes
// state.json, bin/ and (unless keep) hosts/. Every step tolerates what is
// already gone, so Down is idempotent and works without a state file. A
// failed Up calls Down with keep, so the logs it points at survive.
package lab
