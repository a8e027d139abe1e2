package cli

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"sprite/api"
	"sprite/fs"
)

func init() {
	register("exports", "show the prefix table: which host serves which part of /sprite", exportsMain)
}

func exportsMain(args []string) error {
	fl := flag.NewFlagSet("exports", flag.ContinueOnError)
	socket := socketFlag(fl)
	asJSON := fl.Bool("json", false, "print a JSON array")
	if err := fl.Parse(args); err != nil {
		return exitError{2}
	}
	var rows []fs.Domain
	if err := localCall(*socket, api.MethodExports, nil, &rows); err != nil {
		return err
	}
	if *asJSON {
		if rows == nil {
			rows = []fs.Domain{}
		}
		return printJSON(rows)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tHOST\tPATH\tSTATE\tNOTE")
	for _, d := range rows {
		state, note := "up", ""
		if !d.Up {
			state = "down"
		}
		if d.Shadowed != "" {
			note = "also exported by " + d.Shadowed + " (ignored)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Prefix, d.Host, d.Path, state, note)
	}
	return tw.Flush()
}
