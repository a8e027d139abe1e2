// Command sprite is the single binary of a sprite cluster: the daemon, the
// enrollment commands, the lab and the user commands. See README.md.
package main

import (
	"os"

	"sprite/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
