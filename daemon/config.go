package daemon

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"sprite/pki"
)

// Defaults for the config file. docs/config.md documents every field.
const (
	DefaultStateDir = "/var/lib/sprite"
	DefaultSocket   = "/run/sprite/sprite.sock"
	DefaultPort     = 7170
	ConfigFile      = "config.toml"
)

// Duration is a time.Duration written as "30s" in the config file.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q: use a form like 500ms, 30s or 2m", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Export is a local directory this host serves under a prefix of the global
// namespace (served once the namespace exists).
type Export struct {
	Prefix string `toml:"prefix"`
	Path   string `toml:"path"`
}

// Config is the daemon's config file, config.toml in the state directory.
type Config struct {
	Name      string   `toml:"name"`
	Listen    string   `toml:"listen"`
	Addr      string   `toml:"addr"`
	Socket    string   `toml:"socket"`
	Seeds     []string `toml:"seeds"`
	CPUs      float64  `toml:"cpus"`
	IdleAfter Duration `toml:"idle_after"`
	Heartbeat Duration `toml:"heartbeat"`
	DownAfter Duration `toml:"down_after"`
	LogLevel  string   `toml:"log_level"`
	Mount     string   `toml:"mount"`
	Exports   []Export `toml:"export"`
	// FSTimeout bounds one file system call to another host: past it an
	// operation on that host's domain fails with EIO (package fs).
	FSTimeout Duration `toml:"fs_timeout"`
	// IdleDB names the host that runs the idle database (package idledb);
	// every host reports its idleness there.
	IdleDB string `toml:"idledb"`
	// IdleLoad is how the idle detector measures load: "proc" (this
	// host's runnable threads, the default) or "loadavg".
	IdleLoad string `toml:"idle_load"`
	// Owners may change this host's idle policy (`sprite idle`) besides
	// root: user names.
	Owners []string `toml:"owners"`
	// JobsAsRoot lets other hosts' jobs of uid 0 run here (off: refused).
	JobsAsRoot bool `toml:"jobs_as_root"`
	// JobNice is the nice value of foreign jobs (default 19).
	JobNice int `toml:"job_nice"`
	// EvictPolicy is what this home does with its job when the job's host
	// is reclaimed by its owner: "restart" (default), "wait" or
	// "checkpoint"; a job's own policy (sprite mig --policy) wins.
	EvictPolicy string `toml:"evict_policy"`
	// EvictGrace is how long a "wait" job stays frozen before it restarts.
	EvictGrace Duration `toml:"evict_grace"`
	// Procs is how many threads may run the daemon's Go code at once
	// (GOMAXPROCS); 0, the default, leaves Go's choice (every CPU). The
	// environment's GOMAXPROCS, when set, wins. docs/config.md gives the
	// trade-off measured.
	Procs int `toml:"procs"`
}

// SetDefaults fills every unset field.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = fmt.Sprintf(":%d", DefaultPort)
	}
	if c.Socket == "" {
		c.Socket = DefaultSocket
	}
	if c.IdleAfter.Duration == 0 {
		c.IdleAfter.Duration = 30 * time.Second
	}
	if c.Heartbeat.Duration == 0 {
		c.Heartbeat.Duration = time.Second
	}
	if c.DownAfter.Duration == 0 {
		c.DownAfter.Duration = 5 * time.Second
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Mount == "" {
		c.Mount = "/sprite"
	}
	if c.FSTimeout.Duration <= 0 {
		c.FSTimeout.Duration = 10 * time.Second
	}
	if c.IdleLoad == "" {
		c.IdleLoad = "proc"
	}
	if c.JobNice == 0 {
		c.JobNice = 19
	}
	if c.EvictPolicy == "" {
		c.EvictPolicy = "restart"
	}
	if c.EvictGrace.Duration == 0 {
		c.EvictGrace.Duration = 30 * time.Second
	}
}

// Validate checks the config and says which field is wrong.
func (c *Config) Validate() error {
	if err := pki.ValidName(c.Name); err != nil {
		return fmt.Errorf("config name: %w", err)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("config addr %q: %w (the address other hosts reach this one at, e.g. 10.0.0.5:%d)", c.Addr, err, DefaultPort)
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("config seeds: %q: %w", s, err)
		}
	}
	if c.Heartbeat.Duration <= 0 || c.DownAfter.Duration < 2*c.Heartbeat.Duration {
		return fmt.Errorf("config: down_after (%s) must be at least twice heartbeat (%s)", c.DownAfter, c.Heartbeat)
	}
	if c.IdleDB != "" {
		if err := pki.ValidName(c.IdleDB); err != nil {
			return fmt.Errorf("config idledb: %w", err)
		}
	}
	if c.EvictPolicy != "restart" && c.EvictPolicy != "wait" && c.EvictPolicy != "checkpoint" {
		return fmt.Errorf("config evict_policy %q: use \"restart\", \"wait\" or \"checkpoint\"", c.EvictPolicy)
	}
	if c.JobNice < 1 || c.JobNice > 19 {
		return fmt.Errorf("config job_nice %d: use 1 to 19 (19, the default, is the lowest priority)", c.JobNice)
	}
	if c.Procs < 0 || c.Procs > 1024 {
		return fmt.Errorf("config procs %d: use 0 to 1024 (threads running the daemon's code at once; 0, the default, is every CPU)", c.Procs)
	}
	if c.IdleLoad != "proc" && c.IdleLoad != "loadavg" {
		return fmt.Errorf("config idle_load %q: use \"proc\" or \"loadavg\"", c.IdleLoad)
	}
	for _, e := range c.Exports {
		if !strings.HasPrefix(e.Prefix, "/") || !filepath.IsAbs(e.Path) {
			return fmt.Errorf("config export %q=%q: prefix and path must be absolute", e.Prefix, e.Path)
		}
	}
	return nil
}

// LoadConfig reads config.toml from stateDir, applies defaults and checks it.
func LoadConfig(stateDir string) (*Config, error) {
	path := filepath.Join(stateDir, ConfigFile)
	var c Config
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w (run `sprite init` or `sprite join` to create it)", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("read config %s: unknown field %q (see docs/config.md)", path, und[0].String())
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return &c, nil
}

// SaveConfig writes config.toml into stateDir.
func SaveConfig(stateDir string, c *Config) error {
	var buf bytes.Buffer
	buf.WriteString("# sprite daemon configuration; every field is described in docs/config.md.\n")
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return pki.WriteFile(stateDir, ConfigFile, buf.Bytes(), 0o644)
}
