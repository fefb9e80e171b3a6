package cmdqueue

import (
	"errors"
	"fmt"

	"github.com/meridian-ops/meridian/schemas"
)

// ErrStationMismatch is returned by DecodeSubmit when a command's
// station_id does not belong to the subject it was submitted on
// (cmd.submit.<Token(station_id)>): a sender bug that must not route a
// telecommand to the wrong station.
var ErrStationMismatch = errors.New("cmdqueue: station_id does not match the submit subject")

// DecodeSubmit decodes and validates a message from cmd.submit.<station>:
// a msgpack Command map (see schemas.Command) that passes
// Command.Validate and names the station of its subject. Errors wrap
// schemas.ErrMalformed (undecodable bytes), one of the schemas.Command
// validation sentinels (ErrUnknownKind, ErrPriorityRange,
// ErrMissingStation, ErrMissingID, ErrRepointAngles, ErrAnglesNotAllowed)
// or ErrStationMismatch; Reason names which.
func DecodeSubmit(subject string, data []byte) (schemas.Command, error) {
	var c schemas.Command
	if err := schemas.Unmarshal(data, &c); err != nil {
		return schemas.Command{}, fmt.Errorf("cmdqueue: submit on %s: %w", subject, err)
	}
	if err := c.Validate(); err != nil {
		return schemas.Command{}, fmt.Errorf("cmdqueue: command %q on %s rejected: %w", c.ID, subject, err)
	}
	if tok := schemas.LastToken(subject); tok != schemas.Token(c.StationID) {
		return schemas.Command{}, fmt.Errorf("%w: command %q for station %q submitted on %s", ErrStationMismatch, c.ID, c.StationID, subject)
	}
	return c, nil
}

// Reason classifies a DecodeSubmit error for the rejection counter's
// "reason" label.
func Reason(err error) string {
	switch {
	case errors.Is(err, schemas.ErrMalformed):
		return "malformed"
	case errors.Is(err, schemas.ErrUnknownKind):
		return "unknown_kind"
	case errors.Is(err, schemas.ErrPriorityRange):
		return "priority_range"
	case errors.Is(err, schemas.ErrMissingStation):
		return "missing_station"
	case errors.Is(err, schemas.ErrMissingID):
		return "missing_id"
	case errors.Is(err, schemas.ErrRepointAngles):
		return "repoint_angles"
	case errors.Is(err, schemas.ErrAnglesNotAllowed):
		return "angles_not_allowed"
	case errors.Is(err, ErrStationMismatch):
		return "station_mismatch"
	}
	return "other"
}
