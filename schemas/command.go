package schemas

import (
	"errors"
	"fmt"
	"math"
)

// CommandKind is a telecommand's type.
type CommandKind string

// Command kinds of the contract.
const (
	CmdSafeMode      CommandKind = "SAFE_MODE"
	CmdAbortPass     CommandKind = "ABORT_PASS"
	CmdRepoint       CommandKind = "REPOINT"
	CmdStatusRequest CommandKind = "STATUS_REQUEST"
	CmdHousekeeping  CommandKind = "HOUSEKEEPING"
)

// DefaultPriority is the priority a command of kind k gets when its sender
// gives none: SAFE_MODE 255, ABORT_PASS 200, REPOINT 100, STATUS_REQUEST 50,
// HOUSEKEEPING 10. ok is false for an unknown kind.
func DefaultPriority(k CommandKind) (p uint8, ok bool) {
	switch k {
	case CmdSafeMode:
		return 255, true
	case CmdAbortPass:
		return 200, true
	case CmdRepoint:
		return 100, true
	case CmdStatusRequest:
		return 50, true
	case CmdHousekeeping:
		return 10, true
	}
	return 0, false
}

// Command is a telecommand: submitted on cmd.submit.<station>, dispatched on
// cmd.dispatch.<station> in priority order, and written to the station's
// session as a length-prefixed frame holding this msgpack map.
type Command struct {
	ID        string      `msgpack:"id" json:"id"`
	StationID string      `msgpack:"station_id" json:"station_id"`
	Kind      CommandKind `msgpack:"kind" json:"kind"`
	// Priority is 0–255, highest first; nil means DefaultPriority(Kind).
	// It is an int so that an out-of-range value is reported, not truncated.
	Priority   *int     `msgpack:"priority,omitempty" json:"priority,omitempty"`
	Azimuth    *float64 `msgpack:"azimuth,omitempty" json:"azimuth,omitempty"`     // degrees, REPOINT only
	Elevation  *float64 `msgpack:"elevation,omitempty" json:"elevation,omitempty"` // degrees, REPOINT only
	IssuedAtNs int64    `msgpack:"issued_at_ns" json:"issued_at_ns"`
}

// Errors returned by Command.Validate; callers branch on them to count
// rejections by reason.
var (
	ErrUnknownKind      = errors.New("unknown command kind")
	ErrPriorityRange    = errors.New("priority out of range 0-255")
	ErrMissingStation   = errors.New("command has no station_id")
	ErrMissingID        = errors.New("command has no id")
	ErrRepointAngles    = errors.New("REPOINT needs azimuth in [0,360) and elevation in [-90,90]")
	ErrAnglesNotAllowed = errors.New("only REPOINT carries azimuth/elevation")
)

// Validate checks the command against the contract.
func (c *Command) Validate() error {
	if c.ID == "" {
		return ErrMissingID
	}
	if c.StationID == "" {
		return ErrMissingStation
	}
	if _, ok := DefaultPriority(c.Kind); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownKind, c.Kind)
	}
	if c.Priority != nil && (*c.Priority < 0 || *c.Priority > 255) {
		return fmt.Errorf("%w: %d", ErrPriorityRange, *c.Priority)
	}
	if c.Kind == CmdRepoint {
		if c.Azimuth == nil || c.Elevation == nil || !finite(*c.Azimuth) || !finite(*c.Elevation) ||
			*c.Azimuth < 0 || *c.Azimuth >= 360 || *c.Elevation < -90 || *c.Elevation > 90 {
			return ErrRepointAngles
		}
	} else if c.Azimuth != nil || c.Elevation != nil {
		return fmt.Errorf("%w: %s", ErrAnglesNotAllowed, c.Kind)
	}
	return nil
}

// EffectivePriority is the command's priority with the kind's default applied.
func (c *Command) EffectivePriority() uint8 {
	if c.Priority != nil && *c.Priority >= 0 && *c.Priority <= 255 {
		return uint8(*c.Priority)
	}
	p, _ := DefaultPriority(c.Kind)
	return p
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
