package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrMalformed wraps every failure to decode a bus message: bad msgpack,
// wrong types, trailing bytes, or a message that fails validation.
var ErrMalformed = errors.New("malformed message")

var encPool = sync.Pool{New: func() any {
	e := msgpack.NewEncoder(nil)
	e.UseCompactInts(true)
	e.SetCustomStructTag("msgpack")
	e.SetSortMapKeys(true) // deterministic bytes for maps (golden files, dedup ids)
	return e
}}

// Marshal encodes v as a msgpack map with compact integers.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	e := encPool.Get().(*msgpack.Encoder)
	e.ResetWriter(&buf) // ResetWriter keeps UseCompactInts; Reset would clear it.
	err := e.Encode(v)
	e.ResetWriter(nil)
	encPool.Put(e)
	if err != nil {
		return nil, fmt.Errorf("schemas: encode %T: %w", v, err)
	}
	return buf.Bytes(), nil
}

type decoder struct {
	r bytes.Reader
	d *msgpack.Decoder
}

var decPool = sync.Pool{New: func() any {
	d := &decoder{d: msgpack.NewDecoder(nil)}
	return d
}}

// Unmarshal decodes a msgpack message into v. Trailing bytes after the
// message are an error (msgpack's own Unmarshal ignores them silently), and
// so is a container declaring more elements than the message could hold
// (see checkStructure). Every error wraps ErrMalformed.
func Unmarshal(data []byte, v any) error {
	if err := checkStructure(data); err != nil {
		return fmt.Errorf("%w: %T: %v", ErrMalformed, v, err)
	}
	d := decPool.Get().(*decoder)
	d.r.Reset(data)
	d.d.ResetReader(&d.r)
	err := d.d.Decode(v)
	left := d.r.Len()
	d.r.Reset(nil)
	decPool.Put(d)
	if err != nil {
		return fmt.Errorf("%w: %T: %v", ErrMalformed, v, err)
	}
	if left != 0 {
		return fmt.Errorf("%w: %T: %d trailing bytes", ErrMalformed, v, left)
	}
	return nil
}

// Validator is implemented by messages with invariants beyond their types.
type Validator interface{ Validate() error }

// Decode unmarshals data into v and, when v is a Validator, validates it.
// Validation failures wrap ErrMalformed too.
func Decode(data []byte, v any) error {
	if err := Unmarshal(data, v); err != nil {
		return err
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	return nil
}
