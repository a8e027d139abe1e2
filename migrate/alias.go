package migrate

import "sprite/migrate/rexec"

// The client side of remote execution (Cmd) and the protocol's types live
// in package migrate/rexec, which imports nothing heavier than the wire
// format, so that a program that only starts jobs (pmake's job shell, run
// once per recipe line) links and initialises little. These names let
// the rest of the code go on using migrate; pmake imports rexec itself.

// Cmd is rexec.Cmd: a command run through the local daemon, shaped like
// os/exec's Cmd.
type Cmd = rexec.Cmd

// Command and CommandContext are rexec.Command and rexec.CommandContext.
var (
	Command        = rexec.Command
	CommandContext = rexec.CommandContext
	ProcGroups     = rexec.ProcGroups
	ErrLost        = rexec.ErrLost
)

// DefaultSocket is the local daemon's socket.
const DefaultSocket = rexec.DefaultSocket

// The protocol's types (package rexec: proto.go).
type (
	Event        = rexec.Event
	EvictArgs    = rexec.EvictArgs
	EvictReply   = rexec.EvictReply
	Exit         = rexec.Exit
	ExitError    = rexec.ExitError
	Input        = rexec.Input
	Job          = rexec.Job
	JobsArgs     = rexec.JobsArgs
	KillArgs     = rexec.KillArgs
	MigrateArgs  = rexec.MigrateArgs
	Mount        = rexec.Mount
	ProcessState = rexec.ProcessState
	Request      = rexec.Request
	SessionArgs  = rexec.SessionArgs
	SignalArgs   = rexec.SignalArgs
	Spec         = rexec.Spec
	Winsize      = rexec.Winsize
)

// The protocol's method names, input kinds, event kinds and job states.
const (
	MethodExec           = rexec.MethodExec
	MethodSignal         = rexec.MethodSignal
	MethodJobs           = rexec.MethodJobs
	MethodEvict          = rexec.MethodEvict
	MethodHomeJobs       = rexec.MethodHomeJobs
	MethodHomeKill       = rexec.MethodHomeKill
	MethodLocalRun       = rexec.MethodLocalRun
	MethodLocalJobs      = rexec.MethodLocalJobs
	MethodLocalKill      = rexec.MethodLocalKill
	MethodLocalEvict     = rexec.MethodLocalEvict
	MethodLocalEvictions = rexec.MethodLocalEvictions
	MethodLocalMigrate   = rexec.MethodLocalMigrate
	MethodLocalSession   = rexec.MethodLocalSession
	InputEOF             = rexec.InputEOF
	InputResize          = rexec.InputResize
	InputSignal          = rexec.InputSignal
	EventPlaced          = rexec.EventPlaced
	EventLocal           = rexec.EventLocal
	EventStarted         = rexec.EventStarted
	EventStdout          = rexec.EventStdout
	EventStderr          = rexec.EventStderr
	EventFrozen          = rexec.EventFrozen
	EventThawed          = rexec.EventThawed
	EventNotice          = rexec.EventNotice
	StatePlacing         = rexec.StatePlacing
	StateRunning         = rexec.StateRunning
	StateFrozen          = rexec.StateFrozen
	StateExited          = rexec.StateExited
	StateLost            = rexec.StateLost
)
