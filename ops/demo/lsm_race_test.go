//go:build race

package demo

// raceEnabled shrinks the storage demos under the race detector, which
// slows the engine several-fold; the full-size runs happen without -race.
const raceEnabled = true
