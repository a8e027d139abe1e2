package cli

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"sprite/migrate"
)

func init() {
	register("evict", "evict the foreign jobs of this host (or --host H, as root) as its owner's return would", evictMain)
	register("evictions", "list this host's recent evictions", evictionsMain)
	register("migrate", "move one of this home's jobs to another host: sprite migrate ID HOST", migrateMain)
}

func evictMain(args []string) error {
	fs := flag.NewFlagSet("evict", flag.ContinueOnError)
	socket := socketFlag(fs)
	host := fs.String("host", "", "evict this `host`'s foreign jobs (root only)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	var r migrate.EvictReply
	if err := localCall(*socket, migrate.MethodLocalEvict, migrate.EvictArgs{Host: *host}, &r); err != nil {
		return err
	}
	fmt.Printf("froze %d foreign job(s); their homes run them elsewhere\n", r.Frozen)
	return nil
}

func evictionsMain(args []string) error {
	fs := flag.NewFlagSet("evictions", flag.ContinueOnError)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	var evs []migrate.Eviction
	if err := localCall(*socket, migrate.MethodLocalEvictions, nil, &evs); err != nil {
		return err
	}
	if evs == nil {
		evs = []migrate.Eviction{}
	}
	if *asJSON {
		return printJSON(evs)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tJOB\tHOME\tINPUT->FROZEN\tFROZEN->GONE\tHOW\tREASON")
	for _, e := range evs {
		frozen, gone := "-", "-"
		if e.InputNs > 0 {
			frozen = time.Duration(e.FrozenNs - e.InputNs).Round(10 * time.Microsecond).String()
		}
		switch {
		case e.GoneNs > 0:
			gone = time.Duration(e.GoneNs - e.FrozenNs).Round(10 * time.Microsecond).String()
		case e.Thawed:
			gone = "thawed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", time.Unix(0, e.StartNs).Format("15:04:05.000"), e.ID, e.Home, frozen, gone, e.How, e.Reason)
	}
	return tw.Flush()
}

func migrateMain(args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	socket := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: sprite migrate ID HOST (on the job's home; ids from `sprite ps`)")
		return exitError{2}
	}
	return localCall(*socket, migrate.MethodLocalMigrate, migrate.MigrateArgs{ID: fs.Arg(0), Host: fs.Arg(1)}, nil)
}
