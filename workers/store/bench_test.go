package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/workers/store"
)

func runWorker(b *testing.B, bs *bus.Bus) *store.Worker {
	b.Helper()
	w := store.New(bustest.Conn(b, bs), store.Config{Dir: b.TempDir(), Logger: bustest.Discard})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-w.Started()
	return w
}

// benchWorker starts a store worker (default sync policy) and loads
// objects element sets through the catalog directly.
func benchWorker(b *testing.B, objects int) (*bus.Bus, *store.Worker) {
	b.Helper()
	bs := bustest.New(b, func(c *bus.Config) { c.Logger = bustest.Discard })
	w := runWorker(b, bs)
	ctx := context.Background()
	var ups []catalog.Update
	for id := uint32(1); id <= uint32(objects); id++ {
		t := tleOf(id, "18th-sds", 24001)
		ups = append(ups, catalog.Update{Source: "18th-sds", Rec: store.ToRecord(&t), Name: t.Name})
		if len(ups) == 1000 {
			if _, err := w.Catalog().Apply(ctx, ups); err != nil {
				b.Fatal(err)
			}
			ups = ups[:0]
		}
	}
	return bs, w
}

// requestLoad drives subject from a separate connection with
// GOMAXPROCS×par concurrent requesters and reports requests/s and latency
// percentiles.
func requestLoad(b *testing.B, url, subject string, par int, mkReq func(r *rand.Rand) []byte) {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(par)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		var mine []time.Duration
		for pb.Next() {
			data := mkReq(r)
			t0 := time.Now()
			m, err := nc.Request(subject, data, 5*time.Second)
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
			if len(m.Data) < 50 {
				b.Errorf("short reply %q", m.Data)
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/el.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

func getReq(r *rand.Rand) []byte {
	data, _ := schemas.Marshal(&schemas.TleGetRequest{NoradID: uint32(1 + r.IntN(10_000))})
	return data
}

// BenchmarkGetRequestReply measures oor.tle.get over a 10,000-object
// catalog from a separate connection: conc=1 is one requester (latency
// unloaded), conc=16 and conc=64 are that many requesters per core.
func BenchmarkGetRequestReply(b *testing.B) {
	bs, _ := benchWorker(b, 10_000)
	for _, par := range []int{1, 4, 8, 32} {
		b.Run(fmt.Sprintf("conc=%d", par), func(b *testing.B) { requestLoad(b, bs.URL, schemas.OORTleGet, par, getReq) })
	}
}

// BenchmarkBareMicroEcho is the anchor: a micro endpoint on the same
// embedded server that answers every request with a fixed 250-byte reply
// (about an oor.tle.get reply) without any work: NATS request-reply's own
// ceiling on this machine.
func BenchmarkBareMicroEcho(b *testing.B) {
	bs := bustest.New(b, func(c *bus.Config) { c.Logger = bustest.Discard })
	nc := bustest.Conn(b, bs)
	svc, err := micro.AddService(nc, micro.Config{Name: "echo", Version: "1.0.0"})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Stop()
	reply := make([]byte, 250)
	if err := svc.AddEndpoint("echo", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(reply) }), micro.WithEndpointSubject("bench.echo")); err != nil {
		b.Fatal(err)
	}
	for _, par := range []int{1, 4, 8, 32} {
		b.Run(fmt.Sprintf("conc=%d", par), func(b *testing.B) { requestLoad(b, bs.URL, "bench.echo", par, getReq) })
	}
}

// BenchmarkIngest measures TLE updates/s from the stream into the store,
// one update per message, each acked after its batch's group commit is
// fsynced: b.N updates are published first, then the worker starts and
// the drain is timed.
func BenchmarkIngest(b *testing.B) {
	bs := bustest.New(b, func(c *bus.Config) { c.Logger = bustest.Discard })
	js, _ := jetstream.New(bustest.Conn(b, bs))
	for i := 0; i < b.N; i++ {
		u := tleOf(uint32(1+i%200_000), catalog.DefaultSources[i%5].Name, 24001+float64(i/200_000))
		data, _ := schemas.Marshal(&u)
		if _, err := js.PublishAsync(schemas.TLESubject(u.Source), data); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	w := runWorker(b, bs)
	bustest.Eventually(b, 5*time.Minute, func() bool {
		x := w.Stats().Extra
		return x["updates_written"]+x["updates_unchanged"] >= uint64(b.N)
	}, "ingest did not finish")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "updates/s")
}

// BenchmarkSnapshot100 measures oor.tle.snapshot of 100 objects (one
// consistent read) over a 10,000-object catalog, request to reply.
func BenchmarkSnapshot100(b *testing.B) {
	bs, _ := benchWorker(b, 10_000)
	nc, err := nats.Connect(bs.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	ids := make([]uint32, 100)
	for i := range ids {
		ids[i] = uint32(1 + i*97)
	}
	data, _ := schemas.Marshal(&schemas.TleSnapshotRequest{NoradIDs: ids})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := nc.Request(schemas.OORTleSnapshot, data, 5*time.Second)
		if err != nil || len(m.Data) < 100*50 {
			b.Fatalf("snapshot: %v (%d bytes)", err, len(m.Data))
		}
	}
}
