package fs

import (
	"errors"
	"fmt"
	"strings"
)

// errBadName is wrapped by every refusal of a name or path from the network.
var errBadName = errors.New("bad name")

// checkName accepts one path component: not empty, not "." or "..", no '/'
// or NUL, at most MaxName bytes. Every name that arrives over the network
// passes through here before it touches a disk.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: %q is not a file name", errBadName, name)
	case len(name) > MaxName:
		return fmt.Errorf("%w: %d bytes, the limit is %d", errBadName, len(name), MaxName)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: %q holds '/' or NUL", errBadName, name)
	}
	return nil
}

// checkPath accepts a relative path inside a domain: "" (the root) or
// components that each pass checkName, joined by single slashes.
func checkPath(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > MaxPath {
		return fmt.Errorf("%w: path of %d bytes, the limit is %d", errBadName, len(p), MaxPath)
	}
	for c := range strings.SplitSeq(p, "/") {
		if err := checkName(c); err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
	}
	return nil
}

// joinPath joins a domain-relative directory and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// splitPath splits a domain-relative path into its directory and its last
// component; the root has neither.
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// CheckPrefix accepts a global prefix: absolute, clean, not "/" and not
// under /hosts or /proc (the synthetic trees).
func CheckPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || p == "/" {
		return fmt.Errorf("%w: prefix %q must be an absolute path below /", errBadName, p)
	}
	if err := checkPath(p[1:]); err != nil {
		return fmt.Errorf("prefix %q: %w", p, err)
	}
	if first, _, _ := strings.Cut(p[1:], "/"); first == SynthHosts || first == SynthProc {
		return fmt.Errorf("%w: prefix %q is inside /%s, which sprite itself serves: export it under another name", errBadName, p, first)
	}
	return nil
}

// The top-level directories of the synthetic trees: hosts, and remote
// processes.
const (
	SynthHosts = "hosts"
	SynthProc  = "proc"
)
