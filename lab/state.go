package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Paths and names on the machine. They are fixed: there is one lab per machine.
const (
	Root       = "/var/lib/sprite-lab"
	BinDir     = Root + "/bin"
	HostsDir   = Root + "/hosts"
	StateFile  = Root + "/state.json"
	Bridge     = "sprite0"
	BridgeAddr = "10.213.0.1"
	Port       = 7170
	User       = "alice"
	// HostPATH is PATH for every command run in a host.
	HostPATH = BinDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// SpriteBin is the sprite binary hosts run.
	SpriteBin = BinDir + "/sprite"
	// SocketPath is the daemon's socket inside a host.
	SocketPath = "/run/sprite/sprite.sock"
	// MaxHosts is how many hosts fit in 10.213.0.11 … 10.213.0.254.
	MaxHosts = 244

	lockFile = "/run/sprite-lab.lock"
)

// ErrNoLab is returned by Load when no lab is up.
var ErrNoLab = errors.New("no lab is up; run `sprite lab up --hosts N` first")

// Lab is a running lab as recorded in state.json.
type Lab struct {
	Hosts     []Host    `json:"hosts"`
	CPUs      float64   `json:"cpus,omitempty"`
	IdleAfter Duration  `json:"idle_after"`
	Daemons   bool      `json:"daemons"`
	Cgroup    string    `json:"cgroup,omitempty"`
	Created   time.Time `json:"created"`
}

// Host is one workstation of the lab.
type Host struct {
	Name    string `json:"name"`
	Index   int    `json:"index"`
	Addr    string `json:"addr"` // IP address, no port
	Netns   string `json:"netns"`
	Veth    string `json:"veth"`
	InitPID int    `json:"init_pid"` // on the machine
	Cgroup  string `json:"cgroup,omitempty"`
	Dir     string `json:"dir"` // per-host directory on the machine
}

// Duration is a time.Duration written as text ("30s") in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

func hostName(i int) string { return "h" + strconv.Itoa(i) }
func hostIP(i int) string   { return fmt.Sprintf("10.213.0.%d", 10+i) }

// DaemonAddr is host's daemon address, IP:port.
func (h *Host) DaemonAddr() string { return fmt.Sprintf("%s:%d", h.Addr, Port) }

// DaemonLog is the daemon log of h as a path on the machine.
func (h *Host) DaemonLog() string { return filepath.Join(h.Dir, "state", "daemon.log") }

// InitLog is the host init's log as a path on the machine.
func (h *Host) InitLog() string { return filepath.Join(h.Dir, "init.log") }

func newHost(i int) Host {
	n := hostName(i)
	return Host{Name: n, Index: i, Addr: hostIP(i), Netns: "sprite-" + n, Veth: "sprite-" + n,
		Dir: filepath.Join(HostsDir, n)}
}

// Load reads the lab from state.json. It returns ErrNoLab (wrapped) when no
// lab is up.
func Load() (*Lab, error) {
	b, err := os.ReadFile(StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoLab
	}
	if err != nil {
		return nil, fmt.Errorf("lab: read state: %w", err)
	}
	l := new(Lab)
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("lab: parse %s: %w; run `sprite lab down` to clear it", StateFile, err)
	}
	return l, nil
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp := StateFile + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, StateFile); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// Host returns the host with the given name.
func (l *Lab) Host(name string) (*Host, error) {
	for i := range l.Hosts {
		if l.Hosts[i].Name == name {
			return &l.Hosts[i], nil
		}
	}
	return nil, fmt.Errorf("no lab host %s; the lab has %s", name, l.hostRange())
}

// Names lists the hosts' names in order.
func (l *Lab) Names() []string {
	var ns []string
	for _, h := range l.Hosts {
		ns = append(ns, h.Name)
	}
	return ns
}

func (l *Lab) hostRange() string {
	switch len(l.Hosts) {
	case 0:
		return "no hosts"
	case 1:
		return l.Hosts[0].Name
	case 2:
		return l.Hosts[0].Name + " and " + l.Hosts[1].Name
	}
	return l.Hosts[0].Name + ".." + l.Hosts[len(l.Hosts)-1].Name
}

// joinNames writes "h1, h2 and h3".
func joinNames(ns []string) string {
	if len(ns) < 2 {
		return strings.Join(ns, "")
	}
	return strings.Join(ns[:len(ns)-1], ", ") + " and " + ns[len(ns)-1]
}
