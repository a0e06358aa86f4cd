package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/alert/alerttest"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/server"
)

const token = "s3cret-token"

// fakeScaler answers with one record per signal group; its behaviour is
// switched per test.
type fakeScaler struct {
	mu       sync.Mutex
	got      []alert.Notification
	err      error
	block    chan struct{} // if set, Handle waits for it
	panicMsg string
}

func (f *fakeScaler) Handle(_ context.Context, n alert.Notification) ([]decision.Record, error) {
	if f.block != nil {
		<-f.block
	}
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, n)
	if f.err != nil {
		return nil, f.err
	}
	var out []decision.Record
	for _, g := range n.Groups() {
		out = append(out, decision.Record{NodeGroup: g, Action: "scale_up", Outcome: decision.Accepted, Reasons: []string{"test"}})
	}
	return out, nil
}

func (f *fakeScaler) Decisions(_ context.Context, group string, limit int) ([]decision.Record, error) {
	return []decision.Record{{NodeGroup: "workers", Action: "scale_up", Outcome: decision.Accepted}}, nil
}

type testServer struct {
	url    string
	scaler *fakeScaler
	reg    *prometheus.Registry
	stop   context.CancelFunc
	done   chan error
}

// start serves on a free loopback port through Serve, as `smartscale serve` does.
func start(t *testing.T, auth *server.Credentials, ready map[string]server.Check) *testServer {
	t.Helper()
	fs := &fakeScaler{}
	reg := prometheus.NewRegistry()
	srv := server.New(server.Options{
		Scaler: fs, Decisions: fs, Auth: auth, MaxBodyBytes: 1 << 20, Registry: reg,
		KnownGroup: func(g string) bool { return g == "workers" },
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Ready:      ready,
	})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	ts := &testServer{scaler: fs, reg: reg, stop: cancel, done: make(chan error, 1)}
	go func() {
		ts.done <- srv.Serve(ctx, server.ListenConfig{
			Address: "127.0.0.1:0", ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
			IdleTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second,
			Ready: func(a net.Addr) { addrc <- a },
		})
	}()
	select {
	case a := <-addrc:
		ts.url = "http://" + a.String()
	case err := <-ts.done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-ts.done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	return ts
}

func (ts *testServer) post(t *testing.T, body []byte, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+"/v1/alerts", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Alertmanager/0.35.0")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("answer is not JSON: %q", raw)
		}
	}
	return resp.StatusCode, out
}

var bearer = map[string]string{"Authorization": "Bearer " + token}

func validBody() []byte {
	return alerttest.Notification(`{}:{alertname="SmartScaleCPUHigh"}`,
		alerttest.Alert{Name: "SmartScaleCPUHigh", Action: "scale_up", NodeGroup: "workers", Urgency: "high"},
		alerttest.Alert{Name: "NodeNotReady"})
}

func TestAuth(t *testing.T) {
	t.Run("bearer", func(t *testing.T) {
		ts := start(t, &server.Credentials{BearerToken: token}, nil)
		for _, tt := range []struct {
			name   string
			header map[string]string
			want   int
		}{
			{"missing", nil, 401},
			{"wrong token", map[string]string{"Authorization": "Bearer nope"}, 401},
			{"token prefix", map[string]string{"Authorization": "Bearer " + token[:5]}, 401},
			{"wrong scheme", map[string]string{"Authorization": "Basic " + token}, 401},
			{"no scheme", map[string]string{"Authorization": token}, 401},
			{"right token", bearer, 202},
			{"scheme in lower case", map[string]string{"Authorization": "bearer " + token}, 202},
		} {
			code, body := ts.post(t, validBody(), tt.header)
			if code != tt.want {
				t.Errorf("%s: code %d, want %d (%v)", tt.name, code, tt.want, body)
			}
			if code == 401 && body["field"] != "Authorization" {
				t.Errorf("%s: 401 body %v does not name Authorization", tt.name, body)
			}
		}
		// Health and metrics stay open for probes and Prometheus.
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(ts.url + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d without credentials, want 200", path, resp.StatusCode)
			}
		}
		resp, err := http.Get(ts.url + "/v1/decisions")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("/v1/decisions without token: %d %q, want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if got := metricValue(t, ts, "smartscale_auth_failures_total", nil); got != 6 {
			t.Errorf("smartscale_auth_failures_total = %v, want 6 (5 posts, 1 decisions)", got)
		}
	})
	t.Run("basic", func(t *testing.T) {
		ts := start(t, &server.Credentials{Username: "alertmanager", Password: "pw"}, nil)
		basic := func(u, p string) map[string]string {
			req, _ := http.NewRequest("GET", "/", nil)
			req.SetBasicAuth(u, p)
			return map[string]string{"Authorization": req.Header.Get("Authorization")}
		}
		for _, tt := range []struct {
			name   string
			header map[string]string
			want   int
		}{
			{"missing", nil, 401},
			{"wrong password", basic("alertmanager", "nope"), 401},
			{"wrong user", basic("root", "pw"), 401},
			{"bearer instead", map[string]string{"Authorization": "Bearer pw"}, 401},
			{"right", basic("alertmanager", "pw"), 202},
		} {
			if code, body := ts.post(t, validBody(), tt.header); code != tt.want {
				t.Errorf("%s: code %d, want %d (%v)", tt.name, code, tt.want, body)
			}
		}
	})
}

