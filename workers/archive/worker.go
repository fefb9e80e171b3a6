package archive

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

var archivedTotal = promauto.NewCounter(prometheus.CounterOpts{
	Name: "meridian_archive_frames_total", Help: "Frames appended to the archive and fsynced."})

// Config configures the archive worker.
type Config struct {
	Dir     string // segment directory; required
	Durable string // default "archive"
	Logger  *slog.Logger
}

// Worker is the durable consumer of TLM_PROCESSED that fills the archive.
type Worker struct {
	cfg Config
	nc  *nats.Conn
	log *slog.Logger
	arc *Archive
}

// NewWorker opens the archive in cfg.Dir.
func NewWorker(nc *nats.Conn, cfg Config) (*Worker, error) {
	if cfg.Durable == "" {
		cfg.Durable = "archive"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a, err := Open(cfg.Dir, false)
	if err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, nc: nc, log: cfg.Logger.With("worker", "archive"), arc: a}, nil
}

// Archive is the worker's archive (for queries in the same process).
func (w *Worker) Archive() *Archive { return w.arc }

// Run archives until ctx ends, then closes the archive.
func (w *Worker) Run(ctx context.Context) error {
	defer w.arc.Close()
	js, err := bus.NewJetStream(w.nc)
	if err != nil {
		return err
	}
	cons, err := bus.EnsureConsumer(ctx, js, schemas.StreamProcessed, jetstream.ConsumerConfig{Durable: w.cfg.Durable,
		Description: "archive: every processed frame to disk", AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 256, AckWait: 30 * time.Second})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w.log.Info("archive open", "dir", w.cfg.Dir, "frames", w.arc.Count())
	return bus.Consume(ctx, cons, w.cfg.Durable, func(_ context.Context, _ jetstream.Msg, b *schemas.FrameBatch) error {
		n, err := w.arc.Append(b.Frames)
		archivedTotal.Add(float64(n))
		return err // a failed append naks: the batch comes back once the archive works again
	}, bus.ConsumeOptions{Logger: w.log, PullMaxMessages: 64})
}
