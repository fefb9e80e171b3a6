//go:build race

package demo

// Under the race detector every step is ~10× slower; one timed run each
// keeps TestQueryDemo quick while still checking every criterion.
func init() { queryRuns = 1 }
