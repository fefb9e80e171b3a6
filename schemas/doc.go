// Package schemas is Meridian's bus contract in code: every message that
// travels on NATS, the subject names, and the ground-station wire formats
// (length-prefixed TCP frames, the mf1 telemetry header, the HELLO line and
// the 24-byte UDP detection datagram). README.md beside this file documents
// the same contract for outside systems.
//
// Encoding. Bus messages are msgpack maps with snake_case keys, so any
// language (and the nats CLI) can decode them. Marshal writes integers in
// their smallest form; Unmarshal accepts any valid msgpack width, rejects
// trailing bytes and wraps every decode failure in ErrMalformed so workers
// can count and terminate bad messages with errors.Is.
//
// Guarantees. Subject helpers always return a valid NATS subject: a token
// taken from outside input (a station id such as "gs-3@10.0.0.7:5012")
// has its separators and wildcards replaced (see Token), while the message
// body keeps the original id.
//
// Caveats. Decoders of outside bytes (ReadFrame, ParseHello,
// DecodeMF1Header, DecodeDetection, Unmarshal) never panic and never
// allocate more than the input or the 65,536-byte frame limit implies;
// each has a fuzz target.
package schemas
