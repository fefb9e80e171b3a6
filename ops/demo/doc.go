// Package demo holds the course's acceptance scenarios as runnable programs
// behind `meridian demo <name>`. Each demo drives the real components, writes
// the figures the course asks for to an io.Writer, and returns an error
// (so the command exits non-zero) when an acceptance criterion fails.
//
// Each demo lives in its own file and is a plain function, so tests call
// it directly; cmd/meridian only wires flags to it.
package demo
