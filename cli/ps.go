package cli

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"sprite/migrate"
)

func init() {
	register("ps", "list my remote processes wherever they run (--all: the cluster's)", psMain)
	register("kill", "send a signal to a remote process by its global id", killMain)
}

func psMain(args []string) error {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	socket := socketFlag(fs)
	all := fs.Bool("all", false, "every home's processes, every user's (others' commands hidden)")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	var jobs []migrate.Job
	if err := localCall(*socket, migrate.MethodLocalJobs, migrate.JobsArgs{All: *all}, &jobs); err != nil {
		return err
	}
	if jobs == nil {
		jobs = []migrate.Job{}
	}
	slices.SortFunc(jobs, func(a, b migrate.Job) int { return strings.Compare(a.ID, b.ID) })
	if *asJSON {
		return printJSON(jobs)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tUSER\tSTATE\tTIME\tCOMMAND")
	for _, j := range jobs {
		cmd := j.Command
		if cmd == "" {
			cmd = "-"
		}
		age := time.Since(time.UnixMilli(j.StartMs)).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Host, j.User, j.State, age, cmd)
	}
	return tw.Flush()
}

func killMain(args []string) error {
	sig := unix.SIGTERM
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "--" && !strings.HasPrefix(args[0], "--") {
		s, err := parseSignal(args[0][1:])
		if err != nil {
			return err
		}
		sig, args = s, args[1:]
	}
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	socket := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: sprite kill [-SIG] ID... (ids from `sprite ps`)")
		return exitError{2}
	}
	failed := false
	for _, id := range fs.Args() {
		if err := localCall(*socket, migrate.MethodLocalKill, migrate.KillArgs{ID: id, Signal: int(sig)}, nil); err != nil {
			fmt.Fprintf(os.Stderr, "sprite kill: %v\n", err)
			failed = true
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// parseSignal reads "9", "KILL" or "SIGKILL".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n <= 64 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q: use a number or a name such as TERM, KILL, INT, STOP, CONT", s)
}
