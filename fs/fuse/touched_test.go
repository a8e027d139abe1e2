package fusefs

import (
	"testing"
	"time"
)

// TestTouched: an inode counts as changed after the change count a
// listing remembers, and while a handle of it may write; changes older
// than CacheTimeout go at the next sweep, which then waits for the table
// to double.
func TestTouched(t *testing.T) {
	var tc touched
	tc.change(1, 5)
	if !tc.since(1, 4) || tc.since(1, 5) || tc.since(2, 0) {
		t.Fatalf("inode 1 changed at 5: since(1, 4) %v, since(1, 5) %v, since(2, 0) %v; want true, false, false",
			tc.since(1, 4), tc.since(1, 5), tc.since(2, 0))
	}
	tc.open(3)
	tc.open(3)
	tc.close(3)
	if !tc.since(3, 100) {
		t.Fatal("inode 3 with a handle open for writing: not counted as changing")
	}
	tc.close(3)
	if tc.since(3, 100) {
		t.Fatal("inode 3 with its handles closed: still counted as changing")
	}

	old := time.Now().Add(-2 * CacheTimeout)
	for i := range uint64(touchedSweep) {
		tc.changed[100+i] = touch{seq: 1, at: old}
	}
	tc.change(2, 6) // sweeps
	if _, ok := tc.changed[100]; ok || len(tc.changed) != 2 {
		t.Fatalf("after a sweep: %d changes kept, want 2 (the young ones)", len(tc.changed))
	}
	if !tc.since(2, 5) || !tc.since(1, 4) {
		t.Fatal("a sweep dropped a change younger than CacheTimeout")
	}

	// A burst of young changes: a sweep that drops nothing puts the next
	// one off until the table has doubled, not at every change.
	for i := range uint64(touchedSweep + 10) {
		tc.change(1000+i, 7)
	}
	if tc.sweepAt < 2*touchedSweep {
		t.Fatalf("after a sweep of %d young changes the next is due at %d, want at least twice as many", touchedSweep, tc.sweepAt)
	}
}
