// Command transport measures a call between two lab hosts over sprite's
// QUIC transport, beside a plain TCP+TLS echo (same certificates, same
// frames, one persistent connection) measured in the same run.
//
//	sudo bash scripts/bench transport    (or bin/bench-transport -calls 3000 -mib 256)
//
// It brings up a 2-host lab with bin/sprite (built by scripts/setup),
// runs its own binary as the server on h2 and the client on h1, prints a
// table and writes docs/bench/transport.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

const (
	labBin   = "/var/lib/sprite-lab/bin"
	selfName = "sprite-bench-transport"
	quicPort = 7180
	tlsPort  = 7181
	h2Addr   = "10.213.0.12"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		fatal(serve())
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "client" {
		fatal(client(os.Args[2:]))
		return
	}
	calls := flag.Int("calls", 3000, "sequential round trips per transport")
	mib := flag.Int("mib", 256, "MiB streamed per transport")
	out := flag.String("out", "docs/bench/transport.md", "where to write the results")
	sprite := flag.String("sprite", "bin/sprite", "the sprite binary")
	procs := flag.Int("procs", 0, "GOMAXPROCS of both ends (0: Go's default, as the daemon's config procs)")
	flag.Parse()
	fatal(orchestrate(*sprite, *calls, *mib, *procs, *out))
}

func fatal(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench transport: %v\n", err)
		os.Exit(1)
	}
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func orchestrate(sprite string, calls, mib, procs int, out string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs root: run with sudo")
	}
	run(sprite, "lab", "down")
	if err := run(sprite, "lab", "up", "--hosts", "2"); err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	defer run(sprite, "lab", "down")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := copyFile(self, filepath.Join(labBin, selfName)); err != nil {
		return err
	}
	gmp := "GOMAXPROCS=" // empty: Go's default
	if procs > 0 {
		gmp += fmt.Sprint(procs)
	}
	srv := exec.Command(sprite, "lab", "exec", "h2", "--", "env", gmp, selfName, "serve")
	srv.Stderr = os.Stderr
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Process.Kill()
	ready := make([]byte, 6)
	if _, err := stdout.Read(ready); err != nil || string(ready) != "ready\n" {
		return fmt.Errorf("server on h2 did not start: %q %v", ready, err)
	}
	cl := exec.Command(sprite, "lab", "exec", "h1", "--", "env", gmp, selfName, "client",
		"-addr", h2Addr, "-calls", fmt.Sprint(calls), "-mib", fmt.Sprint(mib))
	cl.Stderr = os.Stderr
	b, err := cl.Output()
	if err != nil {
		return fmt.Errorf("client on h1: %w", err)
	}
	var res []result
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("client output %q: %w", b, err)
	}
	table := render(res, calls, mib, procs)
	fmt.Print(table)
	return os.WriteFile(out, []byte(table), 0o644)
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// result is one transport's figures.
type result struct {
	Name      string  `json:"name"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	MeanUs    float64 `json:"mean_us"`
	MBps      float64 `json:"mb_per_s"`
	CallsPerS float64 `json:"calls_per_s"`
}

func render(res []result, calls, mib, procs int) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Transport benchmark: a call between two lab hosts\n\n")
	fmt.Fprintf(&b, "Run %s on %s (%d CPUs, %s/%s): `sudo bash scripts/bench transport` (-calls %d -mib %d -procs %d).\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, calls, mib, procs)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "Machine load average (1, 5, 15 min) at the end: %s (a busy machine inflates every figure).\n",
			strings.Join(strings.Fields(string(la))[:3], " "))
	}
	fmt.Fprintf(&b, "h1 calls h2 across the lab bridge (veth + bridge, two network namespaces). Latency: %d sequential\n", calls)
	fmt.Fprintf(&b, "64-byte echo calls (QUIC: sprite's unary call, on a kept stream, and beside it the same call on\n")
	fmt.Fprintf(&b, "a new stream of its own, as every call was made before 2026-12-03; TCP+TLS: one persistent\n")
	fmt.Fprintf(&b, "connection, the same frames). Throughput: %d MiB in 256 KiB data frames over one\n", mib)
	fmt.Fprintf(&b, "streaming call / one connection. Parallel: 16 callers at once, calls per second. Both ends run\n")
	if procs > 0 {
		fmt.Fprintf(&b, "with GOMAXPROCS=%d (the daemon's config `procs`).\n\n", procs)
	} else {
		fmt.Fprintf(&b, "with Go's default GOMAXPROCS, as the daemon (config `procs` 0).\n\n")
	}
	fmt.Fprintf(&b, "| transport | p50 µs | p99 µs | mean µs | MB/s | parallel calls/s |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range res {
		mbps := "-"
		if r.MBps > 0 {
			mbps = fmt.Sprintf("%.0f", r.MBps)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %s | %.0f |\n", r.Name, r.P50us, r.P99us, r.MeanUs, mbps, r.CallsPerS)
	}
	if len(res) == 3 && res[1].P50us > 0 && res[2].P50us > 0 && res[2].MBps > 0 {
		kept, fresh, tls := res[0], res[1], res[2]
		fmt.Fprintf(&b, "\nRatios (same run): kept stream / new stream per call, latency p50 %.2fx, parallel calls/s %.2fx;\n",
			kept.P50us/fresh.P50us, kept.CallsPerS/fresh.CallsPerS)
		fmt.Fprintf(&b, "sprite QUIC / TCP+TLS, latency p50 %.2fx, throughput %.2fx.\n", kept.P50us/tls.P50us, kept.MBps/tls.MBps)
	}
	return b.String()
}
