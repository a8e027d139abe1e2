package pmake

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The job queue: largest job first, smallest at home.
//
// Make starts recipe lines in the makefile's order, and the order decides
// how long a parallel build takes: Lua's largest compile, lvm.c, is the
// 19th, so with one job per host it starts only when eleven others have
// ended and then runs alone at the end. Under the default -j, pmake
// therefore lets make start a window of more jobs than the session can
// run (Window: three times the slots), and the job shells wait here for a
// ticket. pmake hands the tickets out, as many at once as the session's
// slots plus this host's CPUs allow (counted again at every hand-out, so
// a host withdrawn mid-build takes its share with it), and for a turn on
// another host it picks the waiting job with the largest estimate (Estimate):
// lines it cannot size first, in the order they came (a generator or a
// link is often what the next jobs wait for), then compiles by the size
// of their source files, largest first (the longest-processing-time rule).
//
// Tickets are of two kinds. The session's slots on other hosts are
// remote tickets: the job asks the daemon for a host, and the largest
// waiting job gets one. This host's CPUs are home tickets: the job runs
// here without asking, and the smallest waiting job gets one (lines it
// cannot size still first), because a job at home shares this host with
// make, the job shells and the file server every remote job reads
// through, and runs slower than on a host of its own: the largest jobs,
// which decide when the build ends, must not be the ones waiting on it.
// With no host in the session every ticket is a home ticket and the
// largest job goes first again.
//
// A job shell holds its ticket as an open connection to RUN/queue, a unix
// socket pmake listens on: it writes its estimate as one line and waits
// for one byte, its ticket's kind (ticketRemote or ticketHome). Closing
// the connection, or dying, gives the ticket back, so a killed job never
// leaks one. A job shell whose pmake has gone (the
// connection ends before the byte) runs without one. Recursive makes take
// no ticket (they run nothing themselves), nor does anything under -L
// or an explicit -j, which keep their meaning.
//
// The socket lies in the run directory, which only the user may enter
// (0700): no other user can take or hold a ticket.
//
// Goroutines: queue.serve accepts; queue.hold, one per connection, reads
// the estimate and waits for the ticket and the end, which a reader of its
// own (ended by the connection's end) reports. All are owned by the queue
// and end at close, which closes the listener and every connection.
// queue.mu guards the waiting list and the counts; no other lock is taken
// under it, and the capacity is asked for before it is taken.

// queueFile is the queue's socket in the run directory.
const queueFile = "queue"

// Window is how many jobs make may start for a session of n slots (this
// host's CPUs included): three times as many, at most 64 more.
func Window(n int) int { return min(3*n, n+64) }

// Unsized is the estimate of a line with no source file to size: it goes
// before every compile.
const Unsized = math.MaxInt64

// Estimate sizes a recipe line run in dir: the bytes of the source files
// among its words (sourceExts: a compile, or a compile and link), else
// Unsized.
func Estimate(line, dir string) int64 {
	var n int64
	for _, w := range shellWords(line) {
		if strings.HasPrefix(w, "-") || !sourceExts[filepath.Ext(w)] {
			continue
		}
		if !filepath.IsAbs(w) {
			w = filepath.Join(dir, w)
		}
		if st, err := os.Stat(w); err == nil && st.Mode().IsRegular() {
			n += st.Size()
		}
	}
	if n == 0 {
		return Unsized
	}
	return n
}

// The ticket byte: which kind of ticket a job shell got.
const (
	ticketRemote byte = 1 // ask the daemon for one of the session's hosts
	ticketHome   byte = 2 // run here
)

// capacity is how many tickets of each kind may be out at once.
type capacity struct {
	remote int // the session's slots on other hosts
	home   int // this host's CPUs
}

// queue hands out tickets; see the top of this file.
type queue struct {
	ln  net.Listener
	cap func() capacity // asked at every hand-out
	wg  sync.WaitGroup

	mu      sync.Mutex
	seq     uint64            // guarded by mu; arrival order
	waiting []*waiter         // guarded by mu
	running [3]int            // guarded by mu; tickets out, by kind
	conns   map[net.Conn]bool // guarded by mu; open connections
	closed  bool              // guarded by mu
}

type waiter struct {
	est  int64
	seq  uint64
	conn net.Conn
	kind byte          // the ticket's kind, set under queue.mu when handed out
	go_  chan struct{} // closed when the ticket is handed out
}