func TestValidNotification(t *testing.T) {
	ts := start(t, &server.Credentials{BearerToken: token}, nil)
	code, body := ts.post(t, validBody(), bearer)
	if code != 202 || body["status"] != "accepted" {
		t.Fatalf("code %d body %v, want 202 accepted", code, body)
	}
	if n := len(body["decisions"].([]any)); n != 1 {
		t.Errorf("%d decisions, want 1", n)
	}
	ig := body["ignored"].([]any)
	if len(ig) != 1 || ig[0].(map[string]any)["reason"] != alert.ReasonNoAction {
		t.Errorf("ignored = %v, want the NodeNotReady alert with reason %s", ig, alert.ReasonNoAction)
	}
	got := ts.scaler.got[0]
	if len(got.Signals) != 1 || got.Signals[0].Urgency != alert.High || got.Signals[0].NodeGroup != "workers" {
		t.Errorf("scaler got %+v", got)
	}

	// Only ignored alerts: 200, nothing accepted.
	code, body = ts.post(t, alerttest.Notification("g", alerttest.Alert{Name: "X", Action: "scale_up", Status: "resolved"}), bearer)
	if code != 200 || body["status"] != "ignored" {
		t.Errorf("resolved-only notification: %d %v, want 200 ignored", code, body)
	}
	if got := metricValue(t, ts, "smartscale_alerts_ignored_total", map[string]string{"reason": alert.ReasonResolved}); got != 1 {
		t.Errorf("ignored{reason=resolved} = %v, want 1", got)
	}
	if got := metricValue(t, ts, "smartscale_alerts_received_total", map[string]string{"status": "firing"}); got != 2 {
		t.Errorf("received{status=firing} = %v, want 2", got)
	}
	if got := metricValue(t, ts, "smartscale_notifications_total", map[string]string{"result": "accepted"}); got != 1 {
		t.Errorf("notifications{result=accepted} = %v, want 1", got)
	}
}

func TestMalformedPayloads(t *testing.T) {
	ts := start(t, &server.Credentials{BearerToken: token}, nil)
	cases := alerttest.Malformed()
	if len(cases) < 30 {
		t.Fatalf("only %d malformed cases", len(cases))
	}
	bad := 0
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			h := map[string]string{"Authorization": "Bearer " + token}
			if tt.ContentType != "" {
				h["Content-Type"] = tt.ContentType
			}
			code, body := ts.post(t, []byte(tt.Body), h)
			if code != tt.Code {
				t.Errorf("code %d, want %d (%v)", code, tt.Code, body)
			}
			if body["field"] != tt.Field {
				t.Errorf("field %v, want %q (error %v)", body["field"], tt.Field, body["error"])
			}
			if msg, _ := body["error"].(string); msg == "" {
				t.Errorf("no error message in %v", body)
			}
		})
		bad++
	}
	if len(ts.scaler.got) != 0 {
		t.Errorf("scaler saw %d malformed notifications", len(ts.scaler.got))
	}
	if got := metricValue(t, ts, "smartscale_notifications_total", map[string]string{"result": "bad_request"}); int(got) != bad-1 {
		// The 413 is refused by the body limit before the handler counts it.
		t.Errorf("notifications{result=bad_request} = %v, want %d", got, bad-1)
	}
	if got := metricValue(t, ts, "smartscale_http_requests_total", map[string]string{"route": "/v1/alerts", "code": "413"}); got != 1 {
		t.Errorf("requests{code=413} = %v, want 1", got)
	}
}

