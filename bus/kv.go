package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/schemas"
)

// NewMsg builds a JetStream message; a non-empty msgID becomes its
// Nats-Msg-Id header so a retried publish is stored once.
func NewMsg(subject string, data []byte, msgID string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: data}
	if msgID != "" {
		m.Header = nats.Header{jetstream.MsgIDHeader: []string{msgID}}
	}
	return m
}

// KVPut encodes v as msgpack and stores it under key.
func KVPut(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	b, err := schemas.Marshal(v)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Put(ctx, key, b)
	if err != nil {
		return 0, fmt.Errorf("bus: kv put %s: %w", key, err)
	}
	return rev, nil
}

// KVGet decodes key's latest value into v. found is false when the key
// does not exist (or was deleted).
func KVGet(ctx context.Context, kv jetstream.KeyValue, key string, v any) (found bool, err error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bus: kv get %s: %w", key, err)
	}
	if err := schemas.Decode(e.Value(), v); err != nil {
		return false, fmt.Errorf("bus: kv %s: %w", key, err)
	}
	return true, nil
}

// KVMerge updates key with compare-and-set so several writers can own
// different fields of one value (the router and the processor share
// meridian_stats "pipeline"): it reads the current value into v (zero if
// absent), applies mutate, and writes it back only if nobody wrote in
// between, retrying otherwise.
func KVMerge[T any](ctx context.Context, kv jetstream.KeyValue, key string, mutate func(*T)) error {
	for attempt := 0; ; attempt++ {
		var v T
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("bus: kv get %s: %w", key, err)
		default:
			rev = e.Revision()
			if e.Operation() == jetstream.KeyValuePut {
				if err := schemas.Decode(e.Value(), &v); err != nil {
					var zero T
					v = zero // a corrupt value is replaced, not merged
				}
			}
		}
		mutate(&v)
		b, err := schemas.Marshal(&v)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, b)
		} else {
			_, err = kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if attempt >= 100 || ctx.Err() != nil {
			return fmt.Errorf("bus: kv merge %s: %w", key, err)
		}
		// Lost a race with another writer (wrong last sequence or key
		// exists): back off a little, at random, then read and reapply.
		if err := sleepCtx(ctx, time.Duration(rand.Int64N(int64(time.Millisecond)*int64(min(attempt+1, 10))))); err != nil {
			return err
		}
	}
}