// openQueue listens on run/queue; cap gives the tickets allowed at once.
func openQueue(run string, cap func() capacity) (*queue, error) {
	ln, err := net.Listen("unix", filepath.Join(run, queueFile))
	if err != nil {
		return nil, fmt.Errorf("job queue: listen: %w", err)
	}
	q := &queue{ln: ln, cap: cap, conns: map[net.Conn]bool{}}
	q.wg.Go(q.serve)
	return q, nil
}

func (q *queue) serve() {
	for {
		c, err := q.ln.Accept()
		if err != nil {
			return
		}
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			c.Close()
			return
		}
		q.conns[c] = true
		q.mu.Unlock()
		q.wg.Go(func() { q.hold(c) })
	}
}

// hold serves one job shell: its estimate, its turn, its end.
func (q *queue) hold(c net.Conn) {
	defer func() {
		q.mu.Lock()
		delete(q.conns, c)
		q.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	s, err := r.ReadString('\n')
	if err != nil {
		return
	}
	est, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return // not a job shell of this pmake
	}
	w := &waiter{est: est, conn: c, go_: make(chan struct{})}
	q.mu.Lock()
	q.seq++
	w.seq = q.seq
	q.waiting = append(q.waiting, w)
	q.mu.Unlock()
	q.dispatch()
	ended := make(chan struct{})
	go func() { r.ReadByte(); close(ended) }() // EOF: the job shell is done or dead
	select {
	case <-w.go_:
		<-ended
		q.mu.Lock()
		q.running[w.kind]--
		q.mu.Unlock()
	case <-ended:
		q.mu.Lock()
		if !q.remove(w) {
			q.running[w.kind]-- // handed out as it went
		}
		q.mu.Unlock()
	}
	q.dispatch()
}

// remove takes w off the waiting list; false if it was not there. q.mu is
// held.
func (q *queue) remove(w *waiter) bool {
	for i, o := range q.waiting {
		if o == w {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// dispatch hands out tickets while there are free ones and waiters: remote
// ones first, to the largest job, then home ones, to the smallest (the
// largest while the session holds no host). At least one ticket is always
// allowed.
func (q *queue) dispatch() {
	c := q.cap()
	if c.remote <= 0 && c.home <= 0 {
		c.home = 1
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.waiting) > 0 {
		var i int
		var kind byte
		switch {
		case q.running[ticketRemote] < c.remote:
			i, kind = q.pick(largerFirst), ticketRemote
		case q.running[ticketHome] < c.home && c.remote <= 0:
			i, kind = q.pick(largerFirst), ticketHome
		case q.running[ticketHome] < c.home:
			i, kind = q.pick(smallerFirst), ticketHome
		default:
			return
		}
		w := q.waiting[i]
		q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
		q.running[kind]++
		w.kind = kind
		close(w.go_)
		w.conn.Write([]byte{kind})
	}
}

// pick returns the index of the waiter that goes first by before, ties
// broken by arrival. q.mu is held.
func (q *queue) pick(before func(a, b int64) bool) int {
	best := 0
	for i, w := range q.waiting {
		b := q.waiting[best]
		if before(w.est, b.est) || (w.est == b.est && w.seq < b.seq) {
			best = i
		}
	}
	return best
}

// largerFirst orders remote tickets: the longest-processing-time rule.
func largerFirst(a, b int64) bool { return a > b }

// smallerFirst orders home tickets: lines that cannot be sized (often what
// the next jobs wait for, and links run at home anyway) first, then the
// smallest compile.
func smallerFirst(a, b int64) bool {
	if a == Unsized || b == Unsized {
		return a == Unsized && b != Unsized
	}
	return a < b
}

// close stops the queue: every job shell still waiting runs without a
// ticket.
func (q *queue) close() {
	if q == nil {
		return
	}
	q.mu.Lock()
	q.closed = true
	for c := range q.conns {
		c.Close()
	}
	q.mu.Unlock()
	q.ln.Close()
	q.wg.Wait()
}

// takeTicket waits for this job's ticket from run's queue. The returned
// connection is the ticket: close it (or exit) to give it back; home says
// the job is to run here. nil means no queue answered: run without one.
func takeTicket(run string, est int64) (t net.Conn, home bool) {
	c, err := net.Dial("unix", filepath.Join(run, queueFile))
	if err != nil {
		return nil, false
	}
	var b [1]byte
	if _, err := fmt.Fprintf(c, "%d\n", est); err != nil {
		c.Close()
		return nil, false
	}
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return nil, false
	}
	return c, b[0] == ticketHome
}
