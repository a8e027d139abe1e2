package pmake

import "strings"

// GNU make runs a recipe line without a shell when SHELL is /bin/sh and the
// line is simple: no shell metacharacter, no builtin as its command, no
// assignment before it. It then execs the words itself, so the line's exit
// (death by a signal included) is the command's own, where sh -c would
// report 128+n. SHELL is pmake under pmake, so make never takes that path;
// the job shell takes it instead, with make's own rules (job.c,
// construct_command_argv_internal), so that a build ends the same way.

// makeShChars are the characters that make a line need a shell.
const makeShChars = "#;\"*?[]&|<>(){}$`^~!"

// makeShCmds are the shell builtins make leaves to the shell.
var makeShCmds = map[string]bool{
	".": true, ":": true, "alias": true, "bg": true, "break": true, "case": true, "cd": true,
	"command": true, "continue": true, "eval": true, "exec": true, "exit": true, "export": true,
	"fc": true, "fg": true, "for": true, "getopts": true, "hash": true, "if": true, "jobs": true,
	"login": true, "logout": true, "read": true, "readonly": true, "return": true, "set": true,
	"shift": true, "test": true, "times": true, "trap": true, "type": true, "ulimit": true,
	"umask": true, "unalias": true, "unset": true, "wait": true, "while": true,
}

// SimpleArgv returns the words make would exec for line without a shell,
// or nil when the line needs one.
func SimpleArgv(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var instring byte
	seenNonEquals, wordHasEquals := false, false
	endWord := func() bool {
		words = append(words, cur.String())
		cur.Reset()
		inWord = false
		seenNonEquals = seenNonEquals || !wordHasEquals
		wordHasEquals = false
		return !(len(words) == 1 && makeShCmds[words[0]])
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		if instring != 0 {
			switch {
			case c == instring:
				instring = 0
			case c == '\\' && i+1 < len(line) && line[i+1] == '\n':
				cur.WriteString("\\\n") // kept inside single quotes
				i++
			case c == '\n':
				return nil
			default:
				cur.WriteByte(c)
			}
			continue
		}
		switch {
		case strings.IndexByte(makeShChars, c) >= 0 || c == '\n':
			return nil
		case c == '=':
			if !seenNonEquals {
				return nil
			}
			wordHasEquals = true
			cur.WriteByte(c)
			inWord = true
		case c == '\\':
			if i+1 < len(line) && line[i+1] == '\n' {
				i++
				if !inWord {
					for i+1 < len(line) && (line[i+1] == ' ' || line[i+1] == '\t') {
						i++
					}
				}
			} else if i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
				inWord = true
			}
		case c == '\'':
			instring = c
			inWord = true
		case c == ' ' || c == '\t':
			if inWord && !endWord() {
				return nil
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if instring != 0 {
		return nil
	}
	if inWord && !endWord() {
		return nil
	}
	if len(words) == 0 {
		return nil
	}
	return words
}
