package gsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/meridian-ops/meridian/bus"
)

// Fleet runs one Client per configured station over one shared
// bus.Publisher. A station that fails (state Failed) does not stop the
// others: its failure is visible in KV meridian_sessions and the logs,
// and Run keeps serving the rest until ctx ends.
type Fleet struct {
	clients []*Client
	pub     *bus.Publisher
	log     *slog.Logger
}

// NewFleet makes a client per config (see New for js and opts; options
// apply to every client). Station ids must be unique.
func NewFleet(js jetstream.JetStream, log *slog.Logger, cfgs []Config, opts ...Option) (*Fleet, error) {
	if len(cfgs) == 0 {
		return nil, fmt.Errorf("%w: no stations", ErrConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	f := &Fleet{log: log}
	if js != nil {
		f.pub = bus.NewPublisher(js, 1024, log)
		opts = append([]Option{WithPublisher(f.pub)}, opts...)
	}
	seen := map[string]bool{}
	for _, cfg := range cfgs {
		if seen[cfg.Station] {
			f.closePub()
			return nil, fmt.Errorf("%w: station %q configured twice", ErrConfig, cfg.Station)
		}
		seen[cfg.Station] = true
		c, err := New(js, log, cfg, opts...)
		if err != nil {
			f.closePub()
			return nil, err
		}
		f.clients = append(f.clients, c)
	}
	return f, nil
}

// Clients returns the fleet's clients, in config order.
func (f *Fleet) Clients() []*Client { return f.clients }

// Run runs every client until ctx ends, then waits for each to shut down
// (GOODBYE, drain, Stopped) and for the shared publisher's acks. It returns
// nil on a clean stop; stations that failed are logged, not returned, so
// one dead station does not bring down the process.
func (f *Fleet) Run(ctx context.Context) error {
	var wg conc.WaitGroup
	errs := make([]error, len(f.clients))
	for i, c := range f.clients {
		wg.Go(func() {
			err := c.Run(ctx)
			if errors.Is(err, ErrFailed) {
				f.log.Error("station failed; the fleet keeps the other stations", "station", c.cfg.Station, "err", err)
				err = nil
			}
			errs[i] = err
		})
	}
	wg.Wait()
	<-ctx.Done() // even when every station failed, Run's contract is to block until ctx ends
	f.closePub()
	return errors.Join(errs...)
}

func (f *Fleet) closePub() {
	if f.pub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.pub.Close(ctx); err != nil {
		f.log.Warn("fleet publisher close", "err", err)
	}
	f.pub = nil
}
