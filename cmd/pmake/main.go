// Command pmake will run GNU make with every recipe line on an idle host.
// Until remote execution exists it runs GNU make locally, unchanged, and
// says so once on stderr.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

func main() {
	fmt.Fprintln(os.Stderr, "pmake: remote execution is not built yet; running GNU make locally")
	cmd := exec.Command("make", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.ExitCode())
	default:
		fmt.Fprintf(os.Stderr, "pmake: run make: %v (is GNU make installed?)\n", err)
		os.Exit(2)
	}
}
