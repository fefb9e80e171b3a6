// Package pebble is a comparison anchor, not product code: it runs the OOR
// LSM engine's benchmark workload (ops/perf/oor-lsm.md) on
// github.com/cockroachdb/pebble v1.1.5 and on store/lsm in the same run.
// It is its own module so that the product never depends on pebble.
//
//	cd ops/perf/anchors/pebble && go test -run '^$' -bench . -count 6 | tee bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /engine bench.txt
package pebble
