package lab

// HostStatus is one host as `sprite lab status` shows it.
type HostStatus struct {
	Name      string  `json:"name"`
	Addr      string  `json:"addr"`
	InitPID   int     `json:"init_pid"`
	Alive     bool    `json:"alive"`  // the host init runs
	Daemon    bool    `json:"daemon"` // the daemon runs
	DaemonPID int     `json:"daemon_pid,omitempty"`
	LastExit  string  `json:"daemon_last_exit,omitempty"`
	CPUs      float64 `json:"cpus,omitempty"`
	Cgroup    string  `json:"cgroup,omitempty"`
	Netns     string  `json:"netns"`
	DaemonLog string  `json:"daemon_log"`
}

// Status reports every host of the lab.
func (l *Lab) Status() []HostStatus {
	var ss []HostStatus
	for i := range l.Hosts {
		h := &l.Hosts[i]
		s := HostStatus{Name: h.Name, Addr: h.Addr, InitPID: h.InitPID, CPUs: l.CPUs,
			Cgroup: h.Cgroup, Netns: h.Netns, DaemonLog: h.DaemonLog()}
		s.Alive = isHostInit(h.InitPID, h.Name)
		if st, err := readDaemonState(h); err == nil && s.Alive {
			s.Daemon, s.DaemonPID, s.LastExit = st.Running, st.PID, st.LastExit
		}
		ss = append(ss, s)
	}
	return ss
}
