package pmake

import (
	"path/filepath"
	"strings"
)

// Links and archives stay home. A link (cc without -c, ld) or an archive
// step (ar, ranlib) reads every object of its target and writes one large
// file while using little CPU: on another host each of those bytes crosses
// the network twice (the objects in, the output back) and the file server
// at home does the same work it would have done for a local link, so the
// job is slower remote and frees no CPU worth having. It is also on the
// build's critical path (nothing after it starts before it ends). distcc
// links at home for the same reason. `pmake --export-links` (or
// PMAKE_EXPORT_LINKS=1 in the environment) exports them like any other
// line; under -L the slots decide, as for every line.
//
// Only a line make could run without a shell (SimpleArgv) is looked at: a
// compound line may do anything.

// linkers are commands that link or archive, by the last element of their
// path (a cross prefix such as x86_64-linux-gnu- is allowed).
var linkers = map[string]bool{
	"ar": true, "ranlib": true, "ld": true, "ld.bfd": true, "ld.gold": true, "ld.lld": true,
	"gold": true, "lld": true, "gcc-ar": true, "gcc-ranlib": true, "llvm-ar": true, "llvm-ranlib": true,
}

// drivers are compiler drivers: they link unless told to stop earlier.
var drivers = map[string]bool{
	"cc": true, "c++": true, "gcc": true, "g++": true, "clang": true, "clang++": true,
}

// sourceExts are the inputs that make a driver's line a compile, even when
// it also links (cc -o prog prog.c): that one does the CPU's work.
var sourceExts = map[string]bool{
	".c": true, ".cc": true, ".cp": true, ".cpp": true, ".cxx": true, ".c++": true, ".C": true,
	".s": true, ".S": true, ".sx": true, ".i": true, ".ii": true, ".m": true, ".f": true, ".f90": true,
}

// IsLinkStep reports whether line is a link or an archive step.
func IsLinkStep(line string) bool {
	argv := SimpleArgv(line)
	if len(argv) == 0 {
		return false
	}
	name := toolName(filepath.Base(argv[0]))
	if linkers[name] {
		return true
	}
	if !drivers[name] {
		return false
	}
	for _, a := range argv[1:] {
		switch {
		case a == "-c" || a == "-S" || a == "-E" || a == "-M" || a == "-MM" || a == "-fsyntax-only":
			return false
		case !strings.HasPrefix(a, "-") && sourceExts[filepath.Ext(a)]:
			return false
		}
	}
	return true
}

// toolName strips a cross-compiler prefix (x86_64-linux-gnu-gcc) and a
// version suffix (gcc-14, clang-19) from a tool's name.
func toolName(base string) string {
	if linkers[base] || drivers[base] {
		return base
	}
	if i := strings.LastIndexByte(base, '-'); i > 0 {
		head, tail := base[:i], base[i+1:]
		if strings.Trim(tail, "0123456789.") == "" { // a version: gcc-14
			return toolName(head)
		}
		if linkers[tail] || drivers[tail] {
			return tail
		}
	}
	return base
}
