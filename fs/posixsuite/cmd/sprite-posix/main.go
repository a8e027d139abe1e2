// Command sprite-posix runs sprite's POSIX suite (package fs/posixsuite) in
// a directory: `sprite-posix [-large MiB] DIR`. It prints one line per
// check and exits 1 if any failed.
package main

import (
	"flag"
	"fmt"
	"os"

	"sprite/fs/posixsuite"
)

func main() {
	large := flag.Int("large", 64, "size of the large-file check in MiB")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sprite-posix [-large MiB] DIR")
		os.Exit(2)
	}
	failed := 0
	for _, r := range posixsuite.Run(flag.Arg(0), posixsuite.Options{NonRoot: os.Geteuid() != 0, LargeMiB: *large}) {
		if r.Err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", r.Name, r.Err)
		} else {
			fmt.Printf("ok   %s\n", r.Name)
		}
	}
	if failed > 0 {
		fmt.Printf("%d checks failed\n", failed)
		os.Exit(1)
	}
}
