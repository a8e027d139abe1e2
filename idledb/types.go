package idledb

import "sprite/api"

// Methods between hosts (ALPN sprite/1); the caller's host is always the
// name in its certificate.
const (
	MethodReport     = "idledb.report"     // Report -> ReportReply
	MethodReports    = "idledb.reports"    // stream: ReportReply, then the caller's Report Msgs
	MethodRequest    = "idledb.request"    // Request -> Grants
	MethodRenew      = "idledb.renew"      // Renew -> Grants
	MethodRelease    = "idledb.release"    // Release -> none
	MethodWatch      = "idledb.watch"      // Renew -> stream of Grants
	MethodHosts      = "idledb.hosts"      // none -> []HostFacts
	MethodWatchHosts = "idledb.watchhosts" // none -> stream of HostFacts
	MethodHistory    = "idledb.history"    // HistoryRequest -> []Period
)

// Activities as reported (the same words as package idle's).
const (
	ActIdle    = "idle"
	ActActive  = "active"
	ActBusy    = "busy"
	ActNever   = "never"
	ActDown    = "down"    // the database has not heard from the host
	ActUnknown = "unknown" // known from before a restart, not reported since
)

// Report is a host's idleness, sent at every change and every heartbeat.
// Durations, not times, so that the hosts' clocks do not matter.
type Report struct {
	Host     string  `cbor:"1,keyasint"`
	CPUs     float64 `cbor:"2,keyasint"`
	Arch     string  `cbor:"3,keyasint"`
	Activity string  `cbor:"4,keyasint"`
	// ForMs is how long the activity has lasted.
	ForMs       int64    `cbor:"5,keyasint"`
	Load        float64  `cbor:"6,keyasint"`
	ForeignJobs int      `cbor:"7,keyasint,omitempty"`
	MaxForeign  int      `cbor:"8,keyasint,omitempty"`
	Forbid      []string `cbor:"9,keyasint,omitempty"`
}

// ReportReply tells the host how often to report.
type ReportReply struct {
	HeartbeatMs int64 `cbor:"1,keyasint"`
}

// HostFacts is one host as the database sees it.
type HostFacts struct {
	Name        string  `cbor:"1,keyasint" json:"name"`
	Activity    string  `cbor:"2,keyasint" json:"activity"`
	Idle        bool    `cbor:"3,keyasint" json:"idle"`
	IdleForMs   int64   `cbor:"4,keyasint,omitempty" json:"idle_for_ms,omitempty"`
	Load        float64 `cbor:"5,keyasint" json:"load"`
	CPUs        float64 `cbor:"6,keyasint" json:"cpus"`
	Arch        string  `cbor:"7,keyasint" json:"arch"`
	ForeignJobs int     `cbor:"8,keyasint,omitempty" json:"foreign_jobs"`
	MaxForeign  int     `cbor:"9,keyasint,omitempty" json:"max_foreign,omitempty"`
	GrantedTo   string  `cbor:"10,keyasint,omitempty" json:"granted_to,omitempty"`
	// SeenMs is the database's unix time (ms) of the host's last report.
	SeenMs int64 `cbor:"11,keyasint,omitempty" json:"seen_ms,omitempty"`
}

// Request asks for up to N idle hosts; it is a standing demand: hosts that
// turn idle later are granted until the requester holds N. Repeating a
// request with the same ID changes the demand and renews the lease.
type Request struct {
	// ID names the requester within its host ("pmake-1234"); the
	// database prefixes the caller's host: "h2/pmake-1234".
	ID   string `cbor:"1,keyasint"`
	User string `cbor:"2,keyasint,omitempty"`
	N    int    `cbor:"3,keyasint"`
	Arch string `cbor:"4,keyasint,omitempty"` // "" means any
}

// Renew extends a requester's lease (and names it for Watch).
type Renew struct {
	ID string `cbor:"1,keyasint"`
}

// Release gives hosts back; no hosts means all of them, and the requester
// is forgotten.
type Release struct {
	ID    string   `cbor:"1,keyasint"`
	Hosts []string `cbor:"2,keyasint,omitempty"`
}

// Grant and Grants are defined in package api, where the local session
// stream (pmake's) uses them without linking the database.
type (
	Grant  = api.Grant
	Grants = api.Grants
)

// HistoryRequest asks for a host's idle periods, newest last.
type HistoryRequest struct {
	Host string `cbor:"1,keyasint"`
}

// Period is one idle period (unix ms on the database's clock); End is 0
// while it lasts.
type Period struct {
	Start int64 `cbor:"1,keyasint" json:"start_ms"`
	End   int64 `cbor:"2,keyasint,omitempty" json:"end_ms,omitempty"`
}
