package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/workers/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

// start runs a store worker on dir until the test ends (or stop is called).
func start(t *testing.T, b *bus.Bus, dir string) (w *store.Worker, stop func() error) {
	t.Helper()
	w = store.New(bustest.Conn(t, b), store.Config{Dir: dir, Logger: bustest.Logger(t), StatsInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Started():
	case err := <-done:
		cancel()
		t.Fatalf("store worker failed to start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("store worker did not start")
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("store worker: %v", err)
		}
	})
	return w, stop
}

func tleOf(id uint32, src string, epoch float64) schemas.Tle {
	return schemas.Tle{NoradID: id, IntlDesignator: "98067A", Epoch: epoch, MeanMotion: 15.5, Eccentricity: 0.0002,
		Inclination: 51.6, RAAN: 10, ArgPerigee: 20, MeanAnomaly: 30, BStar: 1e-5, ElementSet: 999, RevNumber: id, Source: src,
		Name: fmt.Sprint("OBJ ", id)}
}

func publish(t *testing.T, js jetstream.JetStream, u schemas.Tle) {
	t.Helper()
	data, err := schemas.Marshal(&u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), schemas.TLESubject(u.Source), data); err != nil {
		t.Fatal(err)
	}
}

func request[Rep any](t *testing.T, nc *nats.Conn, subject string, req any) (*Rep, error) {
	t.Helper()
	data, err := schemas.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nc.Request(subject, data, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		return nil, fmt.Errorf("%s: %s", code, m.Header.Get(micro.ErrorHeader))
	}
	rep := new(Rep)
	if err := schemas.Unmarshal(m.Data, rep); err != nil {
		t.Fatal(err)
	}
	return rep, nil
}

