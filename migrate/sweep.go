package migrate

import (
	"os"
	"path/filepath"
)

// leftover returns the job cgroups a previous run of the daemon left
// behind (it was killed with its jobs running): their homes have already
// rerun those jobs elsewhere, so the executor kills them at start.
func (c *Cgroups) leftover() []*JobCgroup {
	dirs := c.Dirs()
	if len(dirs) == 0 {
		return nil
	}
	ents, err := os.ReadDir(dirs[0])
	if err != nil {
		return nil
	}
	var out []*JobCgroup
	for _, e := range ents {
		if !e.IsDir() || validID(e.Name()) != nil {
			continue
		}
		j := &JobCgroup{c: c, id: e.Name()}
		for _, d := range dirs {
			j.dirs = append(j.dirs, filepath.Join(d, e.Name()))
		}
		out = append(out, j)
	}
	return out
}

// sweep kills and removes the job cgroups of a previous run.
func (e *Executor) sweep() {
	if e.cg == nil {
		return
	}
	for _, j := range e.cg.leftover() {
		pids, _ := j.Pids()
		if err := j.Kill(); err != nil {
			e.log.Warn("could not kill a job left by the previous daemon", "id", j.ID(), "err", err)
			continue
		}
		if len(pids) > 0 {
			e.log.Warn("killed a job left running by the previous daemon (its home reran it)", "id", j.ID(), "processes", len(pids))
		}
		j.Remove()
	}
}
