// Package replay re-publishes raw telemetry from TLM_INGEST into the
// pipeline as archived_replay frames: `meridian replay --since T`.
//
// It reads with an ordered, ephemeral consumer from a start time (no
// durable state, nothing acked in TLM_INGEST), optionally one station's
// subject, up to Until or to what the stream held when the replay began,
// and publishes each batch to tlm.replay.replay-<source> — never back into
// TLM_INGEST — where the router takes it like a live source. Each replay
// source is registered in KV meridian_sources first (kind
// archived_replay). With Speed 1 (1x) the original spacing between
// batches is kept; N speeds it up N times; 0 is as fast as possible.
//
// Caveat. Frames keep their (satellite_id, sequence); the processor drops
// any it still remembers (its recent-key window), so replaying what was
// just processed yields duplicates, by design.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

// Config says what to replay.
type Config struct {
	Since   time.Time // required
	Until   time.Time // zero: up to the stream's end when the replay starts
	Station string    // empty: every station
	Speed   float64   // 0: as fast as possible; 1: original spacing; N: N times faster
	Logger  *slog.Logger
	// Progress, when set, is told the batches and frames replayed so far.
	Progress func(batches, frames int)
}

// Result counts what was replayed.
type Result struct{ Batches, Frames int }

// ErrNothing is returned when the window holds no telemetry.
var ErrNothing = errors.New("replay: no telemetry in that window")

// Run replays and returns when done (or ctx ends).
func Run(ctx context.Context, nc *nats.Conn, cfg Config) (Result, error) {
	var res Result
	if cfg.Since.IsZero() {
		return res, errors.New("replay: a start time is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	js, err := bus.NewJetStream(nc)
	if err != nil {
		return res, err
	}
	stream, err := js.Stream(ctx, schemas.StreamIngest)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	last := info.State.LastSeq
	filter := []string{schemas.IngestAll}
	if cfg.Station != "" {
		filter = schemas.IngestSubjects(cfg.Station) // routine and emergency lanes
	}
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filter,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &cfg.Since})
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	sources, err := js.KeyValue(ctx, schemas.BucketSources)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	pub := bus.NewPublisher(js, 64, cfg.Logger)
	defer pub.Close(context.WithoutCancel(ctx))
	registered := map[string]bool{}
	run := nuid.Next() // message ids: retries within a run dedupe, separate runs do not
	var firstAt time.Time
	began := time.Now()
	for {
		m, err := oc.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
				break // nothing more in the window
			}
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, fmt.Errorf("replay: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return res, fmt.Errorf("replay: %w", err)
		}
		if md.Sequence.Stream > last || !cfg.Until.IsZero() && md.Timestamp.After(cfg.Until) {
			break
		}
		if cfg.Speed > 0 { // keep the original spacing, scaled
			if firstAt.IsZero() {
				firstAt = md.Timestamp
			}
			due := began.Add(time.Duration(float64(md.Timestamp.Sub(firstAt)) / cfg.Speed))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-ctx.Done():
					return res, ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		var b schemas.FrameBatch
		if err := schemas.Decode(m.Data(), &b); err != nil {
			cfg.Logger.Warn("replay: skipping a malformed batch", "seq", md.Sequence.Stream, "err", err)
			continue
		}
		src := "replay-" + b.StationID
		for i := range b.Frames {
			f := &b.Frames[i]
			if f.SourceID != "" {
				src = "replay-" + f.SourceID
			}
			f.SourceKind, f.SourceID = schemas.KindArchivedReplay, src
		}
		if !registered[src] {
			if _, err := bus.KVPut(ctx, sources, schemas.KVKey(src),
				&schemas.Source{SourceID: src, Kind: schemas.KindArchivedReplay, StationID: b.StationID, RegisteredAtMs: time.Now().UnixMilli()}); err != nil {
				return res, fmt.Errorf("replay: register %s: %w", src, err)
			}
			registered[src] = true
		}
		msg := bus.NewMsg(schemas.ReplaySubject(src), schemas.AppendFrameBatch(nil, &b), "replay:"+run+":"+strconv.FormatUint(md.Sequence.Stream, 10))
		if _, err := pub.Publish(ctx, msg); err != nil {
			return res, fmt.Errorf("replay: publish: %w", err)
		}
		res.Batches++
		res.Frames += len(b.Frames)
		if cfg.Progress != nil {
			cfg.Progress(res.Batches, res.Frames)
		}
	}
	if res.Batches == 0 {
		return res, ErrNothing
	}
	return res, nil
}
