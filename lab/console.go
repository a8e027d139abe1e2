package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ConsoleTTY is every host's console: a terminal its init holds open for
// the host's whole life, with a reader on it like a login shell. Lab.Type
// types on it.
const ConsoleTTY = "/dev/pts/0"

const maxKeys = 64 << 10

// ConsoleSocket is where h's init takes keys for its console (a unix socket
// on the machine).
func (h *Host) ConsoleSocket() string { return filepath.Join(h.Dir, "console.sock") }

// console is the host init's side of the console.
type console struct {
	master, slave *os.File
	read          chan int // byte counts the reader got from the slave
}

// startConsole opens the console pty and serves the console socket.
func startConsole(dir string) error {
	master, slave, err := openPty()
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if slave.Name() != ConsoleTTY {
		return fmt.Errorf("console: got %s, want %s (is /dev/pts a new devpts instance?)", slave.Name(), ConsoleTTY)
	}
	sock := filepath.Join(dir, "console.sock")
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c := &console{master: master, slave: slave, read: make(chan int, 1024)}
	go c.readLoop()
	go c.serve(ln)
	return nil
}

// readLoop is the console's "shell": it reads everything typed.
func (c *console) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, err := c.slave.Read(buf)
		if n > 0 {
			c.read <- n
		}
		if err != nil {
			return
		}
	}
}

func (c *console) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		err = c.handle(conn)
		if err != nil {
			fmt.Fprintf(conn, "error: %v\n", err)
		} else {
			fmt.Fprintln(conn, "ok")
		}
		conn.Close()
	}
}

// handle types what the connection sends, until it half-closes, and waits
// until the reader has read it all.
func (c *console) handle(conn net.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(typeTimeout))
	keys, err := io.ReadAll(io.LimitReader(conn, maxKeys))
	if err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	for len(c.read) > 0 { // forget stray input
		<-c.read
	}
	if _, err := c.master.Write(keys); err != nil {
		return fmt.Errorf("type on %s: %w", ConsoleTTY, err)
	}
	timeout := time.After(typeTimeout)
	for got := 0; got < len(keys); {
		select {
		case n := <-c.read:
			got += n
		case <-timeout:
			return fmt.Errorf("%s: only %d of %d keys were read within %v", ConsoleTTY, got, len(keys), typeTimeout)
		}
	}
	return nil
}

// typeConsole sends keys to h's console and waits until they were read.
func typeConsole(ctx context.Context, h *Host, keys string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", h.ConsoleSocket())
	if err != nil {
		return fmt.Errorf("reach %s's console: %w", h.Name, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(2 * typeTimeout))
	}
	if _, err := io.WriteString(conn, keys); err != nil {
		return fmt.Errorf("type on %s: %w", h.Name, err)
	}
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		return fmt.Errorf("type on %s: %w", h.Name, err)
	}
	reply, err := io.ReadAll(conn)
	if r := strings.TrimSpace(string(reply)); r != "ok" {
		if err == nil {
			err = errors.New(strings.TrimPrefix(r, "error: "))
		}
		return fmt.Errorf("type on %s: %w", h.Name, err)
	}
	return nil
}
