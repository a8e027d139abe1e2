package rexec

// Methods between hosts. A job's home daemon calls its target's executor.
const (
	// MethodExec starts a job on this host and carries its stdio: the
	// caller sends Spec as the call's arguments, then Data frames (stdin)
	// and Input messages (stdin EOF, window size); the executor sends
	// Event messages (started, stdout, stderr, frozen, thawed) and replies
	// with Exit. The caller keeps its sending side open until the reply,
	// so that a broken stream (the home went away) is seen at once: the
	// executor kills the job when its stream breaks.
	MethodExec = "migrate.exec"
	// MethodSignal sends a signal to a running job (SignalArgs -> none).
	// Only the job's home may call it.
	MethodSignal = "migrate.signal"
	// MethodJobs lists the foreign jobs running on this host (none -> []Job).
	MethodJobs = "migrate.jobs"
	// MethodEvict evicts every foreign job here, as owner input would
	// (EvictArgs -> EvictReply); `sprite evict --host H` from another host,
	// as root there.
	MethodEvict = "migrate.evict"
)

// Methods between a home and other homes (ps --all, kill by global id).
const (
	MethodHomeJobs = "homenode.jobs" // JobsArgs -> []Job
	MethodHomeKill = "homenode.kill" // KillArgs -> none
)

// Local methods (the CLI and the Go API to the home daemon).
const (
	// MethodLocalRun runs a job from this home: the caller sends Request
	// as arguments, then Data frames and Input messages as for MethodExec;
	// the daemon sends Event messages (placed first) and replies with Exit.
	// A "local" event means: no host was found, run it yourself at home.
	MethodLocalRun  = "local.mig"
	MethodLocalJobs = "local.ps"   // JobsArgs -> []Job
	MethodLocalKill = "local.kill" // KillArgs -> none
	// MethodLocalEvict is `sprite evict [--host H]` (EvictArgs -> EvictReply):
	// the host's owners or root evict its foreign jobs.
	MethodLocalEvict = "local.evict"
	// MethodLocalEvictions lists this host's recent evictions (none ->
	// []Eviction), for owners, tests and the eviction benchmark.
	MethodLocalEvictions = "local.evictions"
	// MethodLocalMigrate is `sprite migrate ID HOST` (MigrateArgs -> none):
	// move one of this home's jobs by the restart mechanism.
	MethodLocalMigrate = "local.migrate"
)

// EvictArgs asks for an eviction on Host ("" or the host itself: here).
type EvictArgs struct {
	Host   string `cbor:"1,keyasint,omitempty"`
	Reason string `cbor:"2,keyasint,omitempty"`
}

// EvictReply says how many jobs were frozen.
type EvictReply struct {
	Frozen int `cbor:"1,keyasint" json:"frozen"`
}

// MigrateArgs moves job ID to Host.
type MigrateArgs struct {
	ID   string `cbor:"1,keyasint"`
	Host string `cbor:"2,keyasint"`
}

// Winsize is a terminal's size.
type Winsize struct {
	Rows uint16 `cbor:"1,keyasint" json:"rows"`
	Cols uint16 `cbor:"2,keyasint" json:"cols"`
}

// Mount is one of the home's exported directories: the job sees the global
// namespace's Prefix (under the target's /sprite mount) at Path, the
// directory's path at home.
type Mount struct {
	Prefix string `cbor:"1,keyasint"`
	Path   string `cbor:"2,keyasint"`
}

// Request is what a caller at home asks of its daemon. Who asks (uid, gid,
// groups) comes from the socket's peer credentials, never from here.
type Request struct {
	Argv  []string `cbor:"1,keyasint"`
	Env   []string `cbor:"2,keyasint,omitempty"`
	Dir   string   `cbor:"3,keyasint"`
	Umask uint32   `cbor:"4,keyasint"`
	// Tty asks for a terminal on the target, of this size; nil means pipes.
	Tty *Winsize `cbor:"5,keyasint,omitempty"`
	// Host names the target; "" asks the idle database.
	Host string `cbor:"6,keyasint,omitempty"`
	// Session groups the jobs of one requester (a pmake run): its hosts
	// are held once for all of them (see homenode).
	Session string `cbor:"7,keyasint,omitempty"`
	// Policy is the eviction policy: "restart" (default), "wait",
	// "checkpoint".
	Policy string `cbor:"8,keyasint,omitempty"`
	// NoStdin means the job's stdin is /dev/null.
	NoStdin bool `cbor:"9,keyasint,omitempty"`
	// HoldOutput makes the home keep the job's output until it exits and
	// deliver it then, in one piece per stream: a job restarted after an
	// eviction then prints once (pmake's jobs, as make -O would).
	HoldOutput bool `cbor:"10,keyasint,omitempty"`
}

