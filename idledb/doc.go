// Package idledb is the idle-host database, Sprite's migd: it knows which
// workstations are idle and lends them out, longest-idle first, fairly, on
// leases.
//
// # Where it runs
//
// One host runs it: the one named by `idledb` in every host's config (the
// first host of a cluster, `sprite init`, names itself; `sprite join`
// learns the name from the CA host). Service opens it inside that host's
// daemon and serves its methods to the others (docs/protocol.md); Client
// reaches it from any host, in process on its own host and over QUIC
// elsewhere. Every caller's host is the name in its certificate: a host
// reporting for another name is refused, and a requester is named
// "<host>/<id>", so no host can renew or release another's grants.
//
// # Hosts
//
// Each host's idle service (package idle) reports its activity (idle,
// active, busy, never), how long it has lasted, its load, CPUs, foreign
// jobs and owner policy at once when anything changes and every heartbeat
// (2 s) otherwise, as messages on one long-lived report stream
// (Client.OpenReports; a call per report with Client.Report). Durations travel instead of times, so host clocks do not
// matter: the database dates everything on its own clock. A host silent for
// DownAfter (five heartbeats) is down; its grant is withdrawn.
//
// # Grants
//
// A request is a standing demand: requester R wants N hosts (of an
// architecture, or any). The database grants free idle hosts at once,
// longest idle first (Sprite's finding: a host idle for long stays idle),
// never the requester's own host, never a host whose owner forbids the
// requester's user; hosts that turn idle later go to requesters still short,
// fewest-held first. Asking for more hosts than exist gets what exists.
//
// Fairness (Sprite's reclaim, the up-down idea): when no host is free and a
// requester holds at least two more hosts than one that wants more, one of
// its hosts (the most recently granted) moves to the poorer requester,
// until no such pair is left; two requesters wanting 3 of 3 hosts end 2/1.
//
// Every grant is a lease (Lease, 10 s) that the requester renews (Client.
// Hold renews every third of it); a requester that stops renewing loses
// everything when the lease runs out, one that releases loses it at once.
// A host that turns busy, active, never or down is withdrawn from its
// holder immediately, and the holder's watchers (Watch, the idledb.watch
// stream) are told what changed and why in the same instant, so eviction
// can start before the next heartbeat.
//
// # History and persistence
//
// Each idle period (start, end on the database's clock) is kept per host,
// the last 200, for placement. State lives in memory; changes (not
// heartbeats) are written behind to badger in the host's state directory:
// host records with their open idle period, periods, and requesters with
// the hosts they hold. Badger is tuned small (4 MiB memtables, 2 MiB block
// cache, 16 MiB value log files). After a restart every host is "unknown"
// until it reports again (within a heartbeat: re-registration is just the
// next report), an open idle period goes on if the host is still idle,
// and requesters get their grants back with a fresh lease, in time for
// their next renewal; a host that never reports again is marked down.
//
// # Concurrency
//
// DB.mu guards all state; every operation holds it for memory work only
// (the store's writer goroutine does the disk I/O). Watchers are
// signalled without blocking: grant watchers keep the latest holding (with
// the events not yet read joined), host watchers a set of changed names.
// Goroutines: DB.Run (the sweeper) and the store's writer, stopped by the
// Run context and Close; each streaming handler's caller watcher ends with
// its stream.
package idledb
