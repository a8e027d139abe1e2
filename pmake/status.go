package pmake

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"sprite/internal/term"
)

// statusLine is the one-line progress display on a terminal. Make's output
// passes through Write, which takes the status line off the screen before
// writing; the line is drawn again only when the cursor is at the start of
// a line, so it never lands in the middle of make's output.
type statusLine struct {
	mu    sync.Mutex
	tty   *os.File
	shown bool   // guarded by mu; a status line is on the screen
	bol   bool   // guarded by mu; make's last output ended a line
	text  string // guarded by mu
}

func newStatusLine(tty *os.File) *statusLine { return &statusLine{tty: tty, bol: true} }

const clearLine = "\r\033[K"

// Write passes make's output to the terminal.
func (s *statusLine) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		s.tty.WriteString(clearLine)
		s.shown = false
	}
	n, err := s.tty.Write(p)
	s.bol = p[len(p)-1] == '\n'
	return n, err
}

// set shows text (when the cursor is at the start of a line).
func (s *statusLine) set(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := termWidth(s.tty); len(text) >= w {
		text = text[:w-1]
	}
	if !s.bol || (s.shown && text == s.text) {
		return
	}
	s.text = text
	s.tty.WriteString(clearLine + text)
	s.shown = true
}

// clear takes the status line off the screen for good.
func (s *statusLine) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		s.tty.WriteString(clearLine)
		s.shown = false
	}
	s.bol = false // nothing more is drawn
}

func termWidth(f *os.File) int {
	_, cols, err := term.Size(f)
	if err != nil || cols < 20 {
		return 80
	}
	return int(cols)
}

// progress counts jobs from the events as they come.
type progress struct {
	running map[string]int // host -> jobs running there
	jobHost map[string]string
	done    int
}

func newProgress() *progress {
	return &progress{running: map[string]int{}, jobHost: map[string]string{}}
}

func (p *progress) add(recs []Record) {
	for _, r := range recs {
		switch r.Kind {
		case "start":
			p.running[r.Host]++
			p.jobHost[r.Job] = r.Host
		case "end":
			if h, ok := p.jobHost[r.Job]; ok {
				p.running[h]--
				if p.running[h] <= 0 {
					delete(p.running, h)
				}
				delete(p.jobHost, r.Job)
			}
			p.done++
		}
	}
}

// text is the status line: hosts held, jobs running per host, jobs done.
func (p *progress) text(held int) string {
	var hs []string
	for h := range p.running {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	var b strings.Builder
	fmt.Fprintf(&b, "pmake: %d hosts held | %d done | running", held, p.done)
	if len(hs) == 0 {
		b.WriteString(" -")
	}
	for _, h := range hs {
		fmt.Fprintf(&b, " %s:%d", h, p.running[h])
	}
	return b.String()
}
