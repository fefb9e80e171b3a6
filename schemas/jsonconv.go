package schemas

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// MessageTypes maps the contract's message names (as used by
// `meridian encode --type`) to constructors.
var MessageTypes = map[string]func() any{
	"frame_batch":           func() any { return new(FrameBatch) },
	"command":               func() any { return new(Command) },
	"tle":                   func() any { return new(Tle) },
	"pipeline_stats":        func() any { return new(PipelineStats) },
	"cmdqueue_stats":        func() any { return new(CmdQueueStats) },
	"session_state":         func() any { return new(SessionState) },
	"source":                func() any { return new(Source) },
	"detection":             func() any { return new(Detection) },
	"tle_get_request":       func() any { return new(TleGetRequest) },
	"tle_put_request":       func() any { return new(TlePutRequest) },
	"tle_scan_request":      func() any { return new(TleScanRequest) },
	"tle_snapshot_request":  func() any { return new(TleSnapshotRequest) },
	"catalog_merge_request": func() any { return new(CatalogMergeRequest) },
}

// MessageTypeNames lists MessageTypes' keys, sorted.
func MessageTypeNames() []string {
	names := make([]string, 0, len(MessageTypes))
	for n := range MessageTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FromJSON converts a JSON document to the msgpack encoding of the named
// message, validating it on the way (so an operator's typo is caught before
// it is published). Binary fields ([]byte) are base64 in JSON.
func FromJSON(typ string, j []byte) ([]byte, error) {
	mk, ok := MessageTypes[typ]
	if !ok {
		return nil, fmt.Errorf("unknown message type %q (known: %s)", typ, strings.Join(MessageTypeNames(), ", "))
	}
	v := mk()
	dec := json.NewDecoder(strings.NewReader(string(j)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%w: %s from JSON: %v", ErrMalformed, typ, err)
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, typ, err)
		}
	}
	return Marshal(v)
}

// ToJSON renders any msgpack message as indented JSON without knowing its
// type: maps keep their keys, bin values that are valid UTF-8 text are
// shown as strings and others as {"base64": "..."}.
func ToJSON(b []byte) ([]byte, error) {
	if err := checkStructure(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var v any
	d := msgpack.NewDecoder(strings.NewReader(string(b)))
	d.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeMap() })
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return json.MarshalIndent(jsonable(v), "", "  ")
}

func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	case []byte:
		if utf8.Valid(x) && printable(x) {
			return string(x)
		}
		return map[string]string{"base64": base64.StdEncoding.EncodeToString(x)}
	}
	return v
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
