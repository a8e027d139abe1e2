// Package term is the terminal handling sprite does itself: new
// pseudo-terminals (a remote job's, a lab host's console), raw mode (for a
// terminal whose line discipline runs elsewhere), and window sizes. It
// works on a file's descriptor without os.File.Fd, which would switch the
// file to blocking mode and lose its deadlines.
package term

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"sprite/internal/fdctl"
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
	err = fdctl.Control(master, func(fd int) error {
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

// MakeRaw puts the terminal f in raw mode, as cfmakeraw(3) does, and
// returns how to restore the mode it had.
func MakeRaw(f *os.File) (restore func(), err error) {
	var old *unix.Termios
	err = fdctl.Control(f, func(fd int) error {
		var err error
		if old, err = unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
			return err
		}
		t := *old
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		return unix.IoctlSetTermios(fd, unix.TCSETS, &t)
	})
	if err != nil {
		return nil, fmt.Errorf("raw mode on %s: %w", f.Name(), err)
	}
	return func() { fdctl.Control(f, func(fd int) error { return unix.IoctlSetTermios(fd, unix.TCSETS, old) }) }, nil
}

// SetSize sets the window size of the terminal f (master or slave); the
// kernel sends SIGWINCH to the terminal's foreground process group.
func SetSize(f *os.File, rows, cols uint16) error {
	err := fdctl.Control(f, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
	if err != nil {
		return fmt.Errorf("set window size of %s to %dx%d: %w", f.Name(), cols, rows, err)
	}
	return nil
}

// Size reads the window size of the terminal f.
func Size(f *os.File) (rows, cols uint16, err error) {
	err = fdctl.Control(f, func(fd int) error {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err == nil {
			rows, cols = ws.Row, ws.Col
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("get window size of %s: %w", f.Name(), err)
	}
	return rows, cols, nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	return fdctl.Control(f, func(fd int) error {
		_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	}) == nil
}
