package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// Options are the knobs of Up.
type Options struct {
	Hosts     int           // how many hosts, h1…hN (1…MaxHosts)
	CPUs      float64       // CPU quota per host; 0 is none
	IdleAfter time.Duration // the hosts' idle threshold; 0 is 30s
	NoDaemons bool          // make the hosts only; start no daemons
	// Binary is the sprite binary the hosts run (copied to BinDir);
	// "" is this process's own executable.
	Binary string
	// Log gets one line per step; nil is silent.
	Log io.Writer
}

// DefaultIdleAfter is the hosts' idle threshold unless told otherwise.
const DefaultIdleAfter = 30 * time.Second

func (o *Options) check() error {
	if o.Hosts < 1 || o.Hosts > MaxHosts {
		return fmt.Errorf("--hosts %d: want 1 to %d", o.Hosts, MaxHosts)
	}
	if o.CPUs < 0 {
		return fmt.Errorf("--cpus %g: want a positive number of CPUs", o.CPUs)
	}
	if o.CPUs > 0 {
		if _, err := quotaUs(o.CPUs); err != nil {
			return err
		}
	}
	if o.IdleAfter < 0 {
		return fmt.Errorf("--idle-after %v: want a positive duration", o.IdleAfter)
	}
	if o.IdleAfter == 0 {
		o.IdleAfter = DefaultIdleAfter
	}
	return nil
}

// Up makes a lab of o.Hosts hosts and, unless o.NoDaemons, starts a sprite
// cluster on it. If anything fails it takes down what it made (keeping the
// hosts' logs) and says what failed.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	unlock, err := lock()
	if err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	defer unlock()
	if what := leftovers(); what != "" {
		return nil, fmt.Errorf("lab up: a lab is up already; run `sprite lab down` first (found %s)", what)
	}
	l, err := up(ctx, &o)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if derr := down(cctx, true); derr != nil {
			return nil, fmt.Errorf("lab up: %w; cleaning up failed too: %v", err, derr)
		}
		return nil, fmt.Errorf("lab up: %w; the lab was taken down again (logs kept in %s)", err, HostsDir)
	}
	return l, nil
}

func up(ctx context.Context, o *Options) (*Lab, error) {
	uid, gid, err := prepareMachine(o)
	if err != nil {
		return nil, err
	}
	l := &Lab{CPUs: o.CPUs, IdleAfter: Duration(o.IdleAfter), Daemons: !o.NoDaemons, Created: time.Now()}
	for i := 1; i <= o.Hosts; i++ {
		l.Hosts = append(l.Hosts, newHost(i))
	}
	if err := l.makeHosts(o, uid, gid); err != nil {
		return nil, err
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	logf(o.Log, "lab: %d hosts up (%s), %s", len(l.Hosts), l.hostRange(), quotaText(o.CPUs))
	if o.NoDaemons {
		return l, nil
	}
	if err := l.startCluster(ctx); err != nil {
		return nil, err
	}
	logf(o.Log, "lab: the sprite cluster runs on %s", l.hostRange())
	return l, nil
}

// prepareMachine does what all hosts need once: the user, the sysctls, the
// binaries, the mount points and the bridge.
func prepareMachine(o *Options) (uid, gid int, err error) {
	if os.Geteuid() != 0 {
		return 0, 0, errors.New("the lab needs root; run it with sudo")
	}
	if uid, gid, err = ensureUser(); err != nil {
		return 0, 0, err
	}
	steps := []func() error{
		raiseUDPBuffers,
		func() error { return installBinaries(o.Binary) },
		makeMountPoints,
		setupBridge,
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// makeHosts creates the hosts' directories and cgroups and starts their
// inits, in parallel.
func (l *Lab) makeHosts(o *Options, uid, gid int) error {
	parent, err := setupCgroupParent(o.CPUs)
	if err != nil {
		if o.CPUs > 0 {
			return err
		}
		logf(o.Log, "lab: hosts get no cgroups (%v)", err)
		parent = ""
	}
	l.Cgroup = parent
	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	for i := range l.Hosts {
		wg.Add(1)
		go func(h *Host) {
			defer wg.Done()
			errs[h.Index-1] = makeHost(h, parent, o.CPUs, uid, gid)
			if errs[h.Index-1] == nil {
				logf(o.Log, "lab: %s up: %s, init pid %d", h.Name, h.Addr, h.InitPID)
			}
		}(&l.Hosts[i])
	}
	wg.Wait()
	return errors.Join(errs...)
}

func makeHost(h *Host, parent string, cpus float64, uid, gid int) error {
	if err := makeHostDirs(h, uid, gid); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	if parent != "" {
		cg, err := createHostCgroup(parent, h.Name, cpus)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		h.Cgroup = cg
	}
	return startHost(h)
}

func quotaText(cpus float64) string {
	if cpus <= 0 {
		return "no CPU quota"
	}
	return fmt.Sprintf("%g CPUs each", cpus)
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// lock serialises up and down on this machine.
func lock() (unlock func(), err error) {
	f, err := os.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", lockFile, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockFile, err)
	}
	return func() { f.Close() }, nil
}
