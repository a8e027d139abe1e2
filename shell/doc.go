// Package shell will be sprite's interactive Bubble Tea shell (command line,
// output, hosts and jobs panes, eviction notices). Not built yet.
package shell
