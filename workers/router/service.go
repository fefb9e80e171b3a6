package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

// Subjects of the micro service "router".
const (
	SubjectAdd    = "router.sources.add"
	SubjectRemove = "router.sources.remove"
	SubjectList   = "router.sources.list"
)

// maxRequest bounds a control request.
const maxRequest = 16 << 10

// startService registers the micro service "router" (visible to
// `nats micro ls`): add and remove write the KV registry, which every
// router instance watches; list reads it. Requests and replies are
// msgpack, or JSON when the request says Content-Type: application/json
// (bus.AddEndpoint).
func (r *Router) startService(kv jetstream.KeyValue) (micro.Service, error) {
	svc, err := micro.AddService(r.nc, micro.Config{Name: "router", Version: "1.0.0",
		Description: "telemetry source registry: add, remove, list"})
	if err != nil {
		return nil, err
	}
	o := bus.EndpointOptions{MaxRequest: maxRequest}
	err = errors.Join(
		bus.AddEndpoint(svc, SubjectAdd, o, func(ctx context.Context, s *schemas.Source) (*schemas.Source, error) {
			if s.SourceID == "" {
				return nil, fmt.Errorf("%w: source_id is required", bus.ErrBadRequest)
			}
			if s.Kind == "" {
				s.Kind = schemas.KindLiveUplink
			}
			if !s.Kind.Valid() {
				return nil, fmt.Errorf("%w: unknown kind %s", bus.ErrBadRequest, s.Kind)
			}
			s.RegisteredAtMs = time.Now().UnixMilli()
			if _, err := bus.KVPut(ctx, kv, schemas.KVKey(s.SourceID), s); err != nil {
				return nil, fmt.Errorf("%w: %v", bus.ErrUnavailable, err)
			}
			return s, nil
		}),
		bus.AddEndpoint(svc, SubjectRemove, o, func(ctx context.Context, s *schemas.Source) (*schemas.Source, error) {
			if s.SourceID == "" {
				return nil, fmt.Errorf("%w: source_id is required", bus.ErrBadRequest)
			}
			if err := kv.Delete(ctx, schemas.KVKey(s.SourceID)); err != nil {
				return nil, fmt.Errorf("%w: %v", bus.ErrUnavailable, err)
			}
			return s, nil
		}),
		bus.AddEndpoint(svc, SubjectList, o, func(context.Context, *struct{}) (*[]schemas.Source, error) {
			reg := *r.sources.Load()
			list := make([]schemas.Source, 0, len(reg))
			for _, s := range reg {
				list = append(list, s)
			}
			return &list, nil
		}),
	)
	if err != nil {
		_ = svc.Stop()
		return nil, err
	}
	return svc, nil
}
