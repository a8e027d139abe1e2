package migrate

import (
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPty(t *testing.T) {
	master, slave, err := OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()

	// Raw mode on the slave: no echo, no line editing, no CR/LF mapping.
	err = control(slave, func(fd int) error {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cflag &^= unix.CSIZE | unix.PARENB
		tio.Cflag |= unix.CS8
		tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
		return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	})
	if err != nil {
		t.Fatalf("raw mode: %v", err)
	}
	msg := []byte("hello\r\x00\xff\x03 world\n")
	if _, err := master.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = slave.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(slave, got); err != nil {
		t.Fatalf("read from the slave: %v (got %q)", err, got)
	}
	if string(got) != string(msg) {
		t.Errorf("slave read %q, want %q", got, msg)
	}

	// And back: the slave's output appears on the master, unchanged (raw).
	if _, err := slave.Write([]byte("a\nb")); err != nil {
		t.Fatal(err)
	}
	_ = master.SetReadDeadline(time.Now().Add(5 * time.Second))
	back := make([]byte, 3)
	if _, err := io.ReadFull(master, back); err != nil || string(back) != "a\nb" {
		t.Errorf("master read %q, %v; want %q", back, err, "a\nb")
	}

	want := Winsize{Rows: 33, Cols: 101}
	if err := SetWinsize(master, want); err != nil {
		t.Fatal(err)
	}
	ws, err := GetWinsize(slave)
	if err != nil {
		t.Fatal(err)
	}
	if ws != want {
		t.Errorf("window size %+v, want %+v", ws, want)
	}
}
