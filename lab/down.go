package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
)

const killTimeout = 10 * time.Second

// Down takes the lab down: it kills every host, deletes the lab's network
// namespaces, links and cgroups, and removes state.json, the binaries and,
// unless keep, the hosts' directories. It finds what to remove on the machine
// itself, so it works after a failed or half-finished Up and without a state
// file, and does nothing when there is nothing left.
func Down(ctx context.Context, keep bool) error {
	unlock, err := lock()
	if err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	defer unlock()
	if err := down(ctx, keep); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	return nil
}

func down(_ context.Context, keep bool) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(killHosts())
	for _, n := range labNetns() {
		add(deleteNetns(n))
	}
	for _, n := range labLinks() {
		add(deleteLink(n))
	}
	add(removeCgroups(5 * time.Second))
	add(unmountLab())
	if len(labMounts()) == 0 { // never remove files through a mount
		add(removeFiles(keep))
	}
	return errors.Join(errs...)
}

// killHosts kills every process of the lab and waits until they are gone:
// the host inits (by state.json and by argv), whatever else is still in a
// lab netns, and whatever is in a lab cgroup or a cgroup nested in one (a
// job of a host's daemon), thawing frozen ones first.
func killHosts() error {
	pids := map[int]bool{}
	if l, err := Load(); err == nil {
		for _, h := range l.Hosts {
			if isHostInit(h.InitPID, h.Name) {
				pids[h.InitPID] = true
			}
		}
	}
	for pid := range hostInits() {
		pids[pid] = true
	}
	for _, n := range labNetns() {
		for _, p := range netnsPids(n) {
			pids[p] = true
		}
	}
	for _, p := range cgroupPids() {
		pids[p] = true
	}
	spare := ancestors()
	list := make([]int, 0, len(pids))
	for p := range pids {
		if !spare[p] {
			list = append(list, p)
		}
	}
	sort.Ints(list)
	// A frozen process dies only once thawed (v1), and a daemon may
	// freeze a job until it is dead itself: thaw until all are gone.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			thawCgroups()
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	err := killAndWait(list, killTimeout)
	close(stop)
	<-stopped
	if err != nil {
		return fmt.Errorf("kill hosts: %w", err)
	}
	return nil
}

// unmountLab detaches mounts of the lab that ended up in the machine's own
// mount namespace (none, normally: hosts mount in their own).
func unmountLab() error {
	ms := labMounts()
	var errs []error
	for i := len(ms) - 1; i >= 0; i-- {
		if err := unmountDetach(ms[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if left := labMounts(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("mounts remain: %s", strings.Join(left, ", ")))
	}
	return errors.Join(errs...)
}

// removeFiles removes the lab's files, the hosts' directories unless keep.
func removeFiles(keep bool) error {
	var errs []error
	rm := func(p string, all bool) {
		var err error
		if all {
			err = os.RemoveAll(p)
		} else {
			err = os.Remove(p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	rm(StateFile, false)
	rm(BinDir, true)
	if !keep {
		rm(HostsDir, true)
		if ents, err := os.ReadDir(Root); err == nil && len(ents) == 0 {
			rm(Root, false)
		}
	}
	return errors.Join(errs...)
}

// leftovers describes what of a lab exists on the machine, "" if nothing.
func leftovers() string {
	var found []string
	if _, err := os.Stat(StateFile); err == nil {
		found = append(found, StateFile)
	}
	if inits := hostInits(); len(inits) > 0 {
		found = append(found, fmt.Sprintf("%d host init processes", len(inits)))
	}
	for _, n := range labNetns() {
		found = append(found, "netns "+n)
	}
	for _, n := range labLinks() {
		found = append(found, "link "+n)
	}
	if len(found) > 4 {
		found = append(found[:4], "…")
	}
	return strings.Join(found, ", ")
}
