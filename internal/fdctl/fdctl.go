// Package fdctl runs system calls on an *os.File's descriptor without
// f.Fd(), which turns the descriptor to blocking mode (a netpoller reader
// would then hold a thread in read(2)) and races with a concurrent Close.
package fdctl

import "os"

// Control runs fn on f's descriptor, holding it open meanwhile; it fails
// without calling fn once f is closed.
func Control(f *os.File, fn func(fd int) error) error {
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
