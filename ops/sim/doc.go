// Package sim is the simulated constellation behind `meridian sim` and
// `meridian run --demo`: 12 ground stations × 4 satellites that dial the
// gateway and stream mf1 frames at a configurable rate and emergency
// ratio (with overlapping passes, so some satellite frames arrive through
// two stations and must be de-duplicated), SDA sensors sending UDP
// detections, the five catalog sources publishing TLE updates, and
// operators submitting telecommands.
//
// The simulator is an outside system: it speaks only the public wire
// formats and the bus contract, never Meridian's internals, so what it
// exercises is what real stations and sources exercise. Every loop is
// paced by a ticker and stops when its context ends.
package sim
