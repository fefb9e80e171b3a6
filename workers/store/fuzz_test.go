package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/wal"
)

// FuzzRequests feeds arbitrary bytes to every oor endpoint's decoder (msgpack
// and JSON) and, when they decode and validate, to its handler on a real
// catalog: no panic, and every error is a bad request or a clean miss.
func FuzzRequests(f *testing.F) {
	seed := func(v any) {
		b, _ := schemas.Marshal(v)
		f.Add(uint8(0), b)
		j, _ := json.Marshal(v)
		f.Add(uint8(1), j)
	}
	at := uint64(1)
	seed(&schemas.TleGetRequest{NoradID: 25544})
	seed(&schemas.TleGetRequest{NoradID: 7, AsOf: &at})
	seed(&schemas.TleScanRequest{From: 1, To: 100, Limit: 3})
	seed(&schemas.TleSnapshotRequest{NoradIDs: []uint32{1, 2, 3}})
	seed(&schemas.TlePutRequest{Tle: schemas.Tle{NoradID: 9, Source: "leolabs", Epoch: 24001, MeanMotion: 15}})
	seed(&schemas.CatalogMergeRequest{Samples: 2})
	f.Add(uint8(2), []byte{0x80})
	f.Add(uint8(3), []byte(`{"from": 4294967295, "to": 4294967295}`))

	ctx := context.Background()
	db, err := mvcc.Open(ctx, f.TempDir(), &mvcc.Options{LSM: lsm.Options{Sync: wal.SyncNone}})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	cat, err := catalog.New(db, nil)
	if err != nil {
		f.Fatal(err)
	}
	w := New(nil, Config{Dir: "unused"})
	w.cat = cat
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		asJSON := kind&1 == 1
		var err error
		switch kind >> 1 % 5 {
		case 0:
			err = call(data, asJSON, w.get)
		case 1:
			err = call(data, asJSON, w.scan)
		case 2:
			err = call(data, asJSON, w.snapshot)
		case 3:
			err = call(data, asJSON, w.put)
		case 4:
			err = call(data, asJSON, w.merge)
		}
		if err != nil && !errors.Is(err, bus.ErrBadRequest) && !errors.Is(err, schemas.ErrMalformed) && !isValidation(err) {
			t.Fatalf("request %x: unexpected error %v", data, err)
		}
	})
}

// call decodes like bus.AddEndpoint and runs h.
func call[Req, Rep any](data []byte, asJSON bool, h func(context.Context, *Req) (*Rep, error)) error {
	req := new(Req)
	var err error
	if asJSON {
		if err = json.Unmarshal(data, req); err == nil {
			if v, ok := any(req).(schemas.Validator); ok {
				err = v.Validate()
			}
		}
		if err != nil {
			return errValidation{err}
		}
	} else if err = schemas.Decode(data, req); err != nil {
		return err
	}
	_, err = h(context.Background(), req)
	return err
}

type errValidation struct{ error }

func isValidation(err error) bool {
	var v errValidation
	return errors.As(err, &v) || errors.Is(err, schemas.ErrNoNoradID) || errors.Is(err, schemas.ErrTleOutOfRange) ||
		errors.Is(err, schemas.ErrBadRange) || errors.Is(err, schemas.ErrLimitTooLarge) || errors.Is(err, schemas.ErrTooManyIDs)
}
