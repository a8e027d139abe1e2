// Package cli implements the sprite command line: one function per
// subcommand, each parsing its own flags and calling into the packages that
// do the work. Nothing here holds state; cmd/sprite only calls Main.
package cli

import (
	"errors"
	"fmt"
	"os"
	"sort"
)

// command is one subcommand of sprite.
type command struct {
	summary string
	run     func(args []string) error
	hidden  bool
}

// commands is filled by init functions in this package's files.
var commands = map[string]command{}

func register(name, summary string, run func(args []string) error) {
	commands[name] = command{summary: summary, run: run}
}

func registerHidden(name string, run func(args []string) error) {
	commands[name] = command{run: run, hidden: true}
}

// exitError carries an exit status through to Main without printing.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs the subcommand named by args[0] and returns the process exit code.
func Main(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "sprite: unknown command %q; run `sprite help` for the list\n", args[0])
		return 2
	}
	err := cmd.run(args[1:])
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(os.Stderr, "sprite %s: %v\n", args[0], err)
		return 1
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sprite COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
}
