package store

import (
	"context"
	"testing"

	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/wal"
)

// BenchmarkGetHandler is oor.tle.get's work without NATS: decode the
// request, read a snapshot, encode the reply.
func BenchmarkGetHandler(b *testing.B) {
	ctx := context.Background()
	db, err := mvcc.Open(ctx, b.TempDir(), &mvcc.Options{LSM: lsm.Options{Sync: wal.SyncNone}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cat, _ := catalog.New(db, nil)
	var ups []catalog.Update
	for id := uint32(1); id <= 10_000; id++ {
		t := schemas.Tle{NoradID: id, IntlDesignator: "98067A", Epoch: 24001, MeanMotion: 15, Name: "OBJ"}
		ups = append(ups, catalog.Update{Source: "leolabs", Rec: ToRecord(&t), Name: t.Name})
	}
	if _, err := cat.Apply(ctx, ups); err != nil {
		b.Fatal(err)
	}
	w := New(nil, Config{Dir: "unused"})
	w.cat = cat
	reqs := make([][]byte, 1024)
	for i := range reqs {
		reqs[i], _ = schemas.Marshal(&schemas.TleGetRequest{NoradID: uint32(1 + i*9)})
	}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var req schemas.TleGetRequest
		if err := schemas.Decode(reqs[i%len(reqs)], &req); err != nil {
			b.Fatal(err)
		}
		rep, err := w.get(ctx, &req)
		if err != nil || !rep.Found {
			b.Fatal(err)
		}
		buf = rep.AppendMsgpack(buf[:0]) // what bus.AddEndpoint sends

	}
}
