package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"sprite/daemon"
	"sprite/fs/fsd"
	"sprite/homenode"
	"sprite/idle"
	"sprite/idledb"
	"sprite/migrate"
)

func init() {
	register("daemon", "run this host's sprite daemon (foreground)", daemonMain)
}

func stateFlag(fs *flag.FlagSet) *string {
	return fs.String("state", daemon.DefaultStateDir, "state `dir`ectory: config, keys, certificates")
}

func daemonMain(args []string) error {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	state := stateFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	cfg, err := daemon.LoadConfig(*state)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("config log_level %q: use debug, info, warn or error (debug-4 also logs every FUSE request)", cfg.LogLevel)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("host", cfg.Name)
	slog.SetDefault(log)
	if cfg.Procs > 0 && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(cfg.Procs)
	}
	log.Debug("daemon threads", "gomaxprocs", runtime.GOMAXPROCS(0))
	d, err := daemon.New(cfg, *state, log)
	if err != nil {
		return err
	}
	fsSvc := fsd.New() // the global namespace at cfg.Mount
	d.Add(fsSvc)
	dbs := idledb.NewService()
	d.Add(dbs)
	is := idle.NewService(dbs)
	d.Add(is)
	d.Add(migrate.NewExecutor(is, migrate.ExecOptions{AllowRoot: cfg.JobsAsRoot, Nice: cfg.JobNice, Idle: true}))
	hn := homenode.New(is)
	fsSvc.Procs = hn         // /sprite/proc
	hn.Settle = fsSvc.Settle // a job elsewhere sees this disk's changes
	d.Add(hn)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return d.Run(ctx)
}
