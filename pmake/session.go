package pmake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"sprite/api"
	"sprite/migrate/rexec"
	"sprite/rpc"
	"sprite/wire"
)

// firstGrantWait is how long pmake waits for the session's first holding
// before it starts make (make's -j is fixed when it starts).
const firstGrantWait = 3 * time.Second

// wantHosts is how many hosts a session asks for when -j does not say:
// every idle machine on the floor, within reason.
const wantHosts = 100

// session holds idle hosts for one pmake run: the local daemon's
// MethodLocalSession stream, open for the whole build. The daemon sends
// the holding after every change; closing the stream releases it.
type session struct {
	id     string
	run    string
	home   string // this host's name in the cluster
	cancel context.CancelFunc
	stream *rpc.ClientStream
	done   chan struct{} // closed when the stream has ended

	mu    sync.Mutex
	hosts []HostSlots // guarded by mu
	event string      // guarded by mu; the last change, for the status line
}

// homeInfo is what pmake learns from the local daemon before it starts.
type homeInfo struct {
	name string
	cpus int // this host's CPUs (its quota in the lab), at least 1
}

// localCPUs is this host's CPUs as the daemon knows them (a lab host's
// quota), else the machine's.
func localCPUs(socket string) (homeInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := api.Client{Socket: socket}
	var st api.Status
	if err := cl.Call(ctx, api.MethodStatus, nil, &st); err != nil {
		return homeInfo{}, err
	}
	return homeInfo{name: st.Host.Name, cpus: max(1, int(math.Ceil(st.Host.CPUs)))}, nil
}

// domain is one row of the prefix table (fs.Domain's wire form).
type domain struct {
	Prefix string `cbor:"1,keyasint"`
	Host   string `cbor:"2,keyasint"`
	Path   string `cbor:"3,keyasint"`
	Up     bool   `cbor:"4,keyasint"`
}

// inNamespace reports whether dir is a path every host sees as this host
// does: under /sprite, or under a directory this host exports (a remote
// job finds it at the same path). ok is false when the daemon could not
// say.
func inNamespace(socket, self, dir string) (in, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rows []domain
	cl := api.Client{Socket: socket}
	if err := cl.Call(ctx, api.MethodExports, nil, &rows); err != nil {
		return false, false
	}
	under := func(p, root string) bool {
		root = filepath.Clean(root)
		return p == root || strings.HasPrefix(p, root+"/") || root == "/"
	}
	if under(dir, "/sprite") {
		return true, true
	}
	for _, r := range rows {
		if r.Host == self && r.Path != "" && under(dir, r.Path) {
			return true, true
		}
	}
	return false, true
}

// openSession asks the daemon for up to n hosts and waits a moment for the
// first holding.
func openSession(socket, run, home string, n int) (*session, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{id: fmt.Sprintf("pmake-%d", os.Getpid()), run: run, home: home, cancel: cancel, done: make(chan struct{})}
	cl := api.Client{Socket: socket}
	st, err := cl.Open(ctx, rexec.MethodLocalSession, rexec.SessionArgs{ID: s.id, N: n})
	if err != nil {
		cancel()
		return nil, err
	}
	s.stream = st
	first := make(chan error, 1)
	go s.receive(first)
	select {
	case err := <-first:
		if err != nil {
			cancel()
			return nil, err
		}
	case <-time.After(firstGrantWait):
	}
	return s, nil
}

// receive reads the holdings until the stream ends; the first one (or the
// stream's error) goes to first.
func (s *session) receive(first chan<- error) {
	defer close(s.done)
	once := func(err error) {
		select {
		case first <- err:
		default:
		}
	}
	for {
		f, err := s.stream.Recv()
		if errors.Is(err, io.EOF) {
			err = s.stream.Finish(nil)
			if err == nil {
				err = errors.New("the daemon ended the session")
			}
		}
		if err != nil {
			once(err)
			s.set(nil, "session ended")
			return
		}
		var g api.Grants
		if wire.Unmarshal(f.Payload, &g) != nil {
			continue
		}
		var hs []HostSlots
		for _, h := range g.Hosts {
			hs = append(hs, HostSlots{Host: h.Host, Slots: max(1, h.Slots)})
		}
		s.set(hs, g.Event)
		once(nil)
	}
}

func (s *session) set(hs []HostSlots, ev string) {
	s.mu.Lock()
	s.hosts, s.event = hs, ev
	s.mu.Unlock()
	writeHosts(s.run, hs)
}

// Hosts is the holding now.
func (s *session) Hosts() []HostSlots {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]HostSlots(nil), s.hosts...)
}

// slots is the number of jobs the holding takes at once on hosts other
// than home (the home's own CPUs are counted apart, once).
func (s *session) slots() int {
	n := 0
	for _, h := range s.Hosts() {
		if h.Host != s.home {
			n += h.Slots
		}
	}
	return n
}

// close releases the hosts.
func (s *session) close() {
	if s == nil {
		return
	}
	s.stream.CloseSend()
	s.cancel()
	<-s.done
}
