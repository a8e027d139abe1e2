// Package migrate runs work on other hosts: the Go API a caller at home
// uses (Cmd, shaped like os/exec), and the executor that runs foreign jobs
// on a target.
//
// Cmd and the protocol's types live in package migrate/rexec, which
// imports nothing but the wire format and the local API; migrate names
// them again (alias.go). A program that only starts jobs imports rexec and
// stays small: pmake's job shell, one process per recipe line, starts in
// 14 ms rather than 22 (29 package inits, not 136).
//
// # A job's life
//
//	caller (sprite mig, pmake's job shell)   home daemon (homenode)          target daemon (Executor)
//	Cmd.Start ── local.mig, Request ──────>  place: --host, session, idledb
//	                                          spec: uid/gid from SO_PEERCRED,
//	                                          groups from /proc, exports
//	                                          ── migrate.exec, Spec ──────>   cgroup, pipes or pty,
//	                                                                          job init (below)
//	          <── placed{id, host} ───────    <── started{pid} ───────────
//	stdin  ── Data frames, Input{eof} ───>    ── relayed ─────────────────>   job's fd 0
//	stdout <── Event{stdout|stderr} ──────    <── relayed ─────────────────   job's fds 1, 2
//	Signal ── local.kill (own call) ──────>   ── migrate.signal ──────────>   kill(-pgid)
//	Wait   <── reply Exit ────────────────    <── reply Exit ──────────────   wait4: status, rusage
//
// Signals travel on calls of their own, never behind stdin on the job's
// stream: a job that does not read its input can still be interrupted.
// Both callers keep their sending side open until the reply, so a stream
// that breaks means the other end is gone: the executor kills a job whose
// home went away (within QUIC's idle timeout, 5 s, when the home host dies
// without a word), and the home reports a job whose target went away as
// lost (Exit.Lost; Cmd.Wait wraps ErrLost; `sprite mig` exits 255).
//
// # The job init
//
// The daemon serves the FUSE mount at /sprite, so it must never fork/exec
// with a working directory on it or exec a binary that lives there (the
// kernel would ask the daemon itself, which is busy forking: deadlock).
// The executor starts `sprite _jobinit` from "/" in a new mount namespace;
// the init joins the job's cgroup, bind-mounts each of the home's exports
// from /sprite onto the path it has at home (h1's /home on h3's /home: the
// u-root cpu technique over the cached global namespace), sets nice and
// SCHED_IDLE, starts a session (with the pty as controlling terminal),
// sets umask, groups, gid and uid, changes to the working directory and
// execs the command. It reports a failure of any step on a close-on-exec
// status pipe, so "no such directory on h3" reaches the user as an error
// and not as an exit status.
//
// # Cgroups
//
// Each job runs in its own cgroup below the daemon's (v1: cpu and freezer
// hierarchies; v2: the unified one) with the lowest CPU weight, so the
// owner's work always wins, and so that eviction can freeze and kill it as
// a whole. Without usable cgroups the executor falls back to signals to
// the job's process group.
//
// # Concurrency
//
// Executor.mu guards the job table; under it the executor only tells the
// idle detector its count of foreign jobs (lock order: Executor.mu, then
// idle.Detector.mu); no call, wait, freeze or signal is made under it. The
// detector calls the executor's freeze from its input goroutine outside
// its own lock. Each job is owned by the goroutine serving its
// migrate.exec call: it waits for the process and for the output pumps. The
// input pump (stdin and control messages from home) blocks in the stream's
// Recv and ends when the call's stream is released, right after the
// handler returns. Cmd guards its stream's sends with sendMu (stdin and
// Resize share it); its receive loop is the only reader.
package migrate
