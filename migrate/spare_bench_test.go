package migrate

import (
	"os"
	"testing"
)

// BenchmarkJobStart compares a job init started for the job with a spare
// one, each with and without its own cgroup (the job's cost of joining).
func BenchmarkJobStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	cg, err := NewCgroups("sprite-bench")
	if err != nil {
		b.Fatal(err)
	}
	devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer devnull.Close()
	for _, c := range []struct {
		name          string
		spare, cgroup bool
	}{{"cold", false, false}, {"spare", true, false}, {"cold+cgroup", false, true}, {"spare+cgroup", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				b.StopTimer()
				var sp *spare
				if c.spare {
					if sp, err = startSpare(os.Args[0]); err != nil {
						b.Fatal(err)
					}
				}
				n++
				ji := JobInit{Spec: Spec{ID: "h9." + itoaB(n), UID: nobody, GID: nobody, Argv: []string{"true"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}}
				b.StartTimer()
				var j *JobCgroup
				if c.cgroup {
					if j, err = cg.Create(ji.Spec.ID); err != nil {
						b.Fatal(err)
					}
					ji.Procs = j.Procs()
				}
				var cmd interface{ Wait() error }
				if sp != nil {
					cmd, err = sp.run(ji, devnull, devnull, devnull)
				} else {
					cmd, err = StartJobInit(os.Args[0], ji, devnull, devnull, devnull)
				}
				if err != nil {
					b.Fatal(err)
				}
				cmd.Wait()
				b.StopTimer()
				if j != nil {
					j.Remove()
				}
				b.StartTimer()
			}
		})
	}
}

func itoaB(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
