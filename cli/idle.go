package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"sprite/api"
	"sprite/idle"
	"sprite/idledb"
	"sprite/rpc"
	"sprite/wire"
)

func init() {
	register("idle", "show or set this host's idleness and lending policy", idleMain)
	register("grant", "hold idle hosts from the idle database until interrupted", grantMain)
}

// idleColumn is the IDLE column of `sprite hosts`.
func idleColumn(h api.HostStatus) string {
	switch {
	case h.State == api.StateDown:
		return "-"
	case h.Activity == "":
		return "?"
	case h.Idle:
		return "idle " + (time.Duration(h.IdleFor*10) * 100 * time.Millisecond).Truncate(time.Second).String()
	default:
		return h.Activity
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func idleMain(args []string) error {
	if len(args) > 0 && args[0] == "history" {
		return historyMain(args[1:])
	}
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	never := fs.Bool("never", false, "never lend this host (owner or root)")
	auto := fs.Bool("auto", false, "lend this host whenever it is idle (the default)")
	maxForeign := fs.Int("max-foreign", 0, "at most `N` foreign jobs at once (-1: one per CPU again)")
	var forbid, allow listFlag
	fs.Var(&forbid, "forbid", "forbid `user`'s work on this host (repeatable)")
	fs.Var(&allow, "allow", "allow `user` again (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sprite idle [--never|--auto] [--max-foreign N] [--forbid U] [--allow U] [--json]\n       sprite idle history [HOST] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *never && *auto {
		return errors.New("--never and --auto contradict each other; pick one")
	}
	a := idle.SetArgs{MaxForeign: *maxForeign, Forbid: forbid, Allow: allow}
	if *never {
		a.Mode = idle.ModeNever
	}
	if *auto {
		a.Mode = idle.ModeAuto
	}
	var st idle.Status
	if err := localCall(*socket, api.MethodIdle, a, &st); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(st)
	}
	state := st.Activity
	if st.Idle {
		state = fmt.Sprintf("idle for %s", time.Duration(st.IdleFor*float64(time.Second)).Truncate(time.Second))
	}
	input := "no input seen"
	if st.InputAgo >= 0 {
		input = fmt.Sprintf("last input %s ago", time.Duration(st.InputAgo*float64(time.Second)).Truncate(100*time.Millisecond))
	}
	limit := "one per CPU"
	if st.Policy.MaxForeign > 0 {
		limit = fmt.Sprint(st.Policy.MaxForeign)
	}
	fmt.Printf("%s; %s (threshold %gs); load %.2f of %g cpus; %d foreign jobs\n", state, input, st.IdleAfter, st.Load, st.CPUs, st.ForeignJobs)
	fmt.Printf("lending: %s, max foreign jobs %s, forbidden users %s; %d input devices watched; idle database on %s\n",
		st.Policy.Mode, limit, orDash(strings.Join(st.Policy.Forbid, ",")), st.Devices, orDash(st.IdleDB))
	return nil
}

func historyMain(args []string) error {
	fs := flag.NewFlagSet("idle history", flag.ContinueOnError)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	host := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		host, args = args[0], args[1:] // HOST may come before the flags
	}
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if host == "" {
		host = fs.Arg(0)
	}
	var periods []idledb.Period
	if err := localCall(*socket, api.MethodIdleHistory, idledb.HistoryRequest{Host: host}, &periods); err != nil {
		return err
	}
	if *asJSON {
		if periods == nil {
			periods = []idledb.Period{}
		}
		return printJSON(periods)
	}
	for _, p := range periods {
		start := time.UnixMilli(p.Start)
		end, dur := "now", time.Since(start)
		if p.End != 0 {
			end, dur = time.UnixMilli(p.End).Format(time.TimeOnly), time.UnixMilli(p.End).Sub(start)
		}
		fmt.Printf("%s  %s - %s  %s\n", start.Format(time.DateOnly), start.Format(time.TimeOnly), end, dur.Truncate(time.Second))
	}
	return nil
}

// stream runs a streaming local call until the daemon ends it or a signal
// comes, calling fn with each message.
func streamLocal(socket, method string, args any, fn func(b []byte) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c := api.Client{Socket: socket}
	s, err := c.Open(ctx, method, args)
	if err != nil {
		return err
	}
	for {
		f, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.Finish(nil)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: a normal end
			}
			return err
		}
		if err := fn(f.Payload); err != nil {
			return err
		}
	}
}

func watchHosts(socket string, asJSON bool) error {
	header := true
	return streamLocal(socket, api.MethodHostsWatch, nil, func(b []byte) error {
		var rows []api.HostStatus
		if err := wire.Unmarshal(b, &rows); err != nil {
			return err
		}
		if asJSON {
			line, _ := json.Marshal(rows)
			_, err := fmt.Printf("%s\n", line)
			return err
		}
		err := printHosts(rows, header)
		header = false
		return err
	})
}

func grantMain(args []string) error {
	fs := flag.NewFlagSet("grant", flag.ContinueOnError)
	socket := socketFlag(fs)
	n := fs.Int("n", 1, "how many idle `hosts` to hold")
	arch := fs.String("arch", "", "only hosts of this `arch`itecture (default any)")
	id := fs.String("id", "", "requester `id` (default cli-PID)")
	asJSON := fs.Bool("json", false, "print each change as a JSON line")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	q := idledb.Request{ID: *id, N: *n, Arch: *arch}
	err := streamLocal(*socket, api.MethodGrant, q, func(b []byte) error {
		var g idledb.Grants
		if err := wire.Unmarshal(b, &g); err != nil {
			return err
		}
		if *asJSON {
			line, _ := json.Marshal(g)
			_, err := fmt.Printf("%s\n", line)
			return err
		}
		var hs []string
		for _, h := range g.Hosts {
			hs = append(hs, h.Host)
		}
		ev := ""
		if g.Event != "" {
			ev = " (" + g.Event + ")"
		}
		_, err := fmt.Printf("%s holds %d of %d: %s%s\n", g.ID, len(g.Hosts), g.Want, orDash(strings.Join(hs, " ")), ev)
		return err
	})
	var re *rpc.Error
	if errors.As(err, &re) && re.Code == wire.CodeNoMethod {
		return errors.New("the daemon is older than `sprite grant`; restart it")
	}
	return err
}
