package pmake

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A job shell of a session that holds no host runs its line at home
// without asking the daemon (there is none here to ask: a call would
// fail and be reported as such), and --stats gives the daemon's reason.
func TestJobShellWithoutHostsRunsHomeWithoutACall(t *testing.T) {
	bin := pmakeBin(t)
	run := t.TempDir()
	dir := t.TempDir()
	if err := writeHosts(run, nil); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	cmd := exec.Command(bin, JobShellFlag, "--target=out", "-c", "echo built > out")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), EnvRun+"="+run, EnvHost+"="+host, EnvSession+"=pmake-1",
		EnvSocket+"="+filepath.Join(dir, "no-daemon.sock"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("job shell: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "built\n" {
		t.Fatalf("the line did not run: out holds %q", b)
	}
	recs, err := readRecords(filepath.Join(run, eventsFile))
	if err != nil || len(recs) == 0 {
		t.Fatalf("no records: %v", err)
	}
	if recs[0].Host != Home || recs[0].Why != whyNoHosts {
		t.Errorf("the job's start record: host %q, why %q; want %q, %q", recs[0].Host, recs[0].Why, Home, whyNoHosts)
	}
}

// A job shell given a home ticket (the session's other hosts all taken)
// runs its line here without asking the daemon, for the daemon's reason.
func TestJobShellWithHomeTicketRunsHomeWithoutACall(t *testing.T) {
	bin := pmakeBin(t)
	run := t.TempDir()
	dir := t.TempDir()
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
	host, _ := os.Hostname()
	cmd := exec.Command(bin, JobShellFlag, "--target=out", "-c", "echo built > out")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), EnvRun+"="+run, EnvHost+"="+host, EnvSession+"=pmake-1", EnvQueue+"=1",
		EnvSocket+"="+filepath.Join(dir, "no-daemon.sock"))
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Fatalf("job shell: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "built\n" {
		t.Fatalf("the line did not run: out holds %q", b)
	}
	recs, err := readRecords(filepath.Join(run, eventsFile))
	if err != nil || len(recs) == 0 {
		t.Fatalf("no records: %v", err)
	}
	if recs[0].Host != Home || recs[0].Why != whyHostsBusy {
		t.Errorf("the job's start record: host %q, why %q; want %q, %q", recs[0].Host, recs[0].Why, Home, whyHostsBusy)
	}
}
