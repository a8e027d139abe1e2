package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

func init() {
	register("pmake", "run GNU make with every recipe line on an idle host (the pmake command)", pmakeMain)
}

// pmakeMain runs the pmake binary installed beside sprite (or in PATH):
// pmake is its own program because make runs it as the shell of every
// recipe line.
func pmakeMain(args []string) error {
	path := ""
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "pmake"); isExecutable(p) {
			path = p
		}
	}
	if path == "" {
		p, err := exec.LookPath("pmake")
		if err != nil {
			return fmt.Errorf("find pmake: %w (install it beside sprite: CGO_ENABLED=0 go build -o pmake ./cmd/pmake)", err)
		}
		path = p
	}
	return syscall.Exec(path, append([]string{"pmake"}, args...), os.Environ())
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
