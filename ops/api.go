package ops

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/meridian-ops/meridian/schemas"
)

// MaxRequestBytes bounds every API request body.
const MaxRequestBytes = 64 << 10

var apiRequests = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "meridian_ops_api_requests_total",
	Help: "Ops HTTP API requests by endpoint and status code.",
}, []string{"endpoint", "code"})

// API serves the ops HTTP API over the bus:
//
//	POST /api/commands   submit a telecommand (bearer token required)
//	GET  /tle/{norad_id} the current element set, from the store's oor.tle.get
type API struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// Token is the bearer token POST /api/commands requires. Empty disables
	// command submission over HTTP (403), so an unconfigured deployment
	// never accepts anonymous commands.
	Token string
	// RequestTimeout bounds a request to the store (default 2 s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// Register adds the API's routes to s.
func (a *API) Register(s *Server) {
	if a.RequestTimeout <= 0 {
		a.RequestTimeout = 2 * time.Second
	}
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	s.Handle("POST /api/commands", http.HandlerFunc(a.submitCommand))
	s.Handle("GET /tle/{norad_id}", http.HandlerFunc(a.getTle))
}

type apiError struct {
	Error string `json:"error"`
}

func (a *API) reply(w http.ResponseWriter, endpoint string, code int, v any) {
	apiRequests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// submitCommand validates a JSON Command and stores it on
// cmd.submit.<station>; 202 with the id once JetStream acked it.
func (a *API) submitCommand(w http.ResponseWriter, r *http.Request) {
	const ep = "commands"
	if a.Token == "" {
		a.reply(w, ep, http.StatusForbidden, apiError{"command submission over HTTP is disabled (no --api-token configured)"})
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="meridian"`)
		a.reply(w, ep, http.StatusUnauthorized, apiError{"missing or wrong bearer token"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.reply(w, ep, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("body larger than %d bytes", MaxRequestBytes)})
			return
		}
		a.reply(w, ep, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	var c schemas.Command
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		a.reply(w, ep, http.StatusBadRequest, apiError{"bad JSON: " + err.Error()})
		return
	}
	if c.ID == "" {
		c.ID = nuid.Next()
	}
	if c.IssuedAtNs == 0 {
		c.IssuedAtNs = time.Now().UnixNano()
	}
	if err := c.Validate(); err != nil {
		a.reply(w, ep, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	data, err := schemas.Marshal(&c)
	if err != nil {
		a.reply(w, ep, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ack, err := a.JS.Publish(ctx, schemas.SubmitSubject(c.StationID), data, jetstream.WithMsgID(c.ID))
	if err != nil {
		a.Logger.Warn("command submission failed", "id", c.ID, "err", err)
		a.reply(w, ep, http.StatusServiceUnavailable, apiError{"command not stored: " + err.Error()})
		return
	}
	a.reply(w, ep, http.StatusAccepted, map[string]any{"id": c.ID, "stream_seq": ack.Sequence, "duplicate": ack.Duplicate})
}

// getTle answers GET /tle/{norad_id} from the store: 200 with the Tle as
// JSON, 404 when unknown, 400 for a bad id, 503 while the store is down.
func (a *API) getTle(w http.ResponseWriter, r *http.Request) {
	const ep = "tle"
	id, err := strconv.ParseUint(r.PathValue("norad_id"), 10, 32)
	if err != nil || id == 0 {
		a.reply(w, ep, http.StatusBadRequest, apiError{"norad_id must be a positive integer"})
		return
	}
	req, _ := schemas.Marshal(&schemas.TleGetRequest{NoradID: uint32(id)})
	ctx, cancel := context.WithTimeout(r.Context(), a.RequestTimeout)
	defer cancel()
	msg, err := a.NC.RequestWithContext(ctx, schemas.OORTleGet, req)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		a.reply(w, ep, http.StatusServiceUnavailable, apiError{"store unavailable: " + err.Error()})
		return
	}
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
		status := http.StatusBadGateway
		if code == "400" {
			status = http.StatusBadRequest
		}
		a.reply(w, ep, status, apiError{msg.Header.Get("Nats-Service-Error")})
		return
	}
	var rep schemas.TleGetReply
	if err := schemas.Decode(msg.Data, &rep); err != nil {
		a.reply(w, ep, http.StatusBadGateway, apiError{"bad reply from store: " + err.Error()})
		return
	}
	if !rep.Found || rep.Tle == nil {
		a.reply(w, ep, http.StatusNotFound, apiError{fmt.Sprintf("no TLE for NORAD id %d", id)})
		return
	}
	a.reply(w, ep, http.StatusOK, rep.Tle)
}
