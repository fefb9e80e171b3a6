package ops_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/ops"
	"github.com/meridian-ops/meridian/schemas"
)

func apiServer(t *testing.T, token string) (*httptest.Server, *ops.API) {
	b := bustest.New(t)
	s := ops.NewServer(ops.HTTPConfig{Logger: bustest.Discard})
	a := &ops.API{NC: b.Conn, JS: b.JS, Token: token, RequestTimeout: 300 * time.Millisecond, Logger: bustest.Discard}
	a.Register(s)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, a
}

func post(t *testing.T, url, token, body string) (int, map[string]any) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// Each refusal of command submission over HTTP, then an accepted command
// that is stored on cmd.submit.<station>.
func TestCommandSubmissionNeedsBearerToken(t *testing.T) {
	srv, a := apiServer(t, "t0ken")
	url := srv.URL + "/api/commands"
	good := `{"station_id":"gs-1","kind":"REPOINT","azimuth":180,"elevation":45}`
	cases := []struct {
		name, token, body string
		want              int
	}{
		{"no token", "", good, 401},
		{"wrong token", "guess", good, 401},
		{"bad json", "t0ken", `{"station_id":`, 400},
		{"unknown field", "t0ken", `{"station":"gs-1","kind":"SAFE_MODE"}`, 400},
		{"unknown kind", "t0ken", `{"station_id":"gs-1","kind":"LAUNCH"}`, 400},
		{"repoint without angles", "t0ken", `{"station_id":"gs-1","kind":"REPOINT"}`, 400},
		{"too large", "t0ken", `{"station_id":"` + strings.Repeat("x", ops.MaxRequestBytes) + `"}`, 413},
	}
	for _, c := range cases {
		if code, body := post(t, url, c.token, c.body); code != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, code, body, c.want)
		}
	}
	code, body := post(t, url, "t0ken", good)
	if code != 202 || body["id"] == "" {
		t.Fatalf("valid command: %d %v", code, body)
	}
	st, _ := a.JS.Stream(context.Background(), schemas.StreamCmd)
	raw, err := st.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var c schemas.Command
	if err := schemas.Decode(raw.Data, &c); err != nil || c.ID != body["id"] || c.Kind != schemas.CmdRepoint || raw.Subject != "cmd.submit.gs-1" {
		t.Fatalf("stored %+v on %s: %v", c, raw.Subject, err)
	}
	info, _ := st.Info(context.Background())
	if info.State.Msgs != 1 {
		t.Fatalf("refused requests stored something: %d messages", info.State.Msgs)
	}
}

func TestCommandSubmissionDisabledWithoutToken(t *testing.T) {
	srv, _ := apiServer(t, "")
	if code, _ := post(t, srv.URL+"/api/commands", "", `{"station_id":"gs-1","kind":"SAFE_MODE"}`); code != 403 {
		t.Fatalf("got %d, want 403", code)
	}
}

func TestGetTle(t *testing.T) {
	srv, a := apiServer(t, "")
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/tle/25544"); code != 503 {
		t.Fatalf("store down: %d, want 503", code)
	}
	if code := get("/tle/abc"); code != 400 {
		t.Fatalf("bad id: %d, want 400", code)
	}
	// A real micro service answering oor.tle.get on the bus, as the store does.
	svc, err := micro.AddService(a.NC, micro.Config{Name: "oor", Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	_ = svc.AddEndpoint("tle-get", micro.HandlerFunc(func(r micro.Request) {
		var req schemas.TleGetRequest
		if err := schemas.Decode(r.Data(), &req); err != nil {
			_ = r.Error("400", err.Error(), nil)
			return
		}
		rep := schemas.TleGetReply{}
		if req.NoradID == 25544 {
			rep = schemas.TleGetReply{Found: true, Tle: &schemas.Tle{NoradID: 25544, Name: "ISS (ZARYA)", Source: "18th-sds"}}
		}
		b, _ := schemas.Marshal(&rep)
		_ = r.Respond(b)
	}), micro.WithEndpointSubject(schemas.OORTleGet))
	resp, err := http.Get(srv.URL + "/tle/25544")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tle schemas.Tle
	if err := json.NewDecoder(resp.Body).Decode(&tle); err != nil || resp.StatusCode != 200 || tle.NoradID != 25544 || tle.Name != "ISS (ZARYA)" {
		t.Fatalf("%d %+v %v", resp.StatusCode, tle, err)
	}
	if code := get("/tle/1"); code != 404 {
		t.Fatalf("unknown id: %d, want 404", code)
	}
}
