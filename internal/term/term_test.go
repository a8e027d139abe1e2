package term

import (
	"io"
	"testing"
	"time"
)

func TestPtyRawAndSize(t *testing.T) {
	master, slave, err := OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	if !IsTerminal(slave) || !IsTerminal(master) {
		t.Fatal("a pty is not a terminal")
	}

	// Raw mode on the slave: no echo, no line editing, no CR/LF mapping.
	restore, err := MakeRaw(slave)
	if err != nil {
		t.Fatalf("raw mode: %v", err)
	}
	defer restore()
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

	if err := SetSize(master, 33, 101); err != nil {
		t.Fatal(err)
	}
	rows, cols, err := Size(slave)
	if err != nil || rows != 33 || cols != 101 {
		t.Errorf("window size %dx%d (%v), want 101x33", cols, rows, err)
	}
}
