package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc/pool"

	"github.com/meridian-ops/meridian/schemas"
)

// ProvisionOptions tune the contract's streams for a deployment. The zero
// value suits a single embedded node.
type ProvisionOptions struct {
	Replicas  int           // 1 embedded; 3 on a cluster
	Retention time.Duration // how long raw and processed telemetry is kept for replay; default 24h
	// WorkCapacity is the processor hand-off's capacity in messages per
	// lane (TLM_WORK MaxMsgsPerSubject with DiscardNew per subject; the
	// routine lane tlm.work and the emergency lane tlm.work.emergency);
	// default 64, the course's figure.
	WorkCapacity int64
}

func (o ProvisionOptions) withDefaults() ProvisionOptions {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Retention <= 0 {
		o.Retention = 24 * time.Hour
	}
	if o.WorkCapacity <= 0 {
		o.WorkCapacity = 64
	}
	return o
}

// Streams returns the contract's stream configurations.
func Streams(o ProvisionOptions) []jetstream.StreamConfig {
	o = o.withDefaults()
	dup := 2 * time.Minute
	s := func(name, desc string, subjects ...string) jetstream.StreamConfig {
		return jetstream.StreamConfig{Name: name, Description: desc, Subjects: subjects,
			Storage: jetstream.FileStorage, Replicas: o.Replicas, Retention: jetstream.LimitsPolicy,
			Discard: jetstream.DiscardOld, MaxAge: o.Retention, Duplicates: min(dup, o.Retention)}
	}
	ingest := s(schemas.StreamIngest, "raw frame batches from the gateway, kept for replay", schemas.IngestAll)
	replay := s(schemas.StreamReplay, "frames re-played from TLM_INGEST, taken by the router like live ones", schemas.ReplayAll)
	replay.MaxAge = time.Hour
	routed := s(schemas.StreamRouted, "router output by priority, drained by the fan-in", schemas.RoutedAll)
	routed.Retention = jetstream.WorkQueuePolicy
	// Work not yet done is never aged out: --retention is how long telemetry
	// is kept for replay, and a backlog older than it is still owed.
	routed.MaxAge = 0
	rejected := s(schemas.StreamRejected, "frames from unregistered sources, kept aside for inspection", schemas.RejectedAll)
	rejected.MaxAge = 7 * 24 * time.Hour
	work := s(schemas.StreamWork, "bounded hand-off from the fan-in to the processor", schemas.WorkSubject, schemas.WorkEmergency)
	work.Retention = jetstream.WorkQueuePolicy
	work.MaxAge = 0 // as for routed
	// Two lanes of WorkCapacity each: a routine lane full of backlog never
	// keeps an emergency batch out of the hand-off.
	work.MaxMsgsPerSubject = o.WorkCapacity
	work.MaxMsgs = 2 * o.WorkCapacity
	work.Discard = jetstream.DiscardNew // full means "wait", never "drop the oldest"
	work.DiscardNewPerSubject = true
	processed := s(schemas.StreamProcessed, "deduplicated, time-ordered frames", schemas.ProcessedAll)
	cmd := s(schemas.StreamCmd, "telecommands submitted for dispatch", schemas.SubmitAll)
	cmd.Retention = jetstream.WorkQueuePolicy
	cmd.MaxAge = 7 * 24 * time.Hour
	dispatch := s(schemas.StreamDispatch, "telecommands in dispatch order, held until the station is connected", schemas.DispatchAll)
	dispatch.Retention = jetstream.WorkQueuePolicy
	dispatch.MaxAge = 7 * 24 * time.Hour
	sda := s(schemas.StreamSDA, "UDP radar/optical detections", schemas.DetectionAll)
	tle := s(schemas.StreamTLE, "TLE updates from the catalog sources", schemas.TLEAll)
	tle.MaxAge = 30 * 24 * time.Hour
	return []jetstream.StreamConfig{ingest, replay, routed, rejected, work, processed, cmd, dispatch, sda, tle}
}

// Buckets returns the contract's KV bucket configurations.
func Buckets(o ProvisionOptions) []jetstream.KeyValueConfig {
	o = o.withDefaults()
	return []jetstream.KeyValueConfig{
		{Bucket: schemas.BucketStats, Description: "latest pipeline, command queue and store statistics",
			History: 1, Storage: jetstream.FileStorage, Replicas: o.Replicas},
		{Bucket: schemas.BucketSessions, Description: "ground-station session state by station",
			History: 8, Storage: jetstream.FileStorage, Replicas: o.Replicas},
		{Bucket: schemas.BucketSources, Description: "the router's source registry",
			History: 1, Storage: jetstream.FileStorage, Replicas: o.Replicas},
	}
}

// Provision creates or updates every stream and KV bucket of the contract,
// concurrently (each is one JetStream API round trip with file creation on
// the server). It is idempotent; when two processes race, the loser's
// "already exists" is retried as an update.
func Provision(ctx context.Context, js jetstream.JetStream, o ProvisionOptions) error {
	p := pool.New().WithErrors().WithContext(ctx)
	for _, sc := range Streams(o) {
		p.Go(func(ctx context.Context) error {
			if err := retry(ctx, func() error { _, err := js.CreateOrUpdateStream(ctx, sc); return err }); err != nil {
				return fmt.Errorf("bus: provision stream %s: %w", sc.Name, err)
			}
			return nil
		})
	}
	for _, kc := range Buckets(o) {
		p.Go(func(ctx context.Context) error {
			if err := retry(ctx, func() error { _, err := js.CreateOrUpdateKeyValue(ctx, kc); return err }); err != nil {
				return fmt.Errorf("bus: provision KV %s: %w", kc.Bucket, err)
			}
			return nil
		})
	}
	return p.Wait()
}

// EnsureConsumer creates or updates a durable consumer. Two instances of a
// worker calling it with the same config share the durable (competing
// consumers), which is how workers scale out.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := retry(ctx, func() error {
		var err error
		c, err = js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}

// retry runs f up to 5 times: concurrent create-or-update calls can see
// transient "already in use" or timeout errors while another process's
// create is in flight.
func retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := range 5 {
		if err = f(); err == nil {
			return nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
	return err
}

// MissingStreams lists the contract's streams the server does not have.
func MissingStreams(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	var missing []string
	for _, sc := range Streams(ProvisionOptions{}) {
		if _, err := js.Stream(ctx, sc.Name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				missing = append(missing, sc.Name)
				continue
			}
			return nil, err
		}
	}
	return missing, nil
}
