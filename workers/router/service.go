package router

import (
	"context"
	"encoding/json"
	"strings"
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
// msgpack, or JSON when the request says Content-Type: application/json.
func (r *Router) startService(kv jetstream.KeyValue) (micro.Service, error) {
	svc, err := micro.AddService(r.nc, micro.Config{Name: "router", Version: "1.0.0",
		Description: "telemetry source registry: add, remove, list"})
	if err != nil {
		return nil, err
	}
	handle := func(subject string, h func(ctx context.Context, req micro.Request, json bool)) error {
		name := strings.ReplaceAll(strings.TrimPrefix(subject, "router."), ".", "-") // endpoint names have no dots
		return svc.AddEndpoint(name, micro.HandlerFunc(func(req micro.Request) {
			if len(req.Data()) > maxRequest {
				_ = req.Error("400", "request larger than 16 KiB", nil)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h(ctx, req, req.Headers().Get("Content-Type") == "application/json")
		}), micro.WithEndpointSubject(subject), micro.WithEndpointMetadata(map[string]string{"format": "msgpack or JSON"}))
	}
	decode := func(req micro.Request, asJSON bool, v any) bool {
		var err error
		if asJSON {
			err = json.Unmarshal(req.Data(), v)
		} else {
			err = schemas.Unmarshal(req.Data(), v)
		}
		if err != nil {
			_ = req.Error("400", "bad request: "+err.Error(), nil)
			return false
		}
		return true
	}
	reply := func(req micro.Request, asJSON bool, v any) {
		var b []byte
		var err error
		if asJSON {
			b, err = json.Marshal(v)
		} else {
			b, err = schemas.Marshal(v)
		}
		if err != nil {
			_ = req.Error("500", err.Error(), nil)
			return
		}
		_ = req.Respond(b)
	}
	if err := handle(SubjectAdd, func(ctx context.Context, req micro.Request, asJSON bool) {
		var s schemas.Source
		if !decode(req, asJSON, &s) {
			return
		}
		if s.SourceID == "" {
			_ = req.Error("400", "source_id is required", nil)
			return
		}
		if s.Kind == "" {
			s.Kind = schemas.KindLiveUplink
		}
		if !s.Kind.Valid() {
			_ = req.Error("400", "unknown kind "+string(s.Kind), nil)
			return
		}
		s.RegisteredAtMs = time.Now().UnixMilli()
		if _, err := bus.KVPut(ctx, kv, schemas.KVKey(s.SourceID), &s); err != nil {
			_ = req.Error("503", err.Error(), nil)
			return
		}
		reply(req, asJSON, &s)
	}); err != nil {
		svc.Stop()
		return nil, err
	}
	if err := handle(SubjectRemove, func(ctx context.Context, req micro.Request, asJSON bool) {
		var s schemas.Source
		if !decode(req, asJSON, &s) {
			return
		}
		if s.SourceID == "" {
			_ = req.Error("400", "source_id is required", nil)
			return
		}
		if err := kv.Delete(ctx, schemas.KVKey(s.SourceID)); err != nil {
			_ = req.Error("503", err.Error(), nil)
			return
		}
		reply(req, asJSON, &s)
	}); err != nil {
		svc.Stop()
		return nil, err
	}
	if err := handle(SubjectList, func(ctx context.Context, req micro.Request, asJSON bool) {
		reg := *r.sources.Load()
		list := make([]schemas.Source, 0, len(reg))
		for _, s := range reg {
			list = append(list, s)
		}
		reply(req, asJSON, list)
	}); err != nil {
		svc.Stop()
		return nil, err
	}
	return svc, nil
}
