package pmake

import (
	"os"
	"syscall"
	"testing"
)

// A ^C that make answers with a failing exit instead of its death (GNU make
// 4.3's race) still kills pmake by SIGINT; a ^C make finished despite, or a
// failure with no ^C, is make's exit.
func TestInterruptedBy(t *testing.T) {
	exit := func(code int) syscall.WaitStatus { return syscall.WaitStatus(code << 8) }
	killed := syscall.WaitStatus(syscall.SIGTERM)
	queued := func(s ...os.Signal) <-chan os.Signal {
		c := make(chan os.Signal, len(s))
		for _, x := range s {
			c <- x
		}
		return c
	}
	for _, c := range []struct {
		name string
		ws   syscall.WaitStatus
		got  syscall.Signal
		sigs <-chan os.Signal
		want syscall.Signal
	}{
		{"make killed", killed, 0, queued(), syscall.SIGTERM},
		{"exit 2 after ^C", exit(2), syscall.SIGINT, queued(), syscall.SIGINT},
		{"exit 2, ^C still queued", exit(2), 0, queued(syscall.SIGQUIT), syscall.SIGQUIT},
		{"exit 0 after ^C", exit(0), syscall.SIGINT, queued(), 0},
		{"exit 2, no ^C", exit(2), 0, queued(), 0},
		{"exit 2, SIGHUP queued", exit(2), 0, queued(syscall.SIGHUP), 0},
	} {
		if got := interruptedBy(c.ws, c.got, c.sigs); got != c.want {
			t.Errorf("%s: pmake dies by %v; want %v", c.name, got, c.want)
		}
	}
}
