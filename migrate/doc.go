// Package migrate will place, start and evict remote work: remote exec at
// exec time, the executor on the target, freeze and return on owner input.
// Not built yet: see the remote execution and eviction issues.
package migrate
