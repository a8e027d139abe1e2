package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"sprite/internal/term"
)

// DefaultKeys is what Type types when told nothing.
const DefaultKeys = "x\n"

const typeTimeout = 5 * time.Second

// Type makes owner keyboard activity on host: keys are written to the
// master side of the host's console (ConsoleTTY, /dev/pts/0 in the host)
// and Type returns once the console's reader has read them all from the
// slave side. Those reads are what an idle detector watching the host's
// /dev/pts/* sees (IN_ACCESS; note that the kernel reports a tty's
// IN_ACCESS only to a watch on the tty itself, not to one on /dev/pts).
func (l *Lab) Type(ctx context.Context, host, keys string) error {
	h, err := l.Host(host)
	if err != nil {
		return fmt.Errorf("lab type: %w", err)
	}
	if keys == "" {
		keys = DefaultKeys
	}
	if err := typeConsole(ctx, h, keys); err != nil {
		return fmt.Errorf("lab type: %w", err)
	}
	return nil
}

// TypeNewPty is Type on a terminal made for the purpose: inside host it
// opens a new pty from the host's /dev/ptmx, types keys on it and closes it.
func (l *Lab) TypeNewPty(ctx context.Context, host, keys string) error {
	if keys == "" {
		keys = DefaultKeys
	}
	cmd := l.CommandContext(ctx, host, "", SpriteBin, "lab", "_type", "--keys", keys)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab type %s: %w: %s", host, err, bytes.TrimSpace(out))
	}
	return nil
}

// TypeHere is `sprite lab _type`: it types keys on a new terminal of the
// current mount namespace (run inside a host by Type).
func TypeHere(keys string) error {
	master, slave, err := openPty()
	if err != nil {
		return fmt.Errorf("lab _type: %w", err)
	}
	defer master.Close()
	defer slave.Close()
	read := make(chan error, 1)
	go func() { read <- readN(slave, len(keys)) }()
	if _, err := master.WriteString(keys); err != nil {
		return fmt.Errorf("lab _type: write keys: %w", err)
	}
	select {
	case err := <-read:
		return err
	case <-time.After(typeTimeout):
		return fmt.Errorf("lab _type: the keys were not read back from %s within %v", slave.Name(), typeTimeout)
	}
}

// openPty opens a new pty pair with the slave in raw mode, so every key
// reaches the reader as typed.
func openPty() (master, slave *os.File, err error) {
	master, slave, err = term.OpenPty()
	if err != nil {
		return nil, nil, err
	}
	if _, err := term.MakeRaw(slave); err != nil {
		master.Close()
		slave.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// readN reads n bytes from f.
func readN(f *os.File, n int) error {
	buf := make([]byte, n)
	for got := 0; got < n; {
		m, err := f.Read(buf[got:])
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return fmt.Errorf("lab _type: %s closed after %d of %d keys", f.Name(), got, n)
			}
			return fmt.Errorf("lab _type: read %s: %w", f.Name(), err)
		}
		got += m
	}
	return nil
}
