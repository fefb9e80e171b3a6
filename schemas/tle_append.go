package schemas

import (
	"encoding/binary"
	"math"
)

// Appender is implemented by messages with a hand-written msgpack encoder
// that writes exactly what Marshal would (the oor replies: a scan or
// snapshot reply carries thousands of element sets, and reflection was a
// quarter of the store worker's time per request). bus.AddEndpoint uses it.
type Appender interface {
	AppendMsgpack(dst []byte) []byte
}

func appendFloat(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendMsgpack appends t as Marshal encodes it.
func (t *Tle) AppendMsgpack(b []byte) []byte {
	n := 13
	for _, s := range [...]string{t.Name, t.Line1, t.Line2} {
		if s != "" {
			n++
		}
	}
	b = appendMapLen(b, n)
	b = appendUint(appendStr(b, "norad_id"), uint64(t.NoradID))
	b = appendStr(appendStr(b, "intl_designator"), t.IntlDesignator)
	b = appendFloat(appendStr(b, "epoch"), t.Epoch)
	b = appendFloat(appendStr(b, "mean_motion"), t.MeanMotion)
	b = appendFloat(appendStr(b, "eccentricity"), t.Eccentricity)
	b = appendFloat(appendStr(b, "inclination"), t.Inclination)
	b = appendFloat(appendStr(b, "raan"), t.RAAN)
	b = appendFloat(appendStr(b, "arg_perigee"), t.ArgPerigee)
	b = appendFloat(appendStr(b, "mean_anomaly"), t.MeanAnomaly)
	b = appendFloat(appendStr(b, "bstar"), t.BStar)
	b = appendUint(appendStr(b, "element_set"), uint64(t.ElementSet))
	b = appendUint(appendStr(b, "rev_number"), uint64(t.RevNumber))
	b = appendStr(appendStr(b, "source"), t.Source)
	if t.Name != "" {
		b = appendStr(appendStr(b, "name"), t.Name)
	}
	if t.Line1 != "" {
		b = appendStr(appendStr(b, "line1"), t.Line1)
	}
	if t.Line2 != "" {
		b = appendStr(appendStr(b, "line2"), t.Line2)
	}
	return b
}

func appendTles(b []byte, ts []Tle) []byte {
	if ts == nil {
		return append(b, 0xc0)
	}
	b = appendArrayLen(b, len(ts))
	for i := range ts {
		b = ts[i].AppendMsgpack(b)
	}
	return b
}

// AppendMsgpack appends r as Marshal encodes it.
func (r *TleGetReply) AppendMsgpack(b []byte) []byte {
	n := 2
	if r.Tle != nil {
		n++
	}
	if r.CommitTs != 0 {
		n++
	}
	b = appendMapLen(b, n)
	b = appendBool(appendStr(b, "found"), r.Found)
	if r.Tle != nil {
		b = r.Tle.AppendMsgpack(appendStr(b, "tle"))
	}
	if r.CommitTs != 0 {
		b = appendUint(appendStr(b, "commit_ts"), r.CommitTs)
	}
	return appendUint(appendStr(b, "as_of"), r.AsOf)
}

// AppendMsgpack appends r as Marshal encodes it.
func (r *TleScanReply) AppendMsgpack(b []byte) []byte {
	b = appendMapLen(b, 3)
	b = appendTles(appendStr(b, "tles"), r.Tles)
	b = appendBool(appendStr(b, "more"), r.More)
	return appendUint(appendStr(b, "as_of"), r.AsOf)
}

// AppendMsgpack appends r as Marshal encodes it.
func (r *TleSnapshotReply) AppendMsgpack(b []byte) []byte {
	n := 2
	if len(r.Missing) > 0 {
		n++
	}
	b = appendMapLen(b, n)
	b = appendUint(appendStr(b, "as_of"), r.AsOf)
	b = appendTles(appendStr(b, "tles"), r.Tles)
	if len(r.Missing) > 0 {
		b = appendArrayLen(appendStr(b, "missing"), len(r.Missing))
		for _, id := range r.Missing {
			b = appendUint(b, uint64(id))
		}
	}
	return b
}
