package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/meridian-ops/meridian/schemas"
)

// Sentinel errors an endpoint handler wraps to choose the micro error code
// its caller sees; any other error is a 500.
var (
	ErrBadRequest  = errors.New("bad request")         // 400
	ErrUnavailable = errors.New("service unavailable") // 503
)

var requestSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "meridian_service_request_seconds",
	Help:    "Time a micro service endpoint took per request, by endpoint and code (200 or the error code).",
	Buckets: prometheus.ExponentialBuckets(10e-6, 2.5, 14),
}, []string{"endpoint", "code"})

// EndpointOptions tune AddEndpoint.
type EndpointOptions struct {
	MaxRequest int           // bytes; larger requests get a 400 (default 64 KiB)
	Timeout    time.Duration // handler deadline (default 5 s)
}

// AddEndpoint registers subject on svc with a typed handler: the request
// is decoded from msgpack, or from JSON when it carries the header
// Content-Type: application/json (so the nats CLI works by hand), and
// validated when Req is a schemas.Validator; the reply is encoded the same
// way. Malformed requests get a 400 with the decoder's message and never
// reach h. The endpoint is named after the subject without its service
// prefix (micro names have no dots).
func AddEndpoint[Req, Rep any](svc micro.Service, subject string, o EndpointOptions, h func(ctx context.Context, req *Req) (*Rep, error)) error {
	if o.MaxRequest <= 0 {
		o.MaxRequest = 64 << 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	name := subject
	if i := strings.IndexByte(subject, '.'); i >= 0 {
		name = subject[i+1:]
	}
	name = strings.ReplaceAll(name, ".", "-")
	return svc.AddEndpoint(name, micro.HandlerFunc(func(r micro.Request) {
		start := time.Now()
		code := serve(r, o, h)
		requestSeconds.WithLabelValues(name, code).Observe(time.Since(start).Seconds())
	}), micro.WithEndpointSubject(subject), micro.WithEndpointMetadata(map[string]string{"format": "msgpack, or JSON with Content-Type: application/json"}))
}

func serve[Req, Rep any](r micro.Request, o EndpointOptions, h func(ctx context.Context, req *Req) (*Rep, error)) string {
	asJSON := r.Headers().Get("Content-Type") == "application/json"
	if len(r.Data()) > o.MaxRequest {
		return fail(r, "400", fmt.Sprintf("request of %d bytes is larger than %d", len(r.Data()), o.MaxRequest))
	}
	req := new(Req)
	var err error
	if asJSON {
		if len(r.Data()) > 0 { // an empty JSON request means all defaults
			err = json.Unmarshal(r.Data(), req)
		}
		if v, ok := any(req).(schemas.Validator); ok && err == nil {
			err = v.Validate()
		}
	} else if len(r.Data()) > 0 {
		err = schemas.Decode(r.Data(), req)
	} else if v, ok := any(req).(schemas.Validator); ok {
		err = v.Validate()
	}
	if err != nil {
		return fail(r, "400", "bad request: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	rep, err := h(ctx, req)
	switch {
	case errors.Is(err, ErrBadRequest):
		return fail(r, "400", err.Error())
	case errors.Is(err, ErrUnavailable):
		return fail(r, "503", err.Error())
	case err != nil:
		return fail(r, "500", err.Error())
	}
	var b []byte
	if asJSON {
		b, err = json.Marshal(rep)
	} else if a, ok := any(rep).(schemas.Appender); ok {
		b = a.AppendMsgpack(nil) // hand-written, same bytes as Marshal
	} else {
		b, err = schemas.Marshal(rep)
	}
	if err != nil {
		return fail(r, "500", "encode reply: "+err.Error())
	}
	if err := r.Respond(b); err != nil {
		return fail(r, "500", "respond: "+err.Error())
	}
	return "200"
}

func fail(r micro.Request, code, msg string) string {
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	_ = r.Error(code, msg, nil)
	return code
}
