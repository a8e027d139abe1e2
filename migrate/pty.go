package migrate

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// OpenPty opens a new pseudo-terminal: the master from /dev/ptmx, unlocked,
// and its slave by number from /dev/pts (O_NOCTTY, so opening it does not
// make it this process's controlling terminal). Both are close-on-exec; the
// master is in non-blocking mode behind Go's poller, so it takes deadlines.
func OpenPty() (master *os.File, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w (is devpts mounted on /dev/pts?)", err)
	}
	var n int
	err = control(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlockpt: %w", err)
		}
		var err error
		if n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN); err != nil {
			return fmt.Errorf("ptsname: %w", err)
		}
		return nil
	})
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	slave, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("open pty slave: %w", err)
	}
	return master, slave, nil
}

// SetWinsize sets the window size of the terminal f (master or slave); the
// kernel sends SIGWINCH to the terminal's foreground process group.
func SetWinsize(f *os.File, w Winsize) error {
	err := control(f, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: w.Rows, Col: w.Cols})
	})
	if err != nil {
		return fmt.Errorf("set window size of %s to %dx%d: %w", f.Name(), w.Cols, w.Rows, err)
	}
	return nil
}

// GetWinsize reads the window size of the terminal f.
func GetWinsize(f *os.File) (Winsize, error) {
	var w Winsize
	err := control(f, func(fd int) error {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err == nil {
			w = Winsize{Rows: ws.Row, Cols: ws.Col}
		}
		return err
	})
	if err != nil {
		return w, fmt.Errorf("get window size of %s: %w", f.Name(), err)
	}
	return w, nil
}

// control runs fn on f's descriptor without f.Fd(), which would switch
// the file to blocking mode and lose its deadlines.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
