package cmdqueue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/cmdqueue"
)

// BenchmarkDecodeSubmit is the worker's per-message decode and validation.
func BenchmarkDecodeSubmit(b *testing.B) {
	c := schemas.Command{ID: "0123456789abcdefghijkl", StationID: "gs-7", Kind: schemas.CmdRepoint,
		Azimuth: f64p(180), Elevation: f64p(45), IssuedAtNs: time.Now().UnixNano()}
	data, err := schemas.Marshal(&c)
	if err != nil {
		b.Fatal(err)
	}
	subject := schemas.SubmitSubject("gs-7")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := cmdqueue.DecodeSubmit(subject, data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkSubmitToDispatch is end-to-end throughput on an embedded NATS
// server: b.N commands published asynchronously to cmd.submit.<station>,
// until the worker has stored all their dispatches on CMD_DISPATCH.
func BenchmarkSubmitToDispatch(b *testing.B) {
	bs := bustest.New(b)
	w, _ := startWorker(b, bs, cmdqueue.Config{Logger: bustest.Discard, StatsInterval: time.Second})
	<-w.Started()
	js, err := bus.NewJetStream(bustest.Conn(b, bs))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		c := schemas.Command{ID: fmt.Sprintf("b-%d", i), StationID: fmt.Sprintf("gs-%d", i%12), Kind: schemas.CmdStatusRequest, IssuedAtNs: int64(i)}
		data, _ := schemas.Marshal(&c)
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: schemas.SubmitSubject(c.StationID), Data: data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{c.ID}}}); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for w.Counters().Stored < uint64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("stored %d of %d", w.Counters().Stored, b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commands/s")
}
