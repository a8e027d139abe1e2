package pmake

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitWaiting waits until n job shells wait in q.
func waitWaiting(t *testing.T, q *queue, n int) {
	t.Helper()
	waitQueue(t, q, "job shells waiting", n, func() int { return len(q.waiting) })
}

// waitRunning waits until n tickets are out.
func waitRunning(t *testing.T, q *queue, n int) {
	t.Helper()
	waitQueue(t, q, "tickets out", n, func() int { return q.running[ticketRemote] + q.running[ticketHome] })
}

// waitQueue waits until count, read under q.mu, is n.
func waitQueue(t *testing.T, q *queue, what string, n int, count func() int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		k := count()
		q.mu.Unlock()
		if k == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s, want %d", k, what, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Real job shells (the pmake binary, as make starts them) wait for their
// tickets and run largest first: a line with no source to size, then the
// compile of the larger file, then the smaller.
func TestJobShellsRunLargestFirst(t *testing.T) {
	bin := pmakeBin(t)
	run := t.TempDir()
	q, err := openQueue(run, func() capacity { return capacity{remote: 1} })
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	first, _ := takeTicket(run, 1)
	if first == nil {
		t.Fatal("no ticket from an empty queue")
	}

	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "small.c"), make([]byte, 100), 0o644)
	os.WriteFile(filepath.Join(src, "big.c"), make([]byte, 5000), 0o644)
	order := filepath.Join(src, "order")
	host, _ := os.Hostname()
	var cmds []*exec.Cmd
	for i, line := range []string{
		"echo small >> order # cc -c small.c",
		"echo big >> order # cc -c big.c",
		"echo unsized >> order",
	} {
		cmd := exec.Command(bin, JobShellFlag, "--target=t", "-c", line)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), EnvRun+"="+run, EnvHost+"="+host, EnvSession+"=", EnvQueue+"=1",
			EnvSocket+"=/nonexistent/sprite.sock")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		waitWaiting(t, q, i+1)
	}
	first.Close() // the running job ends: one at a time from now on
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("job shell: %v", err)
		}
	}
	b, _ := os.ReadFile(order)
	if got := strings.Fields(string(b)); strings.Join(got, " ") != "unsized big small" {
		t.Errorf("jobs ran in the order %v, want unsized big small", got)
	}
}

// Remote tickets go to the largest waiting job, home tickets to a line
// that cannot be sized, else to the smallest: the largest compiles run on
// hosts of their own, not beside the file server at home.
func TestHomeTicketsGoToTheSmallest(t *testing.T) {
	run := t.TempDir()
	q, err := openQueue(run, func() capacity { return capacity{remote: 1, home: 1} })
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	remote, home1 := takeTicket(run, 1)
	local, home2 := takeTicket(run, 1)
	if remote == nil || local == nil || home1 || !home2 {
		t.Fatalf("first two tickets: home %v and %v, want a remote one then a home one", home1, home2)
	}
	type got struct {
		name string
		home bool
		c    net.Conn
	}
	out := make(chan got, 4)
	for i, w := range []struct {
		name string
		est  int64
	}{{"mid", 1000}, {"big", 5000}, {"small", 100}, {"unsized", Unsized}} {
		go func() { c, h := takeTicket(run, w.est); out <- got{w.name, h, c} }()
		waitWaiting(t, q, i+1)
	}
	next := func(free net.Conn, want string, wantHome bool) net.Conn {
		t.Helper()
		free.Close()
		select {
		case g := <-out:
			if g.c == nil || g.name != want || g.home != wantHome {
				t.Fatalf("ticket (home %v) went to %q, want %q (home %v)", g.home, g.name, want, wantHome)
			}
			return g.c
		case <-time.After(10 * time.Second):
			t.Fatalf("no ticket for %q after one was given back", want)
			return nil
		}
	}
	local = next(local, "unsized", true)
	local = next(local, "small", true)
	remote = next(remote, "big", false)
	local = next(local, "mid", true)
	remote.Close()
	local.Close()
}

// A ticket is given back when its job shell dies; the tickets out never
// exceed the capacity, which is asked again at every hand-out.
func TestQueueCapacityAndDeadHolders(t *testing.T) {
	run := t.TempDir()
	var slots atomic.Int64
	slots.Store(1)
	q, err := openQueue(run, func() capacity { return capacity{remote: int(slots.Load()), home: 1} })
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	// The first holder is this test binary re-run (os/exec's helper
	// pattern), killed while it holds its ticket.
	holder := exec.Command(os.Args[0], "-test.run=^TestQueueTicketHolder$")
	holder.Env = append(os.Environ(), "PMAKE_TEST_HOLDER="+run)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	waitRunning(t, q, 1)
	b, _ := takeTicket(run, 10)
	if b == nil {
		t.Fatal("second ticket of two refused")
	}
	got := make(chan net.Conn, 1)
	go func() { c, _ := takeTicket(run, 10); got <- c }()
	waitWaiting(t, q, 1)
	slots.Store(0) // the host withdrawn: the home ticket alone from now on
	holder.Process.Kill()
	holder.Wait()
	select {
	case c := <-got:
		t.Fatalf("a third ticket (%v) was handed out while one of a capacity of 1 is out", c)
	case <-time.After(200 * time.Millisecond):
	}
	b.Close()
	select {
	case c := <-got:
		if c == nil {
			t.Fatal("the waiting job got no ticket")
		}
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the ticket of a dead job shell was not given back")
	}
}

// TestQueueTicketHolder is the helper of TestQueueCapacityAndDeadHolders:
// it takes a ticket and waits to be killed.
func TestQueueTicketHolder(t *testing.T) {
	run := os.Getenv("PMAKE_TEST_HOLDER")
	if run == "" {
		return // run as a test: nothing to do
	}
	if c, _ := takeTicket(run, 1); c == nil {
		os.Exit(3)
	}
	time.Sleep(time.Minute)
}

// A job shell waiting when pmake ends runs without a ticket.
func TestQueueClosedLetsWaitersGo(t *testing.T) {
	run := t.TempDir()
	q, err := openQueue(run, func() capacity { return capacity{home: 1} })
	if err != nil {
		t.Fatal(err)
	}
	held, _ := takeTicket(run, 1)
	defer held.Close()
	got := make(chan net.Conn, 1)
	go func() { c, _ := takeTicket(run, 1); got <- c }()
	waitWaiting(t, q, 1)
	q.close()
	select {
	case c := <-got:
		if c != nil {
			t.Fatal("a ticket from a closed queue")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting job shell hangs after its pmake closed the queue")
	}
}

func TestEstimate(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.c"), make([]byte, 100), 0o644)
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	os.WriteFile(filepath.Join(dir, "src", "b.cpp"), make([]byte, 300), 0o644)
	for _, tc := range []struct {
		line string
		want int64
	}{
		{"gcc -O2 -c -o a.o a.c", 100},
		{"g++ -c src/b.cpp a.c", 400},
		{"cc -o prog a.c -lm", 100},
		{"cc -c '" + filepath.Join(dir, "a.c") + "'", 100},
		{"ar rcu lib.a a.o", Unsized},
		{"gcc -c missing.c", Unsized},
		{"./gen > table.c", Unsized},
	} {
		if got := Estimate(tc.line, dir); got != tc.want {
			t.Errorf("Estimate(%q) = %d, want %d", tc.line, got, tc.want)
		}
	}
}
