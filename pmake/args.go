package pmake

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Options is pmake's command line: its own options, and what goes to make.
type Options struct {
	// Jobs is -j N; 0 means not given or given without a number (the
	// default: the granted slots plus the local CPUs).
	Jobs int
	// Local is -L N, the cap on jobs run at home; -1 means no cap.
	Local int
	// Stats is --stats.
	Stats bool
	// ExportLinks is --export-links: links and archives go to other
	// hosts too (linkstep.go).
	ExportLinks bool
	// OutputSync is set when the user chose -O/--output-sync themselves.
	OutputSync bool
	// DryRun is -n, -q, -t, -p or an informational option (--version,
	// --help): make runs no recipe that could go remote, so pmake holds no
	// hosts.
	DryRun bool
	// Dir is where make will run (the -C options applied to "").
	Dir string
	// Shell is a SHELL=... given on the command line: the shell every
	// recipe line runs under (wherever it runs).
	Shell string
	// MakeArgs is everything else, for make, in order.
	MakeArgs []string
}

// make's short options that take an argument (attached or the next word).
const shortWithArg = "CfIoW"

// long options that take a separate argument when not given with '='.
var longWithArg = map[string]bool{
	"--directory": true, "--file": true, "--makefile": true, "--include-dir": true,
	"--old-file": true, "--assume-old": true, "--what-if": true, "--new-file": true,
	"--assume-new": true, "--eval": true,
}

// dry options: make runs no ordinary recipe line.
var dryLong = map[string]bool{
	"--just-print": true, "--dry-run": true, "--recon": true, "--question": true,
	"--touch": true, "--print-data-base": true, "--version": true, "--help": true,
}

// ParseArgs splits pmake's arguments into its own options and make's. It
// understands GNU make's option syntax (clustered short options such as
// -kj8, attached and separate arguments, --long=value) well enough to find
// -j, -L, -O, -C, -n and friends wherever they are; everything it does not
// own goes to make unchanged. -L is pmake's (local jobs), not make's
// --check-symlink-times, which stays available under its long name.
func ParseArgs(args []string) (Options, error) {
	o := Options{Local: -1}
	num := func(s, what string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s %q: want a number of jobs", what, s)
		}
		return n, nil
	}
	isNum := func(s string) bool {
		_, err := strconv.Atoi(s)
		return err == nil
	}
	chdir := func(d string) {
		if filepath.IsAbs(d) || o.Dir == "" {
			o.Dir = d
		} else {
			o.Dir = filepath.Join(o.Dir, d)
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.MakeArgs = append(o.MakeArgs, args[i:]...)
			return o, nil
		case a == "--stats":
			o.Stats = true
		case a == "--export-links":
			o.ExportLinks = true
		case a == "--jobs" || strings.HasPrefix(a, "--jobs="):
			v, ok := strings.CutPrefix(a, "--jobs=")
			if !ok && i+1 < len(args) && isNum(args[i+1]) {
				i++
				v, ok = args[i], true
			}
			if ok {
				n, err := num(v, "--jobs")
				if err != nil {
					return o, err
				}
				o.Jobs = n
			}
		case a == "--local" || strings.HasPrefix(a, "--local="):
			v, ok := strings.CutPrefix(a, "--local=")
			if !ok {
				if i+1 >= len(args) {
					return o, fmt.Errorf("--local needs a number of jobs")
				}
				i++
				v = args[i]
			}
			n, err := num(v, "--local")
			if err != nil {
				return o, err
			}
			o.Local = n
		case strings.HasPrefix(a, "--"):
			name, _, hasVal := strings.Cut(a, "=")
			if name == "--output-sync" {
				o.OutputSync = true
			}
			if dryLong[name] {
				o.DryRun = true
			}
			o.MakeArgs = append(o.MakeArgs, a)
			if longWithArg[name] && !hasVal && i+1 < len(args) {
				i++
				o.MakeArgs = append(o.MakeArgs, args[i])
				if name == "--directory" {
					chdir(args[i])
				}
			} else if name == "--directory" && hasVal {
				chdir(a[len("--directory="):])
			}
		case len(a) > 1 && a[0] == '-':
			kept, next, err := o.shortCluster(a[1:], args[i+1:], num, isNum, chdir)
			if err != nil {
				return o, err
			}
			i += next
			if kept != "" {
				o.MakeArgs = append(o.MakeArgs, "-"+kept)
			}
		case strings.HasPrefix(a, "SHELL="):
			o.Shell = a[len("SHELL="):]
		default:
			o.MakeArgs = append(o.MakeArgs, a)
		}
	}
	return o, nil
}

// shortCluster takes one cluster of short options (without its '-') and
// returns what of it goes to make, and how many of the following words it
// consumed as arguments.
func (o *Options) shortCluster(c string, rest []string, num func(string, string) (int, error), isNum func(string) bool, chdir func(string)) (string, int, error) {
	var kept strings.Builder
	used := 0
	for j := 0; j < len(c); j++ {
		ch := c[j]
		switch {
		case ch == 'j' || ch == 'L':
			v := c[j+1:]
			if v == "" && len(rest) > 0 && isNum(rest[0]) {
				v, used = rest[0], 1
			}
			if v == "" && ch == 'L' {
				return "", 0, fmt.Errorf("-L needs a number of jobs (the cap on jobs at home)")
			}
			if v != "" {
				n, err := num(v, "-"+string(ch))
				if err != nil {
					return "", 0, err
				}
				if ch == 'j' {
					o.Jobs = n
				} else {
					o.Local = n
				}
			}
			return kept.String(), used, nil
		case strings.IndexByte(shortWithArg, ch) >= 0:
			v := c[j+1:]
			kept.WriteByte(ch)
			if v == "" && len(rest) > 0 {
				// the argument is the next word: hand both over as they are.
				if ch == 'C' {
					chdir(rest[0])
				}
				o.MakeArgs = append(o.MakeArgs, "-"+kept.String(), rest[0])
				return "", 1, nil
			}
			if ch == 'C' && v != "" {
				chdir(v)
			}
			kept.WriteString(v)
			return kept.String(), 0, nil
		case ch == 'O':
			o.OutputSync = true
			kept.WriteString(c[j:]) // -O takes the rest as its type
			return kept.String(), 0, nil
		case ch == 'l':
			kept.WriteString(c[j:]) // -l [N]: the rest is its number
			if c[j+1:] == "" && len(rest) > 0 && isNum(rest[0]) {
				return kept.String() + rest[0], 1, nil
			}
			return kept.String(), 0, nil
		default:
			if strings.IndexByte("nqtpvh", ch) >= 0 {
				o.DryRun = true
			}
			kept.WriteByte(ch)
		}
	}
	return kept.String(), used, nil
}
