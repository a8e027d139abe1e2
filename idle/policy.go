package idle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Owner modes.
const (
	ModeAuto  = "auto"  // lend the host when it is idle
	ModeNever = "never" // never lend it
)

// PolicyFile holds the owner's choices in the state directory.
const PolicyFile = "idle.json"

// Policy is what the owner decided about lending this host.
type Policy struct {
	Mode string `json:"mode" cbor:"1,keyasint"`
	// MaxForeign caps the foreign jobs on this host at once; 0 means one
	// per CPU.
	MaxForeign int `json:"max_foreign,omitempty" cbor:"2,keyasint,omitempty"`
	// Forbid lists users whose work may not run here.
	Forbid []string `json:"forbid,omitempty" cbor:"3,keyasint,omitempty"`
}

// Check says what is wrong with p.
func (p Policy) Check() error {
	if p.Mode != ModeAuto && p.Mode != ModeNever {
		return fmt.Errorf("idle mode %q: use %q or %q", p.Mode, ModeAuto, ModeNever)
	}
	if p.MaxForeign < 0 {
		return fmt.Errorf("max foreign jobs %d: want 0 (one per CPU) or more", p.MaxForeign)
	}
	return nil
}

// Forbids reports whether user may not run work here.
func (p Policy) Forbids(user string) bool { return slices.Contains(p.Forbid, user) }

// LoadPolicy reads the owner's policy from dir; a missing file is the
// default (auto, no limits).
func LoadPolicy(dir string) (Policy, error) {
	p := Policy{Mode: ModeAuto}
	b, err := os.ReadFile(filepath.Join(dir, PolicyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read idle policy: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return Policy{Mode: ModeAuto}, fmt.Errorf("read idle policy %s: %w (fix or delete the file)", filepath.Join(dir, PolicyFile), err)
	}
	if err := p.Check(); err != nil {
		return Policy{Mode: ModeAuto}, fmt.Errorf("read idle policy %s: %w", filepath.Join(dir, PolicyFile), err)
	}
	return p, nil
}

// SavePolicy writes p into dir atomically.
func SavePolicy(dir string, p Policy) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, PolicyFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save idle policy: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, PolicyFile)); err != nil {
		return fmt.Errorf("save idle policy: %w", err)
	}
	return nil
}
