// Package stationsim is a simulated ground station for the ground-station
// client (gateway/gsclient), its tests, `meridian demo gsclient` and
// `meridian sim stations`: a TCP server that streams length-prefixed mf1
// frames (schemas.AppendMF1) to whoever dials it.
//
// Behaviour, per Config: a frame rate per connection (or unthrottled),
// satellites sent round-robin with per-satellite sequences that continue
// across connections, a fraction of emergency frames, a payload size,
// dropping every connection abruptly after N frames, or going quiet after
// N frames. At run time a test can Refuse (close the listener, so dials get
// "connection refused") and Resume on the same address, DropConnections,
// and HoldLargeFrame: the next frame is sent in two halves with a pause
// between them, to test that a client finishes a frame across its
// shutdown. GOODBYE frames from clients are counted (Stats.Goodbyes); after
// one the station stops streaming and closes that connection.
//
// Caveats: it is a test instrument, not a model of a real station's RF
// schedule; Resume can fail if another process took the port meanwhile.
package stationsim
