// Package bbolt runs the OOR B+ tree workloads of ops/perf/oor-btree.md
// against go.etcd.io/bbolt and against store/btree in the same `go test
// -bench` run. It is its own module so the product never depends on bbolt.
package bbolt
