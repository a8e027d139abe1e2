// Command pmake runs GNU make with every recipe line on an idle host of
// the sprite cluster: `pmake [-j N] [-L N] [--stats] [make options and
// targets]`. The design is package pmake's documentation.
package main

import (
	"os"

	"sprite/pmake"
)

func main() {
	// First, before this process opens anything: did make hand this
	// recipe line its jobserver (a recursive make)?
	recursive := pmake.JobserverInherited(os.Getenv("MAKEFLAGS"))
	if pmake.IsJobShell(os.Args) {
		os.Exit(pmake.JobShell(os.Args, recursive))
	}
	os.Exit(pmake.Main(os.Args[1:]))
}
