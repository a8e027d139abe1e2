package idle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sprite/internal/fdctl"
)

// Paths says where the input devices live (tests point them elsewhere).
type Paths struct {
	Pts   string // devpts: /dev/pts
	Dev   string // consoles: /dev/tty, /dev/ttyN, /dev/ttySN
	Input string // evdev: /dev/input
}

// DefaultPaths are the machine's.
var DefaultPaths = Paths{Pts: "/dev/pts", Dev: "/dev", Input: "/dev/input"}

// rescanEvery is the safety-net rescan for new devices.
const rescanEvery = 5 * time.Second

// inputWatch turns reads of terminals and input devices into calls of
// touch, via inotify.
type inputWatch struct {
	paths Paths
	touch func(time.Time)
	f     *os.File // the inotify descriptor, non-blocking (netpoller)

	mu      sync.Mutex
	byWD    map[int]string      // guarded by mu; device watches
	byPath  map[string]int      // guarded by mu
	dirs    map[int]string      // guarded by mu; directory watches
	ignored map[string]struct{} // guarded by mu; devices foreign work reads
}

func newInputWatch(paths Paths, touch func(time.Time)) (*inputWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w (raise fs.inotify.max_user_instances)", err)
	}
	w := &inputWatch{
		paths: paths, touch: touch, f: os.NewFile(uintptr(fd), "inotify"),
		byWD: map[int]string{}, byPath: map[string]int{}, dirs: map[int]string{}, ignored: map[string]struct{}{},
	}
	for _, d := range []string{paths.Pts, paths.Input} {
		if d == "" {
			continue
		}
		wd, err := unix.InotifyAddWatch(fd, d, unix.IN_CREATE|unix.IN_ONLYDIR)
		if err == nil {
			w.dirs[wd] = d
		}
	}
	w.scan()
	return w, nil
}

// devices lists the input devices present now.
func (w *inputWatch) devices() []string {
	var out []string
	if ents, err := os.ReadDir(w.paths.Pts); err == nil {
		for _, e := range ents {
			if isNumber(e.Name()) {
				out = append(out, filepath.Join(w.paths.Pts, e.Name()))
			}
		}
	}
	if ents, err := os.ReadDir(w.paths.Dev); err == nil {
		for _, e := range ents {
			if isConsole(e.Name()) {
				out = append(out, filepath.Join(w.paths.Dev, e.Name()))
			}
		}
	}
	if ents, err := os.ReadDir(w.paths.Input); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "event") {
				out = append(out, filepath.Join(w.paths.Input, e.Name()))
			}
		}
	}
	return out
}

// isConsole matches tty, ttyN and ttySN.
func isConsole(name string) bool {
	if name == "tty" {
		return true
	}
	rest, ok := strings.CutPrefix(name, "tty")
	if !ok {
		return false
	}
	rest = strings.TrimPrefix(rest, "S")
	return isNumber(rest)
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// scan adds a watch for every device not yet watched.
func (w *inputWatch) scan() {
	for _, p := range w.devices() {
		w.add(p, false)
	}
}

// add watches path; fresh says the device was just created, so a watch of
// an older device of the same name is stale.
func (w *inputWatch) add(path string, fresh bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.byPath[path]; ok {
		if !fresh {
			return
		}
		delete(w.byWD, old)
		delete(w.byPath, path)
	}
	var wd int
	if err := fdctl.Control(w.f, func(fd int) (err error) {
		wd, err = unix.InotifyAddWatch(fd, path, unix.IN_ACCESS)
		return err
	}); err != nil {
		return // stopped, gone already, or not ours to read
	}
	w.byWD[wd] = path
	w.byPath[path] = wd
}

// lastAccess is the newest access time among the devices, or zero.
func (w *inputWatch) lastAccess() time.Time {
	var last time.Time
	for _, p := range w.devices() {
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			continue
		}
		if t := time.Unix(st.Atim.Unix()); t.After(last) && !w.isIgnored(p) {
			last = t
		}
	}
	return last
}

func (w *inputWatch) ignore(path string, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if on {
		w.ignored[path] = struct{}{}
	} else {
		delete(w.ignored, path)
	}
}

func (w *inputWatch) isIgnored(path string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.ignored[path]
	return ok
}

// run reads events until ctx ends; it closes the descriptor on return.
func (w *inputWatch) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { w.f.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		t := time.NewTicker(rescanEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.scan()
			}
		}
	})
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond) // EINTR and the like; never spin
				continue
			}
			return
		}
		w.handle(buf[:n])
	}
}

// handle decodes a batch of inotify events.
func (w *inputWatch) handle(b []byte) {
	now := time.Now()
	input := false
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		size := unix.SizeofInotifyEvent + int(ev.Len)
		if size > len(b) {
			break
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:size]), "\x00")
		b = b[size:]
		wd := int(ev.Wd)
		switch {
		case ev.Mask&unix.IN_ACCESS != 0:
			w.mu.Lock()
			p, ok := w.byWD[wd]
			_, ign := w.ignored[p]
			w.mu.Unlock()
			input = input || (ok && !ign)
		case ev.Mask&unix.IN_CREATE != 0:
			w.mu.Lock()
			dir, ok := w.dirs[wd]
			w.mu.Unlock()
			if ok && (isNumber(name) || strings.HasPrefix(name, "event")) {
				w.add(filepath.Join(dir, name), true)
			}
		case ev.Mask&unix.IN_IGNORED != 0:
			w.mu.Lock()
			if p, ok := w.byWD[wd]; ok {
				delete(w.byWD, wd)
				if w.byPath[p] == wd {
					delete(w.byPath, p)
				}
			}
			w.mu.Unlock()
		}
	}
	if input {
		w.touch(now)
	}
}

// watched lists the devices being watched (for tests and logs).
func (w *inputWatch) watched() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.byPath))
	for p := range w.byPath {
		out = append(out, p)
	}
	return out
}
