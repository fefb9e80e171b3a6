package archive

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

var (
	archivedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "meridian_archive_frames_total", Help: "Frames appended to the archive and fsynced."})
	writeErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_archive_write_errors_total",
		Help: "Batches the archive failed to write (their messages are redelivered), by cause: no_space (ENOSPC, the disk is full) or io."},
		[]string{"cause"})
)

func init() {
	// Exposed at zero from the start, so an alert on the rate sees a series.
	writeErrors.WithLabelValues("no_space")
	writeErrors.WithLabelValues("io")
}

// Config configures the archive worker.
type Config struct {
	Dir     string // segment directory; required
	Durable string // default "archive"
	Logger  *slog.Logger
	FS      FS // default OSFS (tests pass a size-limited one)
}

// Worker is the durable consumer of TLM_PROCESSED that fills the archive.
type Worker struct {
	cfg Config
	nc  *nats.Conn
	log *slog.Logger
	arc *Archive

	lastErrLog time.Time // handlers run one at a time: no lock
}

// NewWorker opens the archive in cfg.Dir.
func NewWorker(nc *nats.Conn, cfg Config) (*Worker, error) {
	if cfg.Durable == "" {
		cfg.Durable = "archive"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a, err := OpenFS(cfg.FS, cfg.Dir, false)
	if err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, nc: nc, log: cfg.Logger.With("worker", "archive"), arc: a}, nil
}

// Archive is the worker's archive (for queries in the same process).
func (w *Worker) Archive() *Archive { return w.arc }

// Run archives until ctx ends, then closes the archive. A failed write
// (a full disk) naks its batch and the worker goes on: the batch comes back
// and is written once there is space again. A failed fsync poisons the
// archive (see Archive.Append); Run then stops and returns the error, so
// the process exits and its supervisor restarts it, and the reopened
// archive keeps exactly the records that are on disk.
func (w *Worker) Run(ctx context.Context) error {
	defer w.arc.Close()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
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
	// The processed batches waiting together are archived with one write
	// and one fsync (group commit): one fsync per message cost the whole
	// system more CPU than any other stage at the simulator's load.
	err = bus.ConsumeBatch(ctx, cons, w.cfg.Durable, 256, func(_ context.Context, msgs []jetstream.Msg) []error {
		errs := make([]error, len(msgs))
		var recs []Record
		type span struct{ msg, from, to int } // a message's records in recs
		var taken []span
		for i, m := range msgs {
			before := len(recs)
			_, _, err := schemas.ScanFrameBatch(m.Data(), func(f schemas.FrameView) error {
				src := f.SourceID
				if len(src) == 0 {
					src = f.StationID
				}
				recs = append(recs, Record{f.TimestampMs, f.SatelliteID, f.Sequence, src, f.Raw})
				return nil
			})
			if err != nil {
				recs = recs[:before]
				errs[i] = err // malformed: counted and terminated by bus
				continue
			}
			taken = append(taken, span{i, before, len(recs)})
		}
		if len(taken) == 0 {
			return errs
		}
		n, err := w.arc.AppendRecords(recs)
		if err != nil && len(taken) > 1 && !errors.Is(err, ErrFailed) {
			// The group did not fit (a full disk): write its messages one
			// by one, in order, so what fits is archived and acked; from
			// the first that does not, the rest wait for redelivery. (What
			// the group write made durable is found already recorded, and
			// counted in n.)
			w.writeFailed(msgs[taken[0].msg], err, stop)
			for j, t := range taken {
				k, err := w.arc.AppendRecords(recs[t.from:t.to])
				n += k
				if err != nil {
					w.writeFailed(msgs[t.msg], err, stop)
					for _, rest := range taken[j:] {
						errs[rest.msg] = err
					}
					break
				}
			}
			archivedTotal.Add(float64(n))
			return errs
		}
		archivedTotal.Add(float64(n))
		if err != nil {
			w.writeFailed(msgs[taken[0].msg], err, stop)
			for _, t := range taken {
				errs[t.msg] = err // nak'ed: the batches come back once the archive works again
			}
		}
		return errs
	}, bus.ConsumeOptions{Logger: w.log, PullMaxBytes: 16 << 20}) // one group at a time: archive order
	if cause := context.Cause(ctx); errors.Is(cause, ErrFailed) {
		return cause
	}
	return err
}

// writeFailed counts and logs a failed append, and stops Run when the
// archive is poisoned (only a restart can recover it).
func (w *Worker) writeFailed(msg jetstream.Msg, err error, stop context.CancelCauseFunc) {
	cause := "io"
	if errors.Is(err, syscall.ENOSPC) {
		cause = "no_space"
	}
	writeErrors.WithLabelValues(cause).Inc()
	if errors.Is(err, ErrFailed) {
		w.log.Error("archive poisoned by a failed write or fsync; stopping so that a restart reopens it", "subject", msg.Subject(), "err", err)
		stop(err)
		return
	}
	// While the disk stays full every redelivery fails again: say so at
	// error level at most every 10 s (bus.Consume also logs each nak).
	lvl := slog.LevelDebug
	if now := time.Now(); now.Sub(w.lastErrLog) >= 10*time.Second {
		lvl, w.lastErrLog = slog.LevelError, now
	}
	if cause == "no_space" {
		w.log.Log(context.Background(), lvl, "archive disk full: batch not archived, it will be redelivered; free space on the data disk",
			"dir", w.cfg.Dir, "subject", msg.Subject(), "err", err)
		return
	}
	w.log.Log(context.Background(), lvl, "archive write failed: batch not archived, it will be redelivered",
		"dir", w.cfg.Dir, "subject", msg.Subject(), "err", err)
}
