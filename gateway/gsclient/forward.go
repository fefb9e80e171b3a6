package gsclient

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

// maxBatchBytes keeps a FrameBatch well under NATS's default 1 MiB
// message limit: a batch is flushed once its payloads pass this size.
const maxBatchBytes = 512 << 10

// forwarder is the publishing stage behind the hand-off: it batches a
// station's frames into FrameBatches on tlm.ingest.<station>. A batch is
// flushed when it holds BatchSize frames or maxBatchBytes of payload, when
// Linger passes, or at once when an emergency frame arrives; emergency
// frames go first, in a batch of their own on the station's emergency lane
// (tlm.ingest.emergency.<station>), which the router takes before any
// routine backlog. Each batch
// carries a Nats-Msg-Id unique to this run, so the Publisher's retries are
// stored once.
type forwarder struct {
	station string
	subject string
	in      <-chan schemas.Frame
	pub     *bus.Publisher
	batch   int
	linger  time.Duration
	idBase  string
	n       uint64
	log     *slog.Logger
}

func newForwarder(cfg *Config, in <-chan schemas.Frame, pub *bus.Publisher, runID int64, log *slog.Logger) *forwarder {
	return &forwarder{station: cfg.Station, subject: schemas.IngestSubject(cfg.Station), in: in, pub: pub,
		batch: cfg.BatchSize, linger: cfg.Linger, log: log,
		idBase: "gsc-" + schemas.Token(cfg.Station) + "-" + strconv.FormatInt(runID, 36) + "-"}
}

// run forwards until in is closed and drained. ctx bounds publishing (it
// should outlive the session's context by the shutdown deadline).
func (f *forwarder) run(ctx context.Context) {
	frames := make([]schemas.Frame, 0, f.batch)
	for {
		first, ok := <-f.in
		if !ok {
			return
		}
		frames = append(frames[:0], first)
		closed := false
		if !first.Emergency() {
			frames, closed = f.collect(frames, len(first.Payload))
		}
		f.flush(ctx, frames)
		clear(frames) // drop payload references until the next batch
		if closed {
			return
		}
	}
}

// collect adds frames to a started batch until a flush condition; closed
// reports that the hand-off was closed.
func (f *forwarder) collect(frames []schemas.Frame, size int) ([]schemas.Frame, bool) {
	t := time.NewTimer(f.linger)
	defer t.Stop()
	for len(frames) < f.batch && size < maxBatchBytes {
		select {
		case fr, ok := <-f.in:
			if !ok {
				return frames, true
			}
			frames = append(frames, fr)
			size += len(fr.Payload)
			if fr.Emergency() {
				return frames, false
			}
		case <-t.C:
			return frames, false
		}
	}
	return frames, false
}

func (f *forwarder) flush(ctx context.Context, frames []schemas.Frame) {
	var emergency, routine []schemas.Frame
	for i := range frames {
		if frames[i].Emergency() {
			if emergency == nil { // rare: only then split
				routine = append(make([]schemas.Frame, 0, len(frames)), frames[:i]...)
			}
			emergency = append(emergency, frames[i])
		} else if emergency != nil {
			routine = append(routine, frames[i])
		}
	}
	if emergency == nil {
		f.publish(ctx, f.subject, frames)
		return
	}
	f.publish(ctx, schemas.IngestEmergencySubject(f.station), emergency)
	if len(routine) > 0 {
		f.publish(ctx, f.subject, routine)
	}
}

func (f *forwarder) publish(ctx context.Context, subject string, frames []schemas.Frame) {
	data := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: f.station, Frames: frames})
	f.n++
	msg := bus.NewMsg(subject, data, f.idBase+strconv.FormatUint(f.n, 10))
	count := len(frames)
	err := f.pub.PublishAsync(ctx, msg, func(_ *jetstream.PubAck, err error) {
		if err != nil {
			batchesTotal.WithLabelValues("failed").Inc()
			f.log.Error("frame batch lost", "station", f.station, "frames", count, "err", err)
			return
		}
		batchesTotal.WithLabelValues("ok").Inc()
	})
	if err != nil {
		batchesTotal.WithLabelValues("failed").Inc()
		f.log.Error("frame batch not published", "station", f.station, "frames", count, "err", err)
	}
}
