package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"sprite/api"
	"sprite/daemon"
	"sprite/pki"
	"sprite/transport"
)

func init() {
	register("ping", "reach a host's daemon over QUIC with this host's certificate", pingMain)
}

// pingMain dials ADDR directly with the identity in --state (no daemon
// needed), which is how an operator checks certificates and UDP reachability.
func pingMain(args []string) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	state := stateFlag(fs)
	count := fs.Int("c", 3, "number of calls")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: sprite ping [--state DIR] [-c N] HOST:PORT")
	}
	addr := fs.Arg(0)
	id, err := pki.LoadIdentity(*state)
	if err != nil {
		return err
	}
	node, err := transport.Listen(transport.Config{Identity: id, Listen: ":0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name, err := node.Identify(ctx, addr)
	if err != nil {
		return fmt.Errorf("%w; if the peer refused this host's certificate, its daemon log says why", err)
	}
	for i := 0; i < *count; i++ {
		start := time.Now()
		var info api.HostInfo
		if err := node.Call(ctx, name, addr, daemon.MethodPing, nil, &info); err != nil {
			return err
		}
		fmt.Printf("%s (%s): %d cpus %s, time %s\n", info.Name, addr, int(info.CPUs), info.Arch, time.Since(start).Round(time.Microsecond))
	}
	return nil
}
