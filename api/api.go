// Package api is the local API between the sprite CLI and the daemon on the
// same host: the same calls and frames as between hosts (package rpc), over
// a unix socket, one connection per call. The daemon learns who calls from
// the socket's SO_PEERCRED, never from the request.
//
// This package holds the method names, their argument and result types, and
// the client the CLI uses.
package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"sprite/rpc"
	"sprite/wire"
)

// Local methods.
const (
	MethodHosts  = "local.hosts"
	MethodStatus = "local.status"
	// MethodExports returns the prefix table ([]fs.Domain; package fs).
	MethodExports = "local.exports"
	// Idle detection and the idle database (packages idle, idledb).
	MethodHostsWatch  = "local.hosts.watch"  // stream of []HostStatus changes
	MethodIdle        = "local.idle"         // idle.SetArgs -> idle.Status
	MethodIdleHistory = "local.idle.history" // idledb.HistoryRequest -> []idledb.Period
	MethodGrant       = "local.grant"        // idledb.Request -> stream of idledb.Grants
)

// HostInfo is what a host tells the others about itself.
type HostInfo struct {
	Name    string  `cbor:"1,keyasint" json:"name"`
	Addr    string  `cbor:"2,keyasint" json:"addr"`
	CPUs    float64 `cbor:"3,keyasint" json:"cpus"`
	Arch    string  `cbor:"4,keyasint" json:"arch"`
	Version string  `cbor:"5,keyasint,omitempty" json:"version,omitempty"`
	// Boot is the daemon's start time (unix ns): a new value means the
	// daemon restarted.
	Boot int64 `cbor:"6,keyasint,omitempty" json:"-"`
}

// Host states.
const (
	StateUp   = "up"
	StateDown = "down"
)

// HostStatus is one row of `sprite hosts`.
type HostStatus struct {
	HostInfo
	State string `cbor:"10,keyasint" json:"state"`
	// LastSeen is the unix time in ms of the last answer from the host.
	LastSeen int64 `cbor:"11,keyasint,omitempty" json:"last_seen_ms,omitempty"`
	// RTT is the last heartbeat's round trip in microseconds.
	RTT  int64 `cbor:"12,keyasint,omitempty" json:"rtt_us,omitempty"`
	Self bool  `cbor:"13,keyasint,omitempty" json:"self,omitempty"`

	// Idleness, as the idle database sees it (empty Activity: the
	// database did not answer).
	Activity    string  `cbor:"20,keyasint,omitempty" json:"activity,omitempty"` // idle, active, busy, never, down, unknown
	Idle        bool    `cbor:"21,keyasint,omitempty" json:"idle"`
	IdleFor     float64 `cbor:"22,keyasint,omitempty" json:"idle_for_s"`
	Load        float64 `cbor:"23,keyasint,omitempty" json:"load"`
	ForeignJobs int     `cbor:"24,keyasint,omitempty" json:"foreign_jobs"`
	GrantedTo   string  `cbor:"25,keyasint,omitempty" json:"granted_to"`
}

// Status is the daemon's own state.
type Status struct {
	Host    HostInfo `cbor:"1,keyasint" json:"host"`
	Uptime  int64    `cbor:"2,keyasint" json:"uptime_s"`
	Pid     int      `cbor:"3,keyasint" json:"pid"`
	Members int      `cbor:"4,keyasint" json:"members"`
}

// Client calls the local daemon.
type Client struct {
	Socket string
}

// ErrNoDaemon means nothing answers on the socket.
var ErrNoDaemon = errors.New("no sprite daemon is running on this host")

// Call runs one local call.
func (c *Client) Call(ctx context.Context, method string, args, reply any) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	return rpc.Invoke(ctx, conn, method, args, reply, wire.DefaultMaxFrame)
}

// Open starts a streaming local call; end it with Finish.
func (c *Client) Open(ctx context.Context, method string, args any) (*rpc.ClientStream, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	return rpc.Start(ctx, conn, method, args, wire.DefaultMaxFrame)
}

func (c *Client) dial(ctx context.Context) (UnixConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return UnixConn{}, fmt.Errorf("%w (socket %s): start it with `sprite daemon` or `systemctl start sprite`", ErrNoDaemon, c.Socket)
		}
		return UnixConn{}, fmt.Errorf("connect to daemon at %s: %w", c.Socket, err)
	}
	return NewUnixConn(nc.(*net.UnixConn)), nil
}

// UnixConn adapts a unix-socket connection to rpc.Conn.
type UnixConn struct{ *net.UnixConn }

var _ rpc.Conn = UnixConn{}

// NewUnixConn wraps c.
func NewUnixConn(c *net.UnixConn) UnixConn { return UnixConn{c} }

// CloseWrite half-closes the connection.
func (u UnixConn) CloseWrite() error { return u.UnixConn.CloseWrite() }

// Abort closes the connection.
func (u UnixConn) Abort() { u.UnixConn.Close() }

// Done closes the connection.
func (u UnixConn) Done() { u.UnixConn.Close() }

// Grant is one host lent to a requester.
type Grant struct {
	Host string  `cbor:"1,keyasint" json:"host"`
	CPUs float64 `cbor:"2,keyasint" json:"cpus"`
	// Slots is how many jobs the holder may run there at once: the host's
	// CPUs (at least one), capped by its owner's max_foreign.
	Slots int `cbor:"3,keyasint" json:"slots"`
}

// Grants is a requester's holding after a change, and why it changed:
// the idle database's answer, and each message of a pmake session's
// stream (local.session).
type Grants struct {
	ID      string  `cbor:"1,keyasint" json:"id"`
	Hosts   []Grant `cbor:"2,keyasint" json:"hosts"`
	LeaseMs int64   `cbor:"3,keyasint" json:"lease_ms"`
	// Event says what changed: "granted h3", "revoked h2: busy", ...
	Event string `cbor:"4,keyasint,omitempty" json:"event,omitempty"`
	Want  int    `cbor:"5,keyasint" json:"want"`
}
