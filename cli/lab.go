package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"sprite/lab"
)

func init() {
	register("lab", "run a cluster of workstations on this machine", labMain)
	labCommands = map[string]labCommand{
		"up":        {"--hosts N [--cpus X] [--idle-after D] [--no-daemons]", labUp},
		"down":      {"[--keep]", labDown},
		"exec":      {"H [--user U] -- CMD [ARGS...]", labExec},
		"type":      {"H [--keys TEXT] [--new-pty]", labType},
		"status":    {"[--json]", labStatus},
		"start":     {"H", labStart},
		"stop":      {"H [--kill]", labStop},
		"_hostinit": {"", labHostInit},
		"_type":     {"", labTypeHere},
		"_run":      {"", labRun},
	}
}

type labCommand struct {
	usage string // arguments, for the help text; "" hides the command
	run   func(args []string) error
}

// labCommands are the subcommands of `sprite lab`; names with _ are internal.
var labCommands map[string]labCommand

var labOrder = []string{"up", "status", "exec", "type", "start", "stop", "down"}

func labUsage() {
	fmt.Fprintln(os.Stderr, "usage: sprite lab COMMAND [flags]  (needs root)\n\ncommands:")
	for _, n := range labOrder {
		fmt.Fprintf(os.Stderr, "  sprite lab %s %s\n", n, labCommands[n].usage)
	}
}

func labMain(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		labUsage()
		if len(args) == 0 {
			return exitError{2}
		}
		return nil
	}
	c, ok := labCommands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "sprite lab: unknown command %q; run `sprite lab help`\n", args[0])
		return exitError{2}
	}
	err := c.run(args[1:])
	var ee exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	fmt.Fprintf(os.Stderr, "sprite %v\n", err)
	return exitError{1}
}

// labFlags is a flag set for `sprite lab NAME`.
func labFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("sprite lab "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: sprite lab %s %s\n", name, labCommands[name].usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; a help request or a bad flag ends the command.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitError{0}
	}
	if err != nil {
		return exitError{2}
	}
	return nil
}

// parseHost parses `H [flags] [-- rest]`, H also after the flags.
func parseHost(fs *flag.FlagSet, args []string) (host string, rest []string, err error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		host, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return "", nil, err
	}
	rest = fs.Args()
	if host == "" && len(rest) > 0 {
		host, rest = rest[0], rest[1:]
		if len(rest) > 0 && rest[0] == "--" {
			rest = rest[1:]
		}
	}
	if host == "" {
		fs.Usage()
		return "", nil, exitError{2}
	}
	return host, rest, nil
}

// signalContext is a context cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func labUp(args []string) error {
	fs := labFlags("up")
	o := lab.Options{Log: os.Stderr}
	fs.IntVar(&o.Hosts, "hosts", 0, "number of hosts, h1…hN")
	fs.Float64Var(&o.CPUs, "cpus", 0, "CPU quota per host (0: none)")
	fs.DurationVar(&o.IdleAfter, "idle-after", lab.DefaultIdleAfter, "the hosts' idle threshold")
	fs.BoolVar(&o.NoDaemons, "no-daemons", false, "make the hosts, start no sprite daemons")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.Hosts == 0 || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "sprite lab up: say how many hosts with --hosts N")
		fs.Usage()
		return exitError{2}
	}
	ctx, cancel := signalContext()
	defer cancel()
	l, err := lab.Up(ctx, o)
	if err != nil {
		return err
	}
	printStatus(l.Status())
	return nil
}

func labDown(args []string) error {
	fs := labFlags("down")
	keep := fs.Bool("keep", false, "keep the hosts' directories (homes, logs) in "+lab.HostsDir)
	if err := parse(fs, args); err != nil {
		return err
	}
	return lab.Down(context.Background(), *keep)
}

