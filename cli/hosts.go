package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"sprite/api"
	"sprite/daemon"
)

func init() {
	register("hosts", "list the cluster's hosts, up or down", hostsMain)
	register("status", "show this host's daemon", statusMain)
}

func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", daemon.DefaultSocket, "the local daemon's `socket`")
}

func localCall(socket, method string, args, reply any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := api.Client{Socket: socket}
	return c.Call(ctx, method, args, reply)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func hostsMain(args []string) error {
	fs := flag.NewFlagSet("hosts", flag.ContinueOnError)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print a JSON array (with --watch: one array of changed hosts per line)")
	watch := fs.Bool("watch", false, "print the table, then every change as it happens, until interrupted")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *watch {
		return watchHosts(*socket, *asJSON)
	}
	var hosts []api.HostStatus
	if err := localCall(*socket, api.MethodHosts, nil, &hosts); err != nil {
		return err
	}
	if *asJSON {
		if hosts == nil {
			hosts = []api.HostStatus{}
		}
		return printJSON(hosts)
	}
	return printHosts(hosts, true)
}

func printHosts(hosts []api.HostStatus, header bool) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "HOST\tSTATE\tIDLE\tLOAD\tCPUS\tFOREIGN\tGRANTED TO\tARCH\tADDR\tRTT\tLAST SEEN")
	}
	for _, h := range hosts {
		name := h.Name
		if h.Self {
			name += " *"
		}
		rtt, seen := "-", "-"
		if h.RTT > 0 {
			rtt = (time.Duration(h.RTT) * time.Microsecond).String()
		}
		if h.LastSeen > 0 && !h.Self {
			seen = time.Since(time.UnixMilli(h.LastSeen)).Truncate(100*time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%g\t%d\t%s\t%s\t%s\t%s\t%s\n", name, h.State, idleColumn(h), h.Load, h.CPUs,
			h.ForeignJobs, orDash(h.GrantedTo), h.Arch, h.Addr, rtt, seen)
	}
	return tw.Flush()
}

func statusMain(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	var st api.Status
	if err := localCall(*socket, api.MethodStatus, nil, &st); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(st)
	}
	fmt.Printf("host %s at %s: %g cpus, %s, pid %d, up %s, %d hosts known, sprite %s\n",
		st.Host.Name, st.Host.Addr, st.Host.CPUs, st.Host.Arch, st.Pid, time.Duration(st.Uptime)*time.Second, st.Members, st.Host.Version)
	return nil
}
