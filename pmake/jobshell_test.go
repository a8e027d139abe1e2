package pmake

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// runHomeLine runs "echo built > out" through a real job shell of session
// pmake-1 in a fresh directory, with no daemon to ask (a call would fail
// and be reported as such), extra added to its environment. It checks
// that the line ran, printing nothing, at home for the reason why.
func runHomeLine(t *testing.T, run, why string, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	host, _ := os.Hostname()
	cmd := exec.Command(pmakeBin(t), JobShellFlag, "--target=out", "-c", "echo built > out")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), EnvRun+"="+run, EnvHost+"="+host, EnvSession+"=pmake-1",
		EnvSocket+"="+filepath.Join(dir, "no-daemon.sock"))
	cmd.Env = append(cmd.Env, extra...)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("job shell: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "built\n" {
		t.Fatalf("the line did not run: out holds %q", b)
	}
	recs, err := readRecords(filepath.Join(run, eventsFile))
	if err != nil || len(recs) == 0 {
		t.Fatalf("no records: %v", err)
	}
	if recs[0].Host != Home || recs[0].Why != why {
		t.Errorf("the job's start record: host %q, why %q; want %q, %q", recs[0].Host, recs[0].Why, Home, why)
	}
}

// A job shell of a session that holds no host runs its line at home
// without asking the daemon, and --stats gives the daemon's reason, with
// a home ticket from the queue (all there are then) or without a queue.
func TestJobShellWithoutHostsRunsHomeWithoutACall(t *testing.T) {
	run := t.TempDir()
	if err := writeHosts(run, nil); err != nil {
		t.Fatal(err)
	}
	runHomeLine(t, run, whyNoHosts)
	os.Remove(filepath.Join(run, eventsFile))
	q, err := openQueue(run, func() capacity { return capacity{home: 1} })
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	runHomeLine(t, run, whyNoHosts, EnvQueue+"=1")
}

// A job shell given a home ticket (the session's other hosts all taken)
// runs its line here without asking the daemon, for the daemon's reason.
func TestJobShellWithHomeTicketRunsHomeWithoutACall(t *testing.T) {
	run := t.TempDir()
	if err := writeHosts(run, []HostSlots{{"h9", 1}}); err != nil {
		t.Fatal(err)
	}
	q, err := openQueue(run, func() capacity { return capacity{remote: 1, home: 1} })
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	remote, home := takeTicket(run, 1) // h9's slot, taken
	if remote == nil || home {
		t.Fatal("no remote ticket from an empty queue")
	}
	defer remote.Close()
	runHomeLine(t, run, whyHostsBusy, EnvQueue+"=1")
}
