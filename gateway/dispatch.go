package gateway

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

// dispatchBatch bounds how many pending commands are ordered together.
const dispatchBatch = 256

// startDispatch writes the station's dispatched commands on its session
// until the returned stop function is called (when the session ends).
func (s *session) startDispatch(ctx context.Context) func() {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.dispatchLoop(dctx)
	}()
	return func() { cancel(); <-done }
}

// dispatchLoop consumes cmd.dispatch.<station> through the station's own
// durable consumer. Commands that piled up while the station was away are
// fetched together and written highest priority first (then oldest); new
// ones are written as they arrive. Each is acked once written; a failed
// write naks it, so it waits in the stream for the next session.
func (s *session) dispatchLoop(ctx context.Context) {
	cons, err := bus.EnsureConsumer(ctx, s.js, schemas.StreamDispatch, jetstream.ConsumerConfig{
		Durable:           "gw-dispatch-" + schemas.KVKey(s.station),
		Description:       "commands for station " + s.station + ", written on its gateway session",
		FilterSubject:     schemas.DispatchSubject(s.station),
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           30 * time.Second,
		MaxAckPending:     dispatchBatch,
		InactiveThreshold: 24 * time.Hour, // forget stations gone for a day; their commands stay in the stream
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("gateway cannot consume the station's commands", "err", err)
		}
		return
	}
	for ctx.Err() == nil {
		// Block for the first command, then take whatever else is waiting.
		first, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if !errors.Is(err, jetstream.ErrNoMessages) && !isTimeout(err) && ctx.Err() == nil {
				s.log.Warn("gateway command fetch", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		msgs := []jetstream.Msg{first}
		if more, err := cons.FetchNoWait(dispatchBatch - 1); err == nil {
			for m := range more.Messages() {
				msgs = append(msgs, m)
			}
		}
		if !s.writeCommands(msgs) {
			return
		}
	}
}

type pendingCmd struct {
	msg jetstream.Msg
	cmd schemas.Command
	seq uint64
}

// writeCommands orders msgs and writes them; false when the connection failed.
func (s *session) writeCommands(msgs []jetstream.Msg) bool {
	cmds := make([]pendingCmd, 0, len(msgs))
	for _, m := range msgs {
		var c schemas.Command
		if err := schemas.Decode(m.Data(), &c); err != nil {
			commandsWritten.WithLabelValues("malformed").Inc()
			s.log.Warn("gateway dropping malformed dispatched command", "subject", m.Subject(), "err", err)
			_ = m.TermWithReason("malformed command")
			continue
		}
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		cmds = append(cmds, pendingCmd{m, c, seq})
	}
	sort.SliceStable(cmds, func(i, j int) bool {
		a, b := &cmds[i], &cmds[j]
		if pa, pb := a.cmd.EffectivePriority(), b.cmd.EffectivePriority(); pa != pb {
			return pa > pb
		}
		if a.cmd.IssuedAtNs != b.cmd.IssuedAtNs {
			return a.cmd.IssuedAtNs < b.cmd.IssuedAtNs
		}
		return a.seq < b.seq
	})
	for i, pc := range cmds {
		payload, err := schemas.Marshal(&pc.cmd)
		if err == nil {
			s.writeMu.Lock()
			_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			err = schemas.WriteFrame(s.conn, payload)
			s.writeMu.Unlock()
		}
		if err != nil {
			commandsWritten.WithLabelValues("failed").Inc()
			s.log.Warn("gateway could not write a command; it stays queued", "id", pc.cmd.ID, "err", err)
			for _, rest := range cmds[i:] {
				_ = rest.msg.Nak()
			}
			return false
		}
		if err := pc.msg.DoubleAck(context.Background()); err != nil {
			s.log.Warn("gateway command written but its ack failed; it may be written again", "id", pc.cmd.ID, "err", err)
		}
		commandsWritten.WithLabelValues("written").Inc()
	}
	return true
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
