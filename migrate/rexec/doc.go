// Package rexec is the client side of remote execution: Cmd, shaped like
// os/exec's (Command, Start, Wait, Run, Signal; a context that kills),
// which asks the local daemon to run a command on another host and keeps
// its stdio, signals and exit at home, and the types of the protocol
// between caller, home and target (proto.go). Package migrate, which also
// holds the executor on the target, names all of it again; the design of
// a job's life is in migrate's package doc.
//
// rexec imports only the wire format and the local API, never the daemon,
// so a program that only starts jobs stays small: pmake's job shell, one
// process per recipe line, links 29 packages rather than 136.
package rexec
