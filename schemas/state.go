package schemas

// PipelineStats is the processor's snapshot in KV meridian_stats key
// "pipeline", rewritten after every batch.
type PipelineStats struct {
	FramesIngested    uint64 `msgpack:"frames_ingested" json:"frames_ingested"`
	FramesRouted      uint64 `msgpack:"frames_routed" json:"frames_routed"`
	FramesProcessed   uint64 `msgpack:"frames_processed" json:"frames_processed"`
	EmergencyCount    uint64 `msgpack:"emergency_count" json:"emergency_count"`
	DuplicatesDropped uint64 `msgpack:"duplicates_dropped" json:"duplicates_dropped"`
	InvalidDropped    uint64 `msgpack:"invalid_dropped" json:"invalid_dropped"`
	UpdatedAtMs       int64  `msgpack:"updated_at_ms" json:"updated_at_ms"`
}

// CmdQueueStats is the command queue's snapshot in KV meridian_stats key
// "cmdqueue".
type CmdQueueStats struct {
	CommandsPushed     uint64 `msgpack:"commands_pushed" json:"commands_pushed"`
	CommandsDispatched uint64 `msgpack:"commands_dispatched" json:"commands_dispatched"`
	SafeModeCount      uint64 `msgpack:"safe_mode_count" json:"safe_mode_count"`
	Depth              int    `msgpack:"depth" json:"depth"`
	CommandsRejected   uint64 `msgpack:"commands_rejected" json:"commands_rejected"`
	UpdatedAtMs        int64  `msgpack:"updated_at_ms" json:"updated_at_ms"`
}

// SessionPhase is a ground-station session's state-machine phase.
type SessionPhase string

// Phases of the ground-station session state machine.
const (
	PhaseConnecting    SessionPhase = "connecting"
	PhaseConnected     SessionPhase = "connected"
	PhaseReconnecting  SessionPhase = "reconnecting"
	PhaseDisconnecting SessionPhase = "disconnecting"
	PhaseFailed        SessionPhase = "failed"
	PhaseStopped       SessionPhase = "stopped"
)

// SessionState is a station session's state in KV meridian_sessions key
// <station token>, published on every transition. Attempt is set while
// connecting or reconnecting, SinceMs while connected, NextRetryMs while
// reconnecting, Reason when failed.
type SessionState struct {
	StationID   string       `msgpack:"station_id" json:"station_id"`
	Phase       SessionPhase `msgpack:"state" json:"state"`
	Addr        string       `msgpack:"addr,omitempty" json:"addr,omitempty"`
	Attempt     uint32       `msgpack:"attempt,omitempty" json:"attempt,omitempty"`
	SinceMs     int64        `msgpack:"since_ms,omitempty" json:"since_ms,omitempty"`
	NextRetryMs int64        `msgpack:"next_retry_ms,omitempty" json:"next_retry_ms,omitempty"`
	Reason      string       `msgpack:"reason,omitempty" json:"reason,omitempty"`
	// Origin says who owns the session: "gateway" (the station dialled us)
	// or "gs-client" (we dialled the station).
	Origin      string `msgpack:"origin,omitempty" json:"origin,omitempty"`
	UpdatedAtMs int64  `msgpack:"updated_at_ms" json:"updated_at_ms"`
}

// Source is a registered telemetry source in KV meridian_sources key
// <source token>: the router's registry, kept across restarts.
type Source struct {
	SourceID       string     `msgpack:"source_id" json:"source_id"`
	Kind           SourceKind `msgpack:"kind" json:"kind"`
	StationID      string     `msgpack:"station_id,omitempty" json:"station_id,omitempty"`
	RegisteredAtMs int64      `msgpack:"registered_at_ms" json:"registered_at_ms"`
}
