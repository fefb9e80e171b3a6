package bus

import (
	"context"
	"errors"
	"fmt"

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
