package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// ErrNotReady is returned by Ready while the bus cannot serve the contract.
var ErrNotReady = errors.New("bus not ready")

// Ready reports whether the connection is up and every stream of the
// contract exists.
func (b *Bus) Ready(ctx context.Context) error {
	if b == nil || b.Conn == nil {
		return fmt.Errorf("%w: not connected", ErrNotReady)
	}
	if st := b.Conn.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: connection %s", ErrNotReady, st)
	}
	missing, err := MissingStreams(ctx, b.JS)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: streams missing: %s", ErrNotReady, strings.Join(missing, ", "))
	}
	return nil
}

// Healthy reports whether the process's NATS connection is usable (it may
// be reconnecting, which is reported as unhealthy).
func (b *Bus) Healthy() error {
	if b == nil || b.Conn == nil || b.Conn.Status() != nats.CONNECTED {
		return fmt.Errorf("%w: NATS connection down", ErrNotReady)
	}
	return nil
}
