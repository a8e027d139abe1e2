package migrate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sprite/migrate/rexec"
	"sync"
	"syscall"
	"time"

	"sprite/internal/term"
	"sprite/rpc"
	"sprite/wire"
)

// runner holds a started job's process and the executor's ends of its
// stdio: pipes, or a pty's master.
type runner struct {
	e   *Executor
	j   *job
	cmd *exec.Cmd

	stdin          *os.File // nil for /dev/null; the pty master with a tty
	stdout, stderr *os.File // stderr is nil with a tty
	ptySlave       string   // ignored by the idle detector while the job runs
	closeOnce      sync.Once
}

// startJob makes the job's cgroup and stdio and starts it through the job
// init; the job's process exists when it returns.
func (e *Executor) startJob(j *job) (*runner, error) {
	s, host := j.spec, e.d.Self().Name
	r := &runner{e: e, j: j}
	var procs []string
	if e.cg != nil {
		// A cgroup per attempt: the last job of the same id may still be
		// being cleaned up (ids are home.pid, reused by the next job).
		cg, err := e.cg.Create(fmt.Sprintf("%s-%d", s.ID, e.seq.Add(1)))
		if err != nil {
			return nil, startErr(s, host, err)
		}
		j.cg, procs = cg, cg.Procs()
	}
	in, out, errw, err := r.stdio()
	if err != nil {
		return nil, startErr(s, host, err)
	}
	ji := JobInit{Spec: s, MountRoot: e.d.Config().Mount, Procs: procs, Nice: e.opts.Nice, Idle: e.opts.Idle, AllowRoot: e.opts.AllowRoot}
	if j.home { // the home's own job: its own files, its own priority
		ji.Spec.Mounts, ji.Nice, ji.Idle = nil, 0, false
	}
	cmd, err := e.jobInit(ji, in, out, errw)
	for _, f := range []*os.File{in, out, errw} {
		if f != nil {
			f.Close() // the child's ends
		}
	}
	if err != nil {
		r.close()
		return nil, err // StartJobInit names the job and the host
	}
	r.cmd = cmd
	e.mu.Lock()
	j.pid = cmd.Process.Pid
	e.mu.Unlock()
	return r, nil
}

// stdio makes the job's fds 0-2 and keeps the executor's ends.
func (r *runner) stdio() (in, out, errw *os.File, err error) {
	s := r.j.spec
	if s.Tty != nil {
		m, sl, err := term.OpenPty()
		if err != nil {
			return nil, nil, nil, err
		}
		if err := term.SetSize(m, s.Tty.Rows, s.Tty.Cols); err != nil {
			m.Close()
			sl.Close()
			return nil, nil, nil, err
		}
		r.stdin, r.stdout, r.ptySlave = m, m, sl.Name()
		r.ignorePty(true)
		return sl, sl, sl, nil
	}
	if s.NoStdin {
		if in, err = os.Open(os.DevNull); err != nil {
			return nil, nil, nil, err
		}
	} else if in, r.stdin, err = os.Pipe(); err != nil {
		return nil, nil, nil, err
	}
	if r.stdout, out, err = os.Pipe(); err != nil {
		return nil, nil, nil, err
	}
	if r.stderr, errw, err = os.Pipe(); err != nil {
		return nil, nil, nil, err
	}
	return in, out, errw, nil
}

// ignorePty keeps a foreign job's terminal from counting as owner input.
func (r *runner) ignorePty(on bool) {
	if d := r.e.idle; r.ptySlave != "" && d != nil && d.Detector() != nil {
		d.Detector().Ignore(r.ptySlave, on)
	}
}

func (r *runner) close() {
	r.closeOnce.Do(func() {
		for _, f := range []*os.File{r.stdin, r.stdout, r.stderr} {
			if f != nil {
				f.Close()
			}
		}
		r.ignorePty(false)
	})
}

// input copies the home's stdin and control messages to the job until the
// stream ends. A stream that breaks while the job runs means its home is
// gone: lost is called and the job is killed.
func (r *runner) input(c *rpc.Call, lost func(why string)) {
	for {
		f, err := c.Recv()
		if err != nil {
			if !r.exited() {
				why := "its home went away"
				if !errors.Is(err, io.EOF) {
					why += ": " + err.Error()
				}
				lost(why)
			}
			return
		}
		switch f.Type {
		case wire.FrameData:
			if r.stdin != nil {
				r.stdin.Write(f.Payload) // blocks while the job does not read: back-pressure
			}
		case wire.FrameMsg:
			var in Input
			if wire.Unmarshal(f.Payload, &in) != nil {
				continue
			}
			switch {
			case in.Kind == InputEOF && r.j.spec.Tty == nil && r.stdin != nil:
				r.stdin.Close()
			case in.Kind == InputEOF && r.j.spec.Tty != nil:
				r.stdin.Write([]byte{4}) // ^D: end of input on a terminal
			case in.Kind == InputResize && in.Size != nil && r.j.spec.Tty != nil:
				term.SetSize(r.stdin, in.Size.Rows, in.Size.Cols)
			}
		}
	}
}

// exited reports whether the job's process has been waited for.
func (r *runner) exited() bool { return r.cmd.ProcessState != nil }

// run sends the job's output home and waits for it; it returns its exit.
func (r *runner) run(out *sender) Exit {
	var wg sync.WaitGroup
	pump := func(f *os.File, kind string) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if out.send(Event{Kind: kind, Data: buf[:n]}) != nil {
					r.e.lost(r.j, "its home went away")
					io.Copy(io.Discard, f)
					return
				}
			}
			if err != nil {
				return // EOF, or EIO from a pty whose job has gone
			}
		}
	}
	wg.Add(1)
	go pump(r.stdout, EventStdout)
	if r.stderr != nil {
		wg.Add(1)
		go pump(r.stderr, EventStderr)
	}
	st, _ := r.cmd.Process.Wait()
	r.cmd.ProcessState = st
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainAfterExit):
		r.e.kill(r.j) // a child kept the output open: end it
		if r.ptySlave == "" {
			r.stdout.SetReadDeadline(time.Now())
			if r.stderr != nil {
				r.stderr.SetReadDeadline(time.Now())
			}
		} else {
			r.stdout.SetReadDeadline(time.Now())
		}
		<-drained
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	ru, _ := st.SysUsage().(*syscall.Rusage)
	return rexec.ExitFromWait(ws, ru, r.e.d.Self().Name)
}
