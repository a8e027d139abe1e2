// Package homenode will keep the home side of every remote process: its
// global id (host.pid), stdio, signals, exit status and rusage. Not built
// yet: see the remote execution issue.
package homenode