func TestTwoMiBBodyIs413(t *testing.T) {
	ts := start(t, &server.Credentials{BearerToken: token}, nil)
	// Sent chunked, without Content-Length, so the limit must hold while reading.
	body := io.MultiReader(strings.NewReader(`{"version":"4","receiver":"`), strings.NewReader(strings.Repeat("a", 2<<20)), strings.NewReader(`"}`))
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/v1/alerts", body)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("code %d, want 413", resp.StatusCode)
	}
}

func TestUnavailableIs503(t *testing.T) {
	ts := start(t, &server.Credentials{BearerToken: token}, nil)
	ts.scaler.err = fmt.Errorf("acquire lock: %w", decision.ErrUnavailable)
	if code, body := ts.post(t, validBody(), bearer); code != 503 {
		t.Errorf("code %d (%v), want 503 so Alertmanager retries", code, body)
	}
	ts.scaler.err = errors.New("bug")
	if code, _ := ts.post(t, validBody(), bearer); code != 500 {
		t.Errorf("code %d, want 500 for an unexpected error", code)
	}
	if got := metricValue(t, ts, "smartscale_notifications_total", map[string]string{"result": "unavailable"}); got != 1 {
		t.Errorf("notifications{result=unavailable} = %v, want 1", got)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	ts := start(t, &server.Credentials{BearerToken: token}, nil)
	ts.scaler.panicMsg = "boom"
	if code, _ := ts.post(t, validBody(), bearer); code != 500 {
		t.Errorf("code %d, want 500", code)
	}
	ts.scaler.panicMsg = ""
	if code, _ := ts.post(t, validBody(), bearer); code != 202 {
		t.Errorf("after a panic: code %d, want 202", code)
	}
}

func TestReadyz(t *testing.T) {
	var mu sync.Mutex
	storeErr := errors.New("dynamodb: connection refused")
	ts := start(t, nil, map[string]server.Check{
		"state": func(context.Context) error { mu.Lock(); defer mu.Unlock(); return storeErr },
		"kube":  func(context.Context) error { return nil },
	})
	get := func() (int, string) {
		resp, err := http.Get(ts.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 503 || !strings.Contains(body, "connection refused") || strings.Contains(body, "kube") {
		t.Errorf("readyz = %d %s, want 503 naming the state check only", code, body)
	}
	mu.Lock()
	storeErr = nil
	mu.Unlock()
	if code, _ := get(); code != 200 {
		t.Errorf("readyz = %d, want 200", code)
	}
}

func TestDecisionsEndpoint(t *testing.T) {
	ts := start(t, &server.Credentials{BearerToken: token}, nil)
	for _, tt := range []struct {
		query string
		want  int
		field string
	}{
		{"", 200, ""},
		{"?group=workers&limit=5", 200, ""},
		{"?limit=0", 400, "limit"},
		{"?limit=abc", 400, "limit"},
		{"?limit=100000", 400, "limit"},
		{"?group=gpu", 404, "group"},
	} {
		req, _ := http.NewRequest("GET", ts.url+"/v1/decisions"+tt.query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || (tt.field != "" && body["field"] != tt.field) {
			t.Errorf("%q: %d %v, want %d naming %q", tt.query, resp.StatusCode, body, tt.want, tt.field)
		}
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	ts := start(t, nil, nil)
	ts.scaler.block = make(chan struct{})
	result := make(chan int, 1)
	go func() {
		code, _ := ts.post(t, validBody(), nil)
		result <- code
	}()
	// Wait until the request is inside the handler, then ask to stop.
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, ts, "smartscale_alerts_received_total", map[string]string{"status": "firing"}) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("request never reached the handler")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.stop()
	time.Sleep(100 * time.Millisecond)
	// New connections are refused while the in-flight request still runs.
	if _, err := http.Get(ts.url + "/healthz"); err == nil {
		t.Error("server accepted a new request during shutdown")
	}
	close(ts.scaler.block)
	if code := <-result; code != 202 {
		t.Errorf("in-flight request ended with %d, want 202", code)
	}
}

// metricValue scrapes /metrics over HTTP and returns the value of the
// series of name whose labels include want.
func metricValue(t *testing.T, ts *testServer, name string, want map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	mf, ok := families[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
