package pmake

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// JobserverInherited reports whether make handed this process its
// jobserver: the two descriptors MAKEFLAGS names (--jobserver-auth=R,W, or
// --jobserver-fds=R,W before make 4.2) are open here and are the two ends
// of one pipe. GNU make keeps them close-on-exec except while it starts a
// line it marked recursive (one that mentions $(MAKE) or ${MAKE}, or starts
// with '+'), so this is make's own verdict. It must be called before this
// process opens files of its own: a descriptor reused by chance is not a
// pipe end of the same pipe, so the check fails safe either way.
func JobserverInherited(makeflags string) bool {
	r, w, ok := jobserverFds(makeflags)
	if !ok {
		return false
	}
	var sr, sw syscall.Stat_t
	if syscall.Fstat(r, &sr) != nil || syscall.Fstat(w, &sw) != nil {
		return false
	}
	fifo := func(s *syscall.Stat_t) bool { return s.Mode&syscall.S_IFMT == syscall.S_IFIFO }
	return fifo(&sr) && fifo(&sw) && sr.Ino == sw.Ino && sr.Dev == sw.Dev
}

// jobserverFds finds R,W in MAKEFLAGS.
func jobserverFds(makeflags string) (int, int, bool) {
	for _, f := range strings.Fields(makeflags) {
		v, ok := strings.CutPrefix(f, "--jobserver-auth=")
		if !ok {
			v, ok = strings.CutPrefix(f, "--jobserver-fds=")
		}
		if !ok {
			continue
		}
		a, b, ok := strings.Cut(v, ",")
		if !ok {
			return 0, 0, false // make 4.4's fifo:PATH: no descriptors to check
		}
		r, err1 := strconv.Atoi(a)
		w, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || r < 0 || w < 0 {
			return 0, 0, false
		}
		return r, w, true
	}
	return 0, 0, false
}

// RunsMake reports whether a recipe line runs a make: one of its words
// (split at blanks and shell operators, quotes removed) is a path whose last
// element is make, gmake, pmake or the name pmake started make under. Such
// a line stays at home even when make did not mark it recursive (it names
// make literally instead of $(MAKE), or make runs without a jobserver, as
// with -j1): a make started on another host would look for this run's job
// shell and jobserver there. A false alarm (echo make) only costs the line
// a remote slot.
func RunsMake(line, makeName string) bool {
	names := map[string]bool{"make": true, "gmake": true, "pmake": true}
	if makeName != "" {
		names[filepath.Base(makeName)] = true
	}
	for _, w := range shellWords(line) {
		if names[filepath.Base(w)] {
			return true
		}
	}
	return false
}

// shellWords splits a line roughly as a shell would into words: at blanks,
// newlines and the operators ; & | ( ) < > ` and with quotes removed. It is
// for recognising command names, not for running anything.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	var quote byte
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '\\' && i+1 < len(line):
			i++
			if line[i] != '\n' {
				cur.WriteByte(line[i])
			}
		case strings.IndexByte(" \t\n;&|()<>`", ch) >= 0:
			flush()
		default:
			cur.WriteByte(ch)
		}
	}
	flush()
	return words
}

// StripOneShell removes the [@+-] prefixes and blanks at the start of every
// logical line after the first, as GNU make does itself for .ONESHELL
// recipes when SHELL is a Bourne shell. Make does not do it for a SHELL it
// does not recognise (such as pmake), so the job shell does. For an
// ordinary recipe line it changes nothing: make has already taken the
// prefixes off its start, and its escaped newlines do not start new lines.
func StripOneShell(s string) string {
	var b strings.Builder
	first := true
	for i := 0; i < len(s); {
		if !first {
			for i < len(s) && strings.IndexByte(" \t-@+", s[i]) >= 0 {
				i++
			}
		}
		first = false
		esc := false
		for i < len(s) {
			ch := s[i]
			b.WriteByte(ch)
			i++
			if ch == '\\' {
				esc = !esc
				continue
			}
			if ch == '\n' && !esc {
				break
			}
			esc = false
		}
	}
	return b.String()
}

// ReplaceShell replaces every whole-word occurrence of self (the path make
// knows as $(SHELL), which is pmake) in line by shell: a recipe that runs
// "$(SHELL) script" means the recipe shell, not pmake.
func ReplaceShell(line, self, shell string) string {
	if self == "" || !strings.Contains(line, self) {
		return line
	}
	var b strings.Builder
	for {
		i := strings.Index(line, self)
		if i < 0 {
			b.WriteString(line)
			return b.String()
		}
		end := i + len(self)
		before := i == 0 || strings.IndexByte(" \t\n;&|(`'\"", line[i-1]) >= 0
		after := end == len(line) || strings.IndexByte(" \t\n;&|)`'\"", line[end]) >= 0
		b.WriteString(line[:i])
		if before && after {
			b.WriteString(shell)
		} else {
			b.WriteString(self)
		}
		line = line[end:]
	}
}
