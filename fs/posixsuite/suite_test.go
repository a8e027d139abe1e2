package posixsuite

import (
	"os"
	"testing"
)

// The suite itself passes on local disk (so a failure on /sprite is
// sprite's).
func TestSuiteOnLocalDisk(t *testing.T) {
	dir := t.TempDir()
	for _, r := range Run(dir, Options{NonRoot: os.Geteuid() != 0, LargeMiB: 8}) {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
	}
}
