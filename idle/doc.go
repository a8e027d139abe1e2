// Package idle decides whether this workstation's owner is away, so that its
// cycles can be lent (package idledb hands idle hosts out).
//
// # What counts as the owner being here
//
// Owner activity comes from the kernel's own signals, never from polling:
//
//   - inotify IN_ACCESS on every terminal: /dev/pts/N (ssh, terminal
//     emulators, tmux), /dev/ttyN and /dev/ttySN (consoles) and /dev/tty. A
//     terminal is read only when someone typed: the kernel raises IN_ACCESS
//     inside the reader's read(2), so the detector hears a keystroke within
//     microseconds of the shell receiving it. Program output is a write to
//     the slave and raises nothing. /dev/pts is watched for IN_CREATE, so a
//     new terminal is watched the moment it appears (and rescanned every few
//     seconds as a safety net on file systems that do not report creation).
//   - evdev: IN_ACCESS on /dev/input/event* where the machine has them (the
//     display server reads them on every key press or mouse movement).
//   - desktop idle hints through a Hook: where the machine has logind seats
//     (/run/systemd/seats and loginctl), LogindHook asks every few seconds
//     for each seat session's IdleHint and counts "not idle" as input. It
//     polls because it is a summary the desktop keeps (screen savers set it
//     after minutes); the keystroke path stays evdev and the terminals.
//
// On start the last input is estimated from the devices' access times (the
// kernel keeps them coarsely), so a restarted daemon on an empty desk is idle
// at once instead of after a full threshold.
//
// Terminals that foreign work itself reads (a remote job given a pty by the
// executor) must not look like the owner: Ignore takes them out.
//
// # Load
//
// The kernel's /proc/loadavg is global: it counts foreign work, every
// container and every lab host on the machine alike, and its 1-minute decay
// is slow. So by default (LoadProc) the detector computes the host's own
// load average the way the kernel does, from this host's /proc: every
// SampleEvery it counts runnable threads (state R) that are neither the
// daemon's own (its threads and its direct children: a job's init before
// it joins the job's cgroup, loginctl) nor foreign (ForeignFilter), and folds the count into an
// exponentially decaying average with time constant LoadTau (10 s). In the
// lab every host has its own PID namespace and /proc, so a CPU burner on h2
// raises h2's load and no other host's; a thread throttled by a CPU quota
// stays runnable, so it counts, as it does in the kernel's figure. A
// multi-threaded process that had no runnable thread at the last count
// and has used no CPU since (utime+stime unmoved) is not read thread by
// thread again: under a build, the waiting job shells made most of the
// count's cost. A thread that turned runnable less than a clock tick of
// CPU ago is thus counted one sample late.
// LoadAvg reads /proc/loadavg instead, for machines where nothing else runs.
//
// Hysteresis: the host turns load-busy when the average reaches its CPUs and
// turns back only when it falls below half of them, so a load hovering near
// the threshold does not flap (Sprite's rule: accept foreign work only while
// the decaying loads are low, stop when they rise).
//
// # The state
//
// A host is idle when the owner's mode is auto, there has been no input for
// IdleAfter (30 s by default) and it is not load-busy. Otherwise its Activity
// says why: "never" (the owner said `sprite idle --never`), "active" (input
// within the threshold) or "busy" (load). The owner can also cap the number
// of foreign jobs and forbid users; Policy is persisted in idle.json in the
// state directory and travels with every report, so the idle database
// honours it when it grants the host.
//
// # Goroutines and locks
//
// Detector.Run owns its goroutines (the inotify reader and its rescan, the
// load sampler; the idle timer is a time.AfterFunc it stops), which end
// when its context does; Run returns after they have. Hooks run on
// goroutines of the caller's (Service runs the logind one). Detector.mu guards the state; it is a leaf, and subscribers are
// signalled without blocking (a channel of one, latest state wins).
//
// Service (service.go) is the daemon's side: it runs the Detector, reports
// each change at once and a heartbeat every ReportEvery to the idle
// database over a long-lived report stream (reopened when it dies), and
// serves `sprite idle`, `sprite grant`, `sprite hosts --watch` and the idle
// columns of `sprite hosts` on the local socket.
package idle
