package schemas

import "strings"

// Streams of the contract (ARCHITECTURE.md, "The bus contract").
const (
	StreamIngest    = "TLM_INGEST"    // tlm.ingest.<station>: raw frames from the gateway, kept for replay
	StreamReplay    = "TLM_REPLAY"    // tlm.replay.<source>: frames re-played from TLM_INGEST
	StreamRouted    = "TLM_ROUTED"    // tlm.routed.{emergency,routine}.<source>: router output (work queue)
	StreamRejected  = "TLM_REJECTED"  // tlm.rejected.<source>: frames from unregistered sources, kept aside
	StreamWork      = "TLM_WORK"      // tlm.work: bounded hand-off to the processor
	StreamProcessed = "TLM_PROCESSED" // tlm.processed.<source>: deduplicated, time-ordered frames
	StreamCmd       = "CMD"           // cmd.submit.<station>: telecommands in (work queue)
	StreamDispatch  = "CMD_DISPATCH"  // cmd.dispatch.<station>: priority-ordered, held until the station is on
	StreamSDA       = "SDA"           // sda.detections.<sensor>: UDP radar/optical detections
	StreamTLE       = "TLE"           // tle.update.<source>: TLE updates from the catalog sources
)

// KV buckets of the contract.
const (
	BucketStats    = "meridian_stats"    // keys "pipeline" (PipelineStats), "cmdqueue" (CmdQueueStats)
	BucketSessions = "meridian_sessions" // key <station token>: SessionState
	BucketSources  = "meridian_sources"  // key <source token>: Source (router registry)

	KeyPipelineStats = "pipeline"
	KeyCmdQueueStats = "cmdqueue"
	KeyStoreStats    = "store"
)

// Subject prefixes and wildcards.
const (
	IngestAll = "tlm.ingest.>"
	// IngestRoutine and IngestEmergency split TLM_INGEST into its two
	// lanes: a station's batches of routine frames on tlm.ingest.<station>,
	// its emergency frames, published at once, on
	// tlm.ingest.emergency.<station> — so that the router takes them before
	// a routine backlog (a station named "emergency" is still unambiguous:
	// its routine lane has three tokens).
	IngestRoutine   = "tlm.ingest.*"
	IngestEmergency = "tlm.ingest.emergency.>"
	ReplayAll       = "tlm.replay.>"
	RoutedAll       = "tlm.routed.>"
	RoutedEmerg     = "tlm.routed.emergency.>"
	RoutedRout      = "tlm.routed.routine.>"
	RejectedAll     = "tlm.rejected.>"
	WorkSubject     = "tlm.work"           // the hand-off's routine lane
	WorkEmergency   = "tlm.work.emergency" // its emergency lane, drained first
	ProcessedAll    = "tlm.processed.>"
	SubmitAll       = "cmd.submit.>"
	DispatchAll     = "cmd.dispatch.>"
	DetectionAll    = "sda.detections.>"
	TLEAll          = "tle.update.>"

	// OORService is the micro service name of the store worker; its
	// endpoints live under the "oor" subject prefix.
	OORService      = "oor"
	OORTleGet       = "oor.tle.get"
	OORTlePut       = "oor.tle.put"
	OORTleScan      = "oor.tle.scan"
	OORTleSnapshot  = "oor.tle.snapshot"
	OORCatalogMerge = "oor.catalog.merge"
	OORStats        = "oor.stats"
)

// Token turns an outside identifier into one valid NATS subject token:
// '.', '*', '>' and whitespace become '_', and an empty id becomes "_".
// Station ids such as "gs-3@10.0.0.7:5012" therefore map to
// "gs-3@10_0_0_7:5012". The mapping is not reversible; messages carry the
// original id in their body.
func Token(id string) string {
	if id == "" {
		return "_"
	}
	if !strings.ContainsAny(id, ".*> \t\r\n") {
		return id
	}
	b := []byte(id)
	for i, c := range b {
		switch c {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			b[i] = '_'
		}
	}
	return string(b)
}

// KVKey turns an outside identifier into a valid KV key (and consumer
// name): every byte outside [A-Za-z0-9_=-] becomes '_'. KV keys are
// stricter than subject tokens — "gs-3@10.0.0.7:5012" is a valid token
// after Token but its '@' and ':' are not valid in a key — so the session
// and source registries key stations by KVKey(station) and keep the
// original id in the value.
func KVKey(id string) string {
	if id == "" {
		return "_"
	}
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=') {
			b[i] = '_'
		}
	}
	return string(b)
}

// IngestSubject is where the gateway publishes a station's FrameBatches.
func IngestSubject(station string) string { return "tlm.ingest." + Token(station) }

// IngestEmergencySubject is where the gateway publishes a station's
// emergency frames, each at once.
func IngestEmergencySubject(station string) string { return "tlm.ingest.emergency." + Token(station) }

// IngestSubjects are both of a station's ingest subjects (replay filters).
func IngestSubjects(station string) []string {
	return []string{IngestSubject(station), IngestEmergencySubject(station)}
}

// ReplaySubject is where `meridian replay` re-publishes a source's frames.
func ReplaySubject(source string) string { return "tlm.replay." + Token(source) }

// RoutedSubject is the router's output for one source and priority.
func RoutedSubject(p Priority, source string) string {
	if p == PriorityEmergency {
		return "tlm.routed.emergency." + Token(source)
	}
	return "tlm.routed.routine." + Token(source)
}

// RejectedSubject keeps aside frames from unregistered sources.
func RejectedSubject(source string) string { return "tlm.rejected." + Token(source) }

// ProcessedSubject carries a source's processed frames.
func ProcessedSubject(source string) string { return "tlm.processed." + Token(source) }

// SubmitSubject is where telecommands for a station are submitted.
func SubmitSubject(station string) string { return "cmd.submit." + Token(station) }

// DispatchSubject carries a station's commands in dispatch order.
func DispatchSubject(station string) string { return "cmd.dispatch." + Token(station) }

// DetectionSubject carries one sensor's UDP detections; the sensor id is decimal.
func DetectionSubject(sensorID uint32) string {
	return "sda.detections." + uitoa(uint64(sensorID))
}

// TLESubject carries TLE updates from one catalog source.
func TLESubject(source string) string { return "tle.update." + Token(source) }

// LastToken returns the part of a subject after its last '.'.
func LastToken(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		return subject[i+1:]
	}
	return subject
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
