package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// flockFile takes an exclusive flock on path ("" takes none), waiting for
// whoever holds it; the returned func releases it. When one of this
// process's ancestors holds it (`flock /tmp/sprite-lab.lock sudo bash
// scripts/bench evict`), the lock is already ours and it takes none.
func flockFile(ctx context.Context, path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open the lab lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return func() { f.Close() }, nil
	}
	if ancestorHolds(f) {
		f.Close()
		return func() {}, nil
	}
	fmt.Fprintf(os.Stderr, "waiting for %s (another lab user holds it)\n", path)
	locked := make(chan error, 1)
	go func() { locked <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-locked:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		// The process ends soon, and with it a lock taken meanwhile.
		return nil, fmt.Errorf("waiting for %s: %w", path, ctx.Err())
	}
}

// ancestorHolds reports whether a process this one descends from holds a
// flock on f's file, by /proc/locks.
func ancestorHolds(f *os.File) bool {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	dev := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false
	}
	holders := map[int]bool{}
	for line := range strings.SplitSeq(string(b), "\n") {
		fs := strings.Fields(line)
		// "1: FLOCK ADVISORY WRITE PID DEV 0 EOF"; waiters have a "->".
		if len(fs) < 6 || fs[1] != "FLOCK" || fs[5] != dev {
			continue
		}
		if pid, err := strconv.Atoi(fs[4]); err == nil {
			holders[pid] = true
		}
	}
	for pid := os.Getppid(); pid > 1; pid = parent(pid) {
		if holders[pid] {
			return true
		}
	}
	return false
}

// parent is pid's parent (0 when unknown).
func parent(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command may hold spaces and parentheses: the fields after its
	// last ')' are state, ppid, ...
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fs) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fs[1])
	return ppid
}
