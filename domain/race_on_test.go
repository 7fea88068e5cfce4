//go:build race

package domain_test

// raceEnabled: the race detector drops a quarter of what goes back to a sync.Pool.
const raceEnabled = true
