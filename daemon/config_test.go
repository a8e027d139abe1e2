package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigRoundTripAndDefaults(t *testing.T) {
	dir := t.TempDir()
	c := &Config{Name: "h2", Addr: "10.0.0.2:7170", Seeds: []string{"10.0.0.1:7170"},
		Exports: []Export{{Prefix: "/home/h2", Path: "/home"}}}
	c.SetDefaults()
	if err := SaveConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Listen != ":7170" || got.Socket != DefaultSocket || got.IdleAfter.Duration != 30*time.Second ||
		got.DownAfter.Duration != 5*time.Second || len(got.Exports) != 1 || got.Seeds[0] != "10.0.0.1:7170" ||
		got.Procs != 0 {
		t.Fatalf("loaded %+v", got)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"name = \"h1\"\naddr = \"10.0.0.1:7170\"\nidel_after = \"5s\"\n", `unknown field "idel_after"`},
		{"name = \"H 1\"\naddr = \"10.0.0.1:7170\"\n", "config name"},
		{"name = \"h1\"\naddr = \"nowhere\"\n", "config addr"},
		{"name = \"h1\"\naddr = \"10.0.0.1:7170\"\nidle_after = \"soon\"\n", "bad duration"},
		{"name = \"h1\"\naddr = \"10.0.0.1:7170\"\nheartbeat = \"5s\"\ndown_after = \"6s\"\n", "down_after"},
		{"name = \"h1\"\naddr = \"10.0.0.1:7170\"\nprocs = -2\n", "config procs -2"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tc.body), 0o644)
		_, err := LoadConfig(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: %v, want an error with %q", tc.body, err, tc.want)
		}
	}
	if _, err := LoadConfig(t.TempDir()); err == nil || !strings.Contains(err.Error(), "sprite init") {
		t.Errorf("missing config: %v, want a hint to run sprite init", err)
	}
}
