package dashboard

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"time"
)

//go:embed static
var static embed.FS

// minInterval coalesces bursts of changes: a browser gets at most four
// snapshots a second however busy the system is.
const minInterval = 250 * time.Millisecond

// Register adds the dashboard's routes to mux: "/" (the page and its
// assets), "/api/state" and "/api/events".
func (h *Hub) Register(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	sub, _ := fs.Sub(static, "static")
	mux.Handle("GET /", http.FileServerFS(sub))
	mux.Handle("GET /api/state", http.HandlerFunc(h.serveState))
	mux.Handle("GET /api/events", http.HandlerFunc(h.serveEvents))
}

func (h *Hub) serveState(w http.ResponseWriter, r *http.Request) {
	b, _, _ := h.Snapshot()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// serveEvents streams snapshots as server-sent events until the client
// goes away. Each write has a deadline so a stuck client cannot pin the
// handler forever.
func (h *Hub) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	var sent uint64
	for {
		b, v, changed := h.Snapshot()
		if v != sent || sent == 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			sent = v
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-time.After(15 * time.Second): // keep-alive through idle proxies
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
			continue
		}
		select { // coalesce
		case <-r.Context().Done():
			return
		case <-time.After(minInterval):
		}
	}
}
