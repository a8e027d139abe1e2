package fs

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"sprite/internal/fdctl"
)

// watcher turns changes on this host's own disk into invalidations: every
// directory a client has looked into gets an inotify watch, and each event
// in it (a write, a chmod, a create, a delete, a rename) is queued for every
// client of the domain. Changes that clients make through the server show
// up here too, which keeps the other clients' caches current.
//
// A directory's watch is added before the reply to the first request that
// looks into it (add): a change on the disk right after that reply must
// reach the client, whose kernel now caches what it was told. That costs
// the first look one openat2 and one inotify_add_watch, never a wait on
// the reader.
//
// Goroutines: one reader, owned by the watcher, ended by stop (closing the
// inotify descriptor).
type watcher struct {
	s    *Server
	log  *slog.Logger
	f    *os.File
	done chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	byWD  map[int32]watchReq // guarded by mu
	byDir map[watchReq]int32 // guarded by mu

	settle settle // Server.Settle's sentinel (settle.go)
}

type watchReq struct {
	e   *export
	rel string
}

// maxWatches bounds the inotify watches one server holds; beyond it clients
// fall back on their attribute timeout for local changes.
const maxWatches = 8192

const watchMask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CREATE | unix.IN_DELETE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

func newWatcher(s *Server, log *slog.Logger) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, errors.New("fs: inotify_init1: " + err.Error() + " (raise fs.inotify.max_user_instances)")
	}
	w := &watcher{s: s, log: log, f: os.NewFile(uintptr(fd), "inotify"),
		done: make(chan struct{}), byWD: map[int32]watchReq{}, byDir: map[watchReq]int32{}}
	w.startSettle()
	w.wg.Go(w.read)
	return w, nil
}

func (w *watcher) stop() {
	close(w.done)
	w.f.Close()
	w.wg.Wait()
	w.stopSettle()
}

// add watches directory rel of e, unless it is watched or maxWatches are;
// it reports whether rel has a watch.
func (w *watcher) add(e *export, rel string) bool {
	r := watchReq{e, rel}
	w.mu.Lock()
	_, ok := w.byDir[r]
	full := len(w.byDir) >= maxWatches
	w.mu.Unlock()
	if !ok && !full {
		w.addNow(r)
	}
	return w.watching(e, rel)
}

// watching reports whether directory rel of e has a watch.
func (w *watcher) watching(e *export, rel string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.byDir[watchReq{e, rel}]
	return ok
}

// addNow adds the watch of r, which add found unwatched.
func (w *watcher) addNow(r watchReq) {
	fd, err := r.e.openDir(r.rel)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	var wd int
	err = fdctl.Control(w.f, func(ifd int) (err error) {
		wd, err = unix.InotifyAddWatch(ifd, procPath(fd), watchMask)
		return err
	})
	if err != nil {
		w.log.Debug("fs: no inotify watch", "prefix", r.e.prefix, "dir", r.rel, "err", err)
		return
	}
	w.mu.Lock()
	if old, ok := w.byWD[int32(wd)]; ok {
		delete(w.byDir, old)
	}
	w.byWD[int32(wd)] = r
	w.byDir[r] = int32(wd)
	w.mu.Unlock()
}

func (w *watcher) read() {
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
				w.log.Warn("fs: inotify read failed; local changes no longer reach clients", "err", err)
			}
			return
		}
		w.events(buf[:n])
	}
}

func (w *watcher) events(b []byte) {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return
		}
		name := string(b[unix.SizeofInotifyEvent:end])
		for i := 0; i < len(name); i++ {
			if name[i] == 0 {
				name = name[:i]
				break
			}
		}
		b = b[end:]
		if w.settle.dir != "" && ev.Wd == w.settle.wd {
			w.sawSentinel(name)
			continue
		}
		w.mu.Lock()
		r, ok := w.byWD[ev.Wd]
		ended := ev.Mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 && ok
		if ended {
			delete(w.byWD, ev.Wd)
			delete(w.byDir, r)
		}
		w.mu.Unlock()
		if !ok {
			continue
		}
		if ended {
			w.s.watchEnded(r.e, r.rel)
		}
		p := r.rel
		if name != "" {
			p = joinPath(r.rel, name)
		}
		entries := name == "" || ev.Mask&(unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0
		w.s.note.changed(Item{Prefix: r.e.prefix, Path: p}, entries)
	}
}

// watchEnded tells the clients that hold files of directory rel open that
// its watch is gone (the directory was moved or deleted): they were
// promised every change of those files (OpenWatched), and changes there
// are no longer seen. They drop what they cache of them.
func (s *Server) watchEnded(e *export, rel string) {
	var items []Item
	s.mu.Lock()
	for _, h := range s.handles {
		if h.item.Prefix != e.prefix {
			continue
		}
		if d, _ := splitPath(h.item.Path); d == rel {
			items = append(items, h.item)
		}
	}
	s.mu.Unlock()
	for _, it := range items {
		s.note.changed(it, false)
	}
}
