// Package system composes Meridian's components into one process: the
// all-in-one `meridian run` (embedded NATS plus every component) and the
// single-component modes (`meridian gateway`, `meridian worker <name>`, …)
// that run against an external cluster.
//
// Lifecycle. Start opens the bus (starting the embedded server and taking
// the data directory's lock), provisions the contract, binds the HTTP,
// TCP and UDP listeners, and starts components in dependency order: the
// consumers of data before its producers. Shutdown stops them in the
// reverse order — ingress first, so nothing new enters; then the workers
// drain; then the store flushes — within one overall deadline (10 s by
// default), after which whatever is left is abandoned and the bus is
// closed. A component that fails on its own brings the process down (with
// the same ordered shutdown) so a supervisor can restart it.
package system
