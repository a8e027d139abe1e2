// Package homenode is the home side of every remote process: the daemon
// service that places a caller's job, starts it on its target (package
// migrate's executor), relays its stdio, and keeps its record while it
// runs, so that `sprite ps` at home lists it wherever it is and a signal
// at home reaches it.
//
// # Global ids
//
// A job's id is home.pid: the pid at home of the process that asked for it
// (`sprite mig`'s own pid, so that `kill` of that pid and `sprite kill` of
// the id reach the same job). A caller that runs several jobs at once (a Go
// program using migrate.Cmd) gets numbers above every Linux pid for the
// others. Ids are only unique while the job lives.
//
// # Placement
//
// In order: the host the caller named; a free slot on its session's hosts
// (a pmake run holds hosts for all its jobs with MethodLocalSession; the
// least loaded host with a slot free wins); or one host granted by the
// idle database for this job alone, released when it ends. No host, or a
// working directory outside the home's exports and /sprite, makes the
// home answer "local": the caller runs the job itself and says why.
//
// Before it starts a job on another host, the home waits until that host
// has heard of every change made on the home's own disk so far
// (Service.Settle, package fsd): the job reads what the home just wrote
// (pmake's generated header) even through a handle its host kept from an
// earlier job (package fs/fuse, kept.go).
//
// # Who may do what
//
// The caller's uid and gid come from SO_PEERCRED and its groups from
// /proc/<pid>/status, never from the request. Only the job's owner (or
// root) may signal it or read its command and status. Another home asking
// on behalf of one of its users (`sprite kill` of a job whose home is
// elsewhere) is trusted for the uid, as the file system trusts its peers:
// every host is an authenticated member of the cluster.
//
// # Concurrency
//
// Service.mu guards the job and session tables and is a leaf. A job is
// owned by the goroutine serving its local.mig call; its input relay ends
// when that call's stream is released.
package homenode