// Spec is a job as its home sends it to the target.
type Spec struct {
	ID      string   `cbor:"1,keyasint"` // global id home.pid
	Home    string   `cbor:"2,keyasint"`
	User    string   `cbor:"3,keyasint,omitempty"` // for logs and ps
	UID     uint32   `cbor:"4,keyasint"`
	GID     uint32   `cbor:"5,keyasint"`
	Groups  []uint32 `cbor:"6,keyasint,omitempty"`
	Argv    []string `cbor:"7,keyasint"`
	Env     []string `cbor:"8,keyasint,omitempty"`
	Dir     string   `cbor:"9,keyasint"`
	Umask   uint32   `cbor:"10,keyasint"`
	Tty     *Winsize `cbor:"11,keyasint,omitempty"`
	Mounts  []Mount  `cbor:"12,keyasint,omitempty"`
	NoStdin bool     `cbor:"13,keyasint,omitempty"`
	Policy  string   `cbor:"14,keyasint,omitempty"`
}

// Input kinds, home to target (and caller to home).
const (
	InputEOF    = "eof"    // stdin has ended
	InputResize = "resize" // the terminal's size changed
	InputSignal = "signal" // a signal for the job (caller to home only)
)

// Input is a control message on a job's stream towards the job.
type Input struct {
	Kind   string   `cbor:"1,keyasint"`
	Size   *Winsize `cbor:"2,keyasint,omitempty"`
	Signal int      `cbor:"3,keyasint,omitempty"`
}

// Event kinds, target to home (and home to caller).
const (
	EventPlaced  = "placed"  // home to caller: the job's id and target
	EventLocal   = "local"   // home to caller: run it at home (Reason says why)
	EventStarted = "started" // the job's process exists on the target
	EventStdout  = "stdout"
	EventStderr  = "stderr"
	EventFrozen  = "frozen" // the target's owner came back (eviction)
	EventThawed  = "thawed"
	EventNotice  = "notice" // a line for the user (restarted elsewhere, ...)
)

// Event is a message on a job's stream towards its home.
type Event struct {
	Kind   string `cbor:"1,keyasint"`
	Data   []byte `cbor:"2,keyasint,omitempty"`
	ID     string `cbor:"3,keyasint,omitempty"`
	Host   string `cbor:"4,keyasint,omitempty"`
	PID    int    `cbor:"5,keyasint,omitempty"`
	Reason string `cbor:"6,keyasint,omitempty"`
}

// Exit is how a job ended.
type Exit struct {
	// Code is the exit status, or -1 when the job died by a signal.
	Code   int  `cbor:"1,keyasint"`
	Signal int  `cbor:"2,keyasint,omitempty"`
	Core   bool `cbor:"3,keyasint,omitempty"`
	// Rusage of the job (its process and the children it waited for).
	UserUs   int64 `cbor:"4,keyasint,omitempty"`
	SysUs    int64 `cbor:"5,keyasint,omitempty"`
	MaxRSSKB int64 `cbor:"6,keyasint,omitempty"`
	// Lost is set when the job did not finish: its target went away or
	// refused it. Code is then -1 and Signal 0.
	Lost string `cbor:"7,keyasint,omitempty"`
	Host string `cbor:"8,keyasint,omitempty"` // where it ran
}

// SignalArgs is a signal for a job on its target.
type SignalArgs struct {
	ID     string `cbor:"1,keyasint"`
	Signal int    `cbor:"2,keyasint"`
}

// Job states.
const (
	StatePlacing = "placing"
	StateRunning = "running"
	StateFrozen  = "frozen"
	StateExited  = "exited"
	StateLost    = "lost"
)

// Job is one remote process as ps shows it.
type Job struct {
	ID      string `cbor:"1,keyasint" json:"id"`
	Home    string `cbor:"2,keyasint" json:"home"`
	Host    string `cbor:"3,keyasint" json:"host"`
	User    string `cbor:"4,keyasint" json:"user"`
	UID     uint32 `cbor:"5,keyasint" json:"uid"`
	Command string `cbor:"6,keyasint" json:"command"` // "" when the caller may not see it
	State   string `cbor:"7,keyasint" json:"state"`
	PID     int    `cbor:"8,keyasint,omitempty" json:"pid,omitempty"` // on the target
	StartMs int64  `cbor:"9,keyasint" json:"start_ms"`
	GID     uint32 `cbor:"10,keyasint" json:"gid"`
	Policy  string `cbor:"11,keyasint,omitempty" json:"policy,omitempty"`
}

// JobsArgs asks for jobs: All for every user's (details only for the
// caller's own), else the caller's.
type JobsArgs struct {
	All bool `cbor:"1,keyasint,omitempty"`
	// UID is the asking user, set by a home when it asks another home.
	UID uint32 `cbor:"2,keyasint,omitempty"`
}

// KillArgs signals a job by global id.
type KillArgs struct {
	ID     string `cbor:"1,keyasint"`
	Signal int    `cbor:"2,keyasint"`
	UID    uint32 `cbor:"3,keyasint,omitempty"` // set by a home asking another home
}

// MethodLocalSession holds idle hosts for a group of jobs (a pmake run):
// the caller sends SessionArgs and keeps the stream open; the daemon holds
// the hosts from the idle database, sends the holding (idledb.Grants) after
// every change, and releases everything when the stream closes. Jobs whose
// Request names the session are placed on its hosts.
const MethodLocalSession = "local.session"

// SessionArgs opens a session of up to N hosts.
type SessionArgs struct {
	ID string `cbor:"1,keyasint"`
	N  int    `cbor:"2,keyasint"`
}
