package cmdqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/meridian-ops/meridian/schemas"
)

// ErrNotStored is returned by Send when the publish was acknowledged by a
// stream other than CMD (a misconfigured server).
var ErrNotStored = errors.New("cmdqueue: command not stored in the CMD stream")

// Send submits cmd: it fills ID (a NUID) and IssuedAtNs (now) when they
// are empty, validates it (errors wrap the schemas.Command sentinels),
// publishes it to cmd.submit.<station> with Nats-Msg-Id = ID, and returns
// the id once JetStream has stored it. Resending the same id within the
// stream's 2-minute duplicate window stores it once.
func Send(ctx context.Context, nc *nats.Conn, cmd schemas.Command) (string, error) {
	if cmd.ID == "" {
		cmd.ID = nuid.Next()
	}
	if cmd.IssuedAtNs == 0 {
		cmd.IssuedAtNs = time.Now().UnixNano()
	}
	if err := cmd.Validate(); err != nil {
		return "", fmt.Errorf("cmdqueue: send: %w", err)
	}
	data, err := schemas.Marshal(&cmd)
	if err != nil {
		return "", err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return "", fmt.Errorf("cmdqueue: send: %w", err)
	}
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: schemas.SubmitSubject(cmd.StationID), Data: data,
		Header: nats.Header{jetstream.MsgIDHeader: []string{cmd.ID}}})
	if err != nil {
		return "", fmt.Errorf("cmdqueue: send %s: %w", cmd.ID, err)
	}
	if ack.Stream != schemas.StreamCmd {
		return "", fmt.Errorf("%w: acked by %q", ErrNotStored, ack.Stream)
	}
	return cmd.ID, nil
}

// Watch calls fn with every command dispatched to station (every station
// when station is "") from now on, until ctx ends (it then returns nil)
// or fn returns an error (returned). Messages that do not decode are
// skipped.
//
// It observes cmd.dispatch.> with a core NATS subscription, next to the
// gateway's work-queue consumer of CMD_DISPATCH, and takes nothing from
// it. CMD_DISPATCH is a work-queue stream, which does not admit a second
// consumer overlapping the gateway's, so an observer cannot replay it;
// a core subscription sees dispatches live, at most once, and may miss
// some if it falls behind (a slow-consumer error).
func Watch(ctx context.Context, nc *nats.Conn, station string, fn func(schemas.Command) error) error {
	subject := schemas.DispatchAll
	if station != "" {
		subject = schemas.DispatchSubject(station)
	}
	ch := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		return fmt.Errorf("cmdqueue: watch %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Make sure the server has the subscription before reporting nothing.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = nc.FlushWithContext(fctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("cmdqueue: watch %s: %w", subject, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			var c schemas.Command
			if err := schemas.Unmarshal(m.Data, &c); err != nil {
				continue
			}
			if err := fn(c); err != nil {
				return err
			}
		}
	}
}