func must[T any](t *testing.T) func(v *T, err error) *T {
	return func(v *T, err error) *T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// waitIngested waits until the store consumer has acked everything in the
// TLE stream.
func waitIngested(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	waitIngestedWithin(t, js, 30*time.Second)
}

func waitIngestedWithin(t *testing.T, js jetstream.JetStream, d time.Duration) {
	t.Helper()
	bustest.Eventually(t, d, func() bool {
		c, err := js.Consumer(context.Background(), schemas.StreamTLE, "store")
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		s, err2 := js.Stream(context.Background(), schemas.StreamTLE)
		if err != nil || err2 != nil {
			return false
		}
		si, err := s.Info(context.Background())
		return err == nil && info.AckFloor.Stream == si.State.LastSeq && info.NumAckPending == 0
	}, "the store worker did not ack every update")
}

// The five providers publish concurrently; gets, scans, snapshots and the
// merge return what the merge rule says each object resolves to.
func TestFiveSourcesConcurrently(t *testing.T) {
	b := bustest.New(t)
	nc := bustest.Conn(t, b)
	js, _ := jetstream.New(nc)
	start(t, b, t.TempDir())
	const objects = 300
	want := map[uint32]schemas.Tle{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for si, src := range catalog.DefaultSources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := uint32(1); id <= objects; id++ {
				// Each object's epochs differ by source in a pattern, so
				// every source wins some objects; objects divisible by 7 tie
				// on epoch and go to the highest priority (18th-sds).
				epoch := 24001 + float64((int(id)+si*37)%5)
				if id%7 == 0 {
					epoch = 24100
				}
				u := tleOf(id, src.Name, epoch)
				publish(t, js, u)
				mu.Lock()
				if cur, ok := want[id]; !ok || epoch > cur.Epoch || (epoch == cur.Epoch && src.Priority > prio(cur.Source)) {
					want[id] = u
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	waitIngested(t, js)

	for id := uint32(1); id <= objects; id++ {
		rep := must[schemas.TleGetReply](t)(request[schemas.TleGetReply](t, nc, schemas.OORTleGet, &schemas.TleGetRequest{NoradID: id}))
		w := want[id]
		if !rep.Found || rep.Tle.Epoch != w.Epoch || rep.Tle.Source != w.Source || rep.Tle.Name != w.Name || rep.Tle.IntlDesignator != "98067A" {
			t.Fatalf("get %d = %+v, want epoch %v from %s", id, rep.Tle, w.Epoch, w.Source)
		}
	}
	scan := must[schemas.TleScanReply](t)(request[schemas.TleScanReply](t, nc, schemas.OORTleScan, &schemas.TleScanRequest{From: 100, To: 200, Limit: 50}))
	if len(scan.Tles) != 50 || !scan.More || scan.Tles[0].NoradID != 100 || scan.Tles[49].NoradID != 149 {
		t.Fatalf("scan page: %d rows, more=%v", len(scan.Tles), scan.More)
	}
	ids := []uint32{5, 77, 300, 9999}
	snap := must[schemas.TleSnapshotReply](t)(request[schemas.TleSnapshotReply](t, nc, schemas.OORTleSnapshot, &schemas.TleSnapshotRequest{NoradIDs: ids}))
	if len(snap.Tles) != 3 || len(snap.Missing) != 1 || snap.Missing[0] != 9999 || snap.Tles[1].Source != want[77].Source {
		t.Fatalf("snapshot = %+v", snap)
	}
	merge := must[schemas.CatalogMergeReply](t)(request[schemas.CatalogMergeReply](t, nc, schemas.OORCatalogMerge, &schemas.CatalogMergeRequest{Samples: 10}))
	if merge.Objects != objects || merge.RowsIn != objects*5 || merge.Conflicts != objects || len(merge.Samples) != 10 {
		t.Fatalf("merge = %+v", merge)
	}
	wins := 0
	for src, n := range merge.BySource {
		wins += n
		if n == 0 {
			t.Errorf("source %s won nothing", src)
		}
	}
	for _, s := range merge.Samples {
		if s.WinnerSource != want[s.NoradID].Source || s.Candidates != 5 {
			t.Fatalf("merge sample %+v, want winner %s", s, want[s.NoradID].Source)
		}
	}
	if wins != objects || len(merge.BySource) != 5 {
		t.Fatalf("merge winners by source %v", merge.BySource)
	}
	st := must[schemas.StoreStats](t)(request[schemas.StoreStats](t, nc, schemas.OORStats, struct{}{}))
	if st.Objects != objects || st.Commits == 0 || st.Extra["updates_written"] != objects*5 {
		t.Fatalf("stats = %+v", st)
	}
	// The KV mirror reaches the same numbers.
	kv, _ := js.KeyValue(context.Background(), schemas.BucketStats)
	bustest.Eventually(t, 10*time.Second, func() bool {
		var kst schemas.StoreStats
		found, err := bus.KVGet(context.Background(), kv, schemas.KeyStoreStats, &kst)
		return found && err == nil && kst.Objects == objects
	}, "KV store stats")
}

func prio(src string) uint8 {
	for _, s := range catalog.DefaultSources {
		if s.Name == src {
			return s.Priority
		}
	}
	return 0
}

// A snapshot taken before a burst of updates keeps answering the old
// versions, through as_of.
func TestSnapshotBeforeBurst(t *testing.T) {
	b := bustest.New(t)
	nc := bustest.Conn(t, b)
	js, _ := jetstream.New(nc)
	start(t, b, t.TempDir())
	for id := uint32(1); id <= 100; id++ {
		publish(t, js, tleOf(id, "leolabs", 24001))
	}
	waitIngested(t, js)
	ids := make([]uint32, 100)
	for i := range ids {
		ids[i] = uint32(i + 1)
	}
	before := must[schemas.TleSnapshotReply](t)(request[schemas.TleSnapshotReply](t, nc, schemas.OORTleSnapshot, &schemas.TleSnapshotRequest{NoradIDs: ids}))
	for id := uint32(1); id <= 100; id++ {
		publish(t, js, tleOf(id, "numerica", 24050))
	}
	waitIngested(t, js)
	at := before.AsOf
	old := must[schemas.TleSnapshotReply](t)(request[schemas.TleSnapshotReply](t, nc, schemas.OORTleSnapshot, &schemas.TleSnapshotRequest{NoradIDs: ids, AsOf: &at}))
	now := must[schemas.TleSnapshotReply](t)(request[schemas.TleSnapshotReply](t, nc, schemas.OORTleSnapshot, &schemas.TleSnapshotRequest{NoradIDs: ids}))
	if len(old.Tles) != 100 || len(now.Tles) != 100 || old.AsOf != at {
		t.Fatalf("snapshots: %d old, %d now rows", len(old.Tles), len(now.Tles))
	}
	for i := range ids {
		if old.Tles[i].Epoch != 24001 || old.Tles[i].Source != "leolabs" || now.Tles[i].Epoch != 24050 || now.Tles[i].Source != "numerica" {
			t.Fatalf("object %d: old %v/%s now %v/%s", ids[i], old.Tles[i].Epoch, old.Tles[i].Source, now.Tles[i].Epoch, now.Tles[i].Source)
		}
	}
	get := must[schemas.TleGetReply](t)(request[schemas.TleGetReply](t, nc, schemas.OORTleGet, &schemas.TleGetRequest{NoradID: 42, AsOf: &at}))
	if !get.Found || get.Tle.Source != "leolabs" || get.CommitTs > at {
		t.Fatalf("get as_of = %+v", get)
	}
}

// Bad requests get clear micro errors and bad updates are terminated and
// counted; JSON works for the nats CLI; the worker keeps serving.
func TestRefusesBadInput(t *testing.T) {
	b := bustest.New(t)
	nc := bustest.Conn(t, b)
	js, _ := jetstream.New(nc)
	w, _ := start(t, b, t.TempDir())

	for _, tc := range []struct {
		subject string
		data    []byte
		json    bool
		code    string
	}{
		{schemas.OORTleGet, []byte{0xc1}, false, "400"},
		{schemas.OORTleGet, []byte(`{"norad_id": 0}`), true, "400"},
		{schemas.OORTleScan, []byte(`{"from": 9, "to": 1}`), true, "400"},
		{schemas.OORTleScan, []byte(`{"from": 1, "to": 9, "limit": 99999}`), true, "400"},
		{schemas.OORTlePut, []byte(`{"tle": {"norad_id": 5, "source": "nobody"}}`), true, "400"},
		{schemas.OORTlePut, []byte(`{"tle": {"norad_id": 5, "source": "leolabs", "eccentricity": 2}}`), true, "400"},
		{schemas.OORCatalogMerge, []byte(`{"samples": -1}`), true, "400"},
	} {
		m := nats.NewMsg(tc.subject)
		m.Data = tc.data
		if tc.json {
			m.Header.Set("Content-Type", "application/json")
		}
		rep, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Header.Get(micro.ErrorCodeHeader); got != tc.code || rep.Header.Get(micro.ErrorHeader) == "" {
			t.Errorf("%s %s: code %q (%q), want %s", tc.subject, tc.data, got, rep.Header.Get(micro.ErrorHeader), tc.code)
		}
	}

	// JSON put then get, as an operator would with the nats CLI.
	m := nats.NewMsg(schemas.OORTlePut)
	m.Header.Set("Content-Type", "application/json")
	m.Data, _ = json.Marshal(schemas.TlePutRequest{Tle: tleOf(25544, "esa-sst", 24001.5)})
	rep, err := nc.RequestMsg(m, 5*time.Second)
	if err != nil || rep.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("JSON put: %v %v", err, rep.Header)
	}
	m = nats.NewMsg(schemas.OORTleGet)
	m.Header.Set("Content-Type", "application/json")
	m.Data = []byte(`{"norad_id": 25544}`)
	rep, err = nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got schemas.TleGetReply
	if err := json.Unmarshal(rep.Data, &got); err != nil || !got.Found || got.Tle.Epoch != 24001.5 {
		t.Fatalf("JSON get = %s (%v)", rep.Data, err)
	}

	// Bad updates on the stream: garbage, out of range, unknown source.
	for _, p := range []struct{ subj, data string }{
		{schemas.TLESubject("leolabs"), "\xc1garbage"},
		{schemas.TLESubject("nobody"), ""},
	} {
		data := []byte(p.data)
		if data == nil || len(data) == 0 {
			u := tleOf(7, "nobody", 24001)
			data, _ = schemas.Marshal(&u)
		}
		if _, err := js.Publish(context.Background(), p.subj, data); err != nil {
			t.Fatal(err)
		}
	}
	bad := tleOf(8, "leolabs", 24001)
	bad.Inclination = 500
	publish(t, js, bad)
	publish(t, js, tleOf(9, "leolabs", 24001))
	waitIngested(t, js)
	if n := bus.MalformedCount("store"); n < 3 {
		t.Fatalf("malformed count = %v, want 3", n)
	}
	if st := w.Stats(); st.Objects != 2 || st.Extra["updates_refused"] != 3 {
		t.Fatalf("stats after bad input: %+v", st)
	}
}

// A second worker on the same directory is refused.
func TestDirectoryLock(t *testing.T) {
	b := bustest.New(t)
	dir := t.TempDir()
	start(t, b, dir)
	w := store.New(bustest.Conn(t, b), store.Config{Dir: dir, Logger: bustest.Discard})
	if err := w.Run(context.Background()); !errors.Is(err, bus.ErrDataDirLocked) {
		t.Fatalf("second worker: err = %v", err)
	}
}

// Stopping the worker mid-ingest and starting it again on the same
// directory loses no update and applies none twice.
func TestRestartMidIngest(t *testing.T) {
	b := bustest.New(t)
	nc := bustest.Conn(t, b)
	js, _ := jetstream.New(nc)
	dir := t.TempDir()
	_, stop := start(t, b, dir)
	const n = 3000
	go func() {
		for id := uint32(1); id <= n; id++ {
			u := tleOf(id, "exoanalytic", 24001)
			data, _ := schemas.Marshal(&u)
			if _, err := js.Publish(context.Background(), schemas.TLESubject(u.Source), data); err != nil {
				return
			}
		}
	}()
	bustest.Eventually(t, 20*time.Second, func() bool {
		c, err := js.Consumer(context.Background(), schemas.StreamTLE, "store")
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.AckFloor.Stream > 200
	}, "ingest did not start")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	w2, _ := start(t, b, dir)
	bustest.Eventually(t, 30*time.Second, func() bool {
		s, _ := js.Stream(context.Background(), schemas.StreamTLE)
		si, err := s.Info(context.Background())
		return err == nil && si.State.Msgs == n
	}, "publisher did not finish")
	// Well within AckWait (30 s): a clean stop hands back what it had
	// taken, it does not leave it to time out.
	waitIngestedWithin(t, js, 15*time.Second)
	if st := w2.Stats(); st.Objects != n {
		t.Fatalf("objects after restart = %d, want %d", st.Objects, n)
	}
	snap, err := w2.Catalog().Snapshot(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if c, err := snap.Count(context.Background()); err != nil || c != n {
		t.Fatalf("catalog holds %d objects (%v), want %d", c, err, n)
	}
}
