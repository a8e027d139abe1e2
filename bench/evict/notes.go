package main

// notes explain what the figures mean; they hold no figures of a run.
const notes = `
## What it means

Frozen is the owner's experience: from the moment the key is sent, how long
foreign work still takes the CPU. The freeze is h2's alone. Its idle
detector watches h2's console (inotify IN_ACCESS on /dev/pts/0); the read of
the key wakes it, and the executor writes FROZEN into every foreign job's
freezer cgroup at once (cgroup v1 here) and waits until the kernel reports
each frozen, before any network call. So keystroke→frozen is the type
command's own runtime until h2 reads the key (a Go process start, mostly),
then the detector's wake-up and the freeze of N cgroups. Only the last part,
input→all frozen, is sprite's; it grows with N (a freezer write and a wait
per job, in parallel on two cores) but stays a few milliseconds. A trial far
over the others whose input→frozen is small is one where the key reached h2
late: the type command started slowly on a loaded machine.

Gone is the rest of the eviction: h2 tells each job's home on the job's
stream, the home (h1) picks the restart policy, kills the frozen job
(through h2's executor) and places it again on an idle host or at home; h2
records gone once the job's processes are reaped. From frozen on the owner
no longer shares the CPU with the job; gone frees its memory and its slot.
Sprite, the system this reproduces, took 3 s on average to evict; HTCondor's
default policy takes minutes.

## What limits it on a 2-core machine

- Everything shares two CPUs: the three hosts' daemons, the N jobs (no CPU
  quota: a few busy loops on h2 take both cores), the benchmark, and
  whatever else runs on the machine (the load averages above). When the
  owner types, h2's daemon is scheduled against N runnable loops. On a real
  workstation the daemon competes only with that host's foreign jobs.
- The evicted jobs run again on h3 and at home (h1), on the same two CPUs,
  so while the last kills on h2 are under way the first restarted copies
  already spin: all-gone for many jobs is inflated by this sharing, not by
  anything a real cluster would see.
- Home and target talk QUIC with TLS between network namespaces of one
  kernel: each job's kill is a stream message each way, handled by two
  daemons on the same cores as the jobs.
- The keystroke is ` + "`sprite lab type`" + `, a process start and a unix socket
  round trip before the key is read; a real keyboard's read would be seen
  that much sooner. t0 is taken before it starts, so it counts.
- The benchmark reads h2's records with ` + "`sprite lab exec`" + ` (three process
  starts a look); its first look waits 250 ms after the keystroke so as not
  to compete with the eviction it measures.
`