func labExec(args []string) error {
	fs := labFlags("exec")
	user := fs.String("user", "", "run as this user (default root)")
	host, argv, err := parseHost(fs, args)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		fs.Usage()
		return exitError{2}
	}
	l, err := lab.Load()
	if err != nil {
		return fmt.Errorf("lab exec: %w", err)
	}
	cmd := l.Command(host, *user, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = runForwarding(cmd)
	if code, ok := lab.ExitStatus(err); ok {
		if code == 0 {
			return nil
		}
		return exitError{code}
	}
	return fmt.Errorf("lab exec %s: %w", host, err)
}

// runForwarding runs cmd in the foreground: the terminal's SIGINT and
// SIGQUIT reach the command in the host directly (same process group), so
// they are ignored here; SIGTERM and SIGHUP are passed on.
func runForwarding(cmd *exec.Cmd) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM || s == syscall.SIGHUP {
				_ = cmd.Process.Signal(s)
			}
		}
	}()
	return cmd.Wait()
}

func labType(args []string) error {
	fs := labFlags("type")
	keys := fs.String("keys", lab.DefaultKeys, "the keys to type")
	newPty := fs.Bool("new-pty", false, "type on a new terminal instead of the host's console")
	host, rest, err := parseHost(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return exitError{2}
	}
	l, err := lab.Load()
	if err != nil {
		return fmt.Errorf("lab type: %w", err)
	}
	if *newPty {
		return l.TypeNewPty(context.Background(), host, *keys)
	}
	return l.Type(context.Background(), host, *keys)
}

func labStatus(args []string) error {
	fs := labFlags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	l, err := lab.Load()
	if err != nil {
		return fmt.Errorf("lab status: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(l.Status())
	}
	printStatus(l.Status())
	return nil
}

func printStatus(ss []lab.HostStatus) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOST\tADDR\tINIT\tDAEMON\tCPUS")
	for _, s := range ss {
		init, daemon, cpus := fmt.Sprint(s.InitPID), "stopped", "-"
		if !s.Alive {
			init += " (dead)"
		}
		if s.Daemon {
			daemon = fmt.Sprintf("running (pid %d)", s.DaemonPID)
		}
		if s.CPUs > 0 {
			cpus = fmt.Sprint(s.CPUs)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Addr, init, daemon, cpus)
	}
	w.Flush()
}

func labStart(args []string) error {
	fs := labFlags("start")
	host, rest, err := parseHost(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return exitError{2}
	}
	l, err := lab.Load()
	if err == nil {
		err = l.StartDaemon(context.Background(), host)
	}
	if err != nil {
		return fmt.Errorf("lab start: %w", err)
	}
	return nil
}

func labStop(args []string) error {
	fs := labFlags("stop")
	kill := fs.Bool("kill", false, "stop with SIGKILL instead of SIGTERM")
	host, rest, err := parseHost(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return exitError{2}
	}
	l, err := lab.Load()
	if err == nil {
		err = l.StopDaemon(context.Background(), host, *kill)
	}
	if err != nil {
		return fmt.Errorf("lab stop: %w", err)
	}
	return nil
}

func labHostInit(args []string) error {
	fs := flag.NewFlagSet("sprite lab _hostinit", flag.ContinueOnError)
	name := fs.String("name", "", "host name")
	dir := fs.String("dir", "", "host directory on the machine")
	if err := parse(fs, args); err != nil {
		return err
	}
	return lab.HostInit(*name, *dir)
}

func labTypeHere(args []string) error {
	fs := flag.NewFlagSet("sprite lab _type", flag.ContinueOnError)
	keys := fs.String("keys", lab.DefaultKeys, "the keys to type")
	if err := parse(fs, args); err != nil {
		return err
	}
	return lab.TypeHere(*keys)
}

func labRun(args []string) error {
	fs := flag.NewFlagSet("sprite lab _run", flag.ContinueOnError)
	cgroup := fs.String("cgroup", "", "cgroup directory to join")
	user := fs.String("user", "root", "user to run as")
	if err := parse(fs, args); err != nil {
		return err
	}
	return lab.Run(*cgroup, *user, fs.Args())
}
