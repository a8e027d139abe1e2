package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ip runs the ip(8) command; stdin, if not empty, is fed as a -batch script.
func ip(stdin string, args ...string) error {
	cmd := exec.Command("ip", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// setupBridge creates the bridge sprite0 with the lab's gateway address.
func setupBridge() error {
	script := fmt.Sprintf("link add %s type bridge\naddr add %s/24 dev %s\nlink set %s up\n",
		Bridge, BridgeAddr, Bridge, Bridge)
	if err := ip(script, "-batch", "-"); err != nil {
		return fmt.Errorf("create bridge %s: %w", Bridge, err)
	}
	return nil
}

// setupHostNet gives the host whose init is pid its veth, address and route,
// and registers its netns as h.Netns.
func setupHostNet(h *Host, pid int) error {
	outside := fmt.Sprintf("link add %s type veth peer name eth0 netns %d\n"+
		"link set %s master %s up\nnetns attach %s %d\n",
		h.Veth, pid, h.Veth, Bridge, h.Netns, pid)
	if err := ip(outside, "-batch", "-"); err != nil {
		return fmt.Errorf("wire %s: %w", h.Name, err)
	}
	inside := fmt.Sprintf("addr add %s/24 dev eth0\nlink set eth0 up\nlink set lo up\n"+
		"route add default via %s\n", h.Addr, BridgeAddr)
	if err := ip(inside, "-n", h.Netns, "-batch", "-"); err != nil {
		return fmt.Errorf("address %s: %w", h.Name, err)
	}
	return nil
}

// labNetns lists the lab's network namespaces on the machine (registered
// with ip netns), whether state.json knows them or not.
func labNetns() []string {
	ents, _ := os.ReadDir("/run/netns")
	var ns []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "sprite-h") {
			ns = append(ns, e.Name())
		}
	}
	return ns
}

// labLinks lists the lab's links on the machine: sprite0 and sprite-h*.
func labLinks() []string {
	ents, _ := os.ReadDir("/sys/class/net")
	var ls []string
	for _, e := range ents {
		n := e.Name()
		if n == Bridge || strings.HasPrefix(n, "sprite-h") {
			ls = append(ls, n)
		}
	}
	return ls
}

// netnsPids lists the processes in the registered netns name.
func netnsPids(name string) []int {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// deleteNetns removes a registered netns, also a stale file.
func deleteNetns(name string) error {
	err := ip("", "netns", "delete", name)
	p := filepath.Join("/run/netns", name)
	if _, serr := os.Stat(p); serr != nil {
		return nil
	}
	_ = unmountDetach(p)
	if rerr := os.Remove(p); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// deleteLink removes a link; a link already gone is fine.
func deleteLink(name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err != nil {
		return nil
	}
	if err := ip("", "link", "delete", name); err != nil {
		if _, serr := os.Stat(filepath.Join("/sys/class/net", name)); serr != nil {
			return nil // a veth goes with its peer
		}
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}
