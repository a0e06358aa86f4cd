package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/smartscale/smartscale/cmd/demoapp/app"
)

func start(t *testing.T, cfg app.Config) (*app.App, *httptest.Server) {
	t.Helper()
	a, err := app.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, srv
}

func do(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(body)
}

func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := do(t, http.MethodGet, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// series finds the metric of fam whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	fam := fams[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func counter(fams map[string]*dto.MetricFamily, code string) float64 {
	m := series(fams, "http_requests_total", map[string]string{"handler": "work", "method": "get", "code": code})
	return m.GetCounter().GetValue()
}

func TestMetricsMove(t *testing.T) {
	_, srv := start(t, app.Config{})
	for range 7 {
		if code, body := do(t, http.MethodGet, srv.URL+"/"); code != http.StatusOK || !strings.HasPrefix(body, "ok ") {
			t.Fatalf("GET /: %d %q", code, body)
		}
	}
	for range 3 {
		if code, body := do(t, http.MethodGet, srv.URL+"/work"); code != http.StatusOK {
			t.Fatalf("GET /work: %d %q", code, body)
		}
	}
	if code, body := do(t, http.MethodGet, srv.URL+"/burn?ms=5"); code != http.StatusOK {
		t.Fatalf("GET /burn: %d %q", code, body)
	}
	// Neither of these is the application's traffic.
	do(t, http.MethodGet, srv.URL+"/healthz")
	do(t, http.MethodGet, srv.URL+"/admin")

	fams := scrape(t, srv.URL)
	if got := counter(fams, "200"); got != 10 {
		t.Errorf(`http_requests_total{handler="work",code="200"} = %v, want 10`, got)
	}
	burn := series(fams, "http_requests_total", map[string]string{"handler": "burn", "code": "200"})
	if got := burn.GetCounter().GetValue(); got != 1 {
		t.Errorf(`http_requests_total{handler="burn",code="200"} = %v, want 1`, got)
	}
	if n := len(fams["http_requests_total"].GetMetric()); n != 2 {
		t.Errorf("http_requests_total has %d series, want 2 (work, burn): /healthz, /admin, /metrics must not count", n)
	}
	h := series(fams, "http_request_duration_seconds", map[string]string{"handler": "work", "code": "200"}).GetHistogram()
	if h.GetSampleCount() != 10 {
		t.Errorf("histogram count = %d, want 10", h.GetSampleCount())
	}
	var bounds []float64
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) { // the text format's own +Inf bucket
			bounds = append(bounds, b.GetUpperBound())
		}
	}
	if fmt.Sprint(bounds) != fmt.Sprint(app.Buckets) {
		t.Errorf("buckets = %v, want %v", bounds, app.Buckets)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "demoapp_injected_latency_seconds", "demoapp_injected_error_ratio"} {
		if fams[name] == nil {
			t.Errorf("%s missing from /metrics", name)
		}
	}
}

// N requests at rate R, sent concurrently, hold exactly floor(N·R) errors,
// and the counter says the same as the responses.
func TestErrorRateExact(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		n    int
	}{{0.5, 200}, {0.25, 200}, {0.1, 150}, {1, 20}, {0, 50}, {0.333, 300}} {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			_, srv := start(t, app.Config{ErrorRate: tc.rate})
			var mu sync.Mutex
			codes := map[int]int{}
			var wg sync.WaitGroup
			sem := make(chan struct{}, 16)
			for range tc.n {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					resp, err := http.Get(srv.URL + "/")
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					codes[resp.StatusCode]++
					mu.Unlock()
				})
			}
			wg.Wait()
			want := int(math.Floor(float64(tc.n)*tc.rate + 1e-9))
			if codes[500] != want || codes[200] != tc.n-want {
				t.Fatalf("codes = %v, want 500×%d and 200×%d", codes, want, tc.n-want)
			}
			fams := scrape(t, srv.URL)
			if got := counter(fams, "500"); got != float64(want) {
				t.Errorf(`http_requests_total{code="500"} = %v, want %d`, got, want)
			}
			if got := counter(fams, "200"); got != float64(tc.n-want) {
				t.Errorf(`http_requests_total{code="200"} = %v, want %d`, got, tc.n-want)
			}
		})
	}
}

// Setting the rate restarts the count: what happened before does not leak
// into the next window.
func TestSetErrorRateRestartsCount(t *testing.T) {
	a, srv := start(t, app.Config{ErrorRate: 0.5})
	do(t, http.MethodGet, srv.URL+"/") // accumulator now half-way to an error
	if err := a.SetErrorRate(0.5); err != nil {
		t.Fatal(err)
	}
	if code, _ := do(t, http.MethodGet, srv.URL+"/"); code != http.StatusOK {
		t.Errorf("first request after SetErrorRate(0.5) = %d, want 200 (count restarted)", code)
	}
	if code, _ := do(t, http.MethodGet, srv.URL+"/"); code != http.StatusInternalServerError {
		t.Errorf("second request after SetErrorRate(0.5) = %d, want 500", code)
	}
}

func TestLatencyInjected(t *testing.T) {
	_, srv := start(t, app.Config{})
	code, body := do(t, http.MethodPut, srv.URL+"/admin/latency?ms=300")
	if code != http.StatusOK {
		t.Fatalf("PUT /admin/latency: %d %s", code, body)
	}
	var k app.Knobs
	if err := json.Unmarshal([]byte(body), &k); err != nil || k.LatencyMS != 300 {
		t.Fatalf("PUT /admin/latency answered %q (%v), want latency_ms 300", body, err)
	}
	const n = 3
	for range n {
		began := time.Now()
		if code, _ := do(t, http.MethodGet, srv.URL+"/"); code != http.StatusOK {
			t.Fatalf("GET /: %d", code)
		}
		if took := time.Since(began); took < 300*time.Millisecond {
			t.Errorf("GET / took %v with 300 ms injected", took)
		}
	}
	// 300 ms lands in (0.25, 0.5]: the histogram must say so, bucket by bucket.
	h := series(scrape(t, srv.URL), "http_request_duration_seconds", map[string]string{"handler": "work"}).GetHistogram()
	for _, b := range h.GetBucket() {
		want := uint64(0)
		if b.GetUpperBound() >= 0.5 {
			want = n
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if h.GetSampleSum() < n*0.3 {
		t.Errorf("histogram sum %v < %v", h.GetSampleSum(), n*0.3)
	}

	// 0 turns it off.
	if code, body := do(t, http.MethodPost, srv.URL+"/admin/latency?ms=0"); code != http.StatusOK {
		t.Fatalf("POST /admin/latency?ms=0: %d %s", code, body)
	}
	h = series(scrape(t, srv.URL), "http_request_duration_seconds", map[string]string{"handler": "work"}).GetHistogram()
	do(t, http.MethodGet, srv.URL+"/")
	h2 := series(scrape(t, srv.URL), "http_request_duration_seconds", map[string]string{"handler": "work"}).GetHistogram()
	if d := h2.GetSampleSum() - h.GetSampleSum(); d >= 0.25 {
		t.Errorf("request after latency 0 took %v s", d)
	}
}

// A client that gives up during the injected latency frees the handler at
// once and is counted as 499, not as a server error.
func TestLatencyClientGone(t *testing.T) {
	_, srv := start(t, app.Config{Latency: app.MaxLatency})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/", nil)
	if resp, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("GET / with a 100 ms deadline: %v, want deadline exceeded", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for counter(scrape(t, srv.URL), "499") != 1 {
		if time.Now().After(deadline) {
			t.Fatal(`http_requests_total{code="499"} never reached 1: the handler kept sleeping`)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBurn(t *testing.T) {
	_, srv := start(t, app.Config{})
	began := time.Now()
	code, body := do(t, http.MethodGet, srv.URL+"/burn?ms=100")
	if code != http.StatusOK {
		t.Fatalf("GET /burn?ms=100: %d %s", code, body)
	}
	var got struct {
		BurnedMS int64 `json:"burned_ms"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.BurnedMS < 100 {
		t.Errorf("GET /burn?ms=100 answered %q (%v), want burned_ms ≥ 100", body, err)
	}
	if took := time.Since(began); took < 100*time.Millisecond {
		t.Errorf("GET /burn?ms=100 took %v", took)
	}
}

func TestBadInput(t *testing.T) {
	a, srv := start(t, app.Config{Latency: 7 * time.Millisecond, ErrorRate: 0.2})
	for _, tc := range []struct {
		method, path, param string
	}{
		{http.MethodGet, "/burn", "ms"},
		{http.MethodGet, "/burn?ms=abc", "ms"},
		{http.MethodGet, "/burn?ms=-1", "ms"},
		{http.MethodGet, "/burn?ms=10001", "ms"},
		{http.MethodGet, "/burn?ms=1.5", "ms"},
		{http.MethodPut, "/admin/latency", "ms"},
		{http.MethodPut, "/admin/latency?ms=x", "ms"},
		{http.MethodPut, "/admin/latency?ms=-5", "ms"},
		{http.MethodPost, "/admin/latency?ms=60001", "ms"},
		{http.MethodPut, "/admin/errors", "rate"},
		{http.MethodPut, "/admin/errors?rate=abc", "rate"},
		{http.MethodPut, "/admin/errors?rate=1.5", "rate"},
		{http.MethodPost, "/admin/errors?rate=-0.1", "rate"},
		{http.MethodPut, "/admin/errors?rate=NaN", "rate"},
		{http.MethodPut, "/admin/errors?rate=Inf", "rate"},
	} {
		code, body := do(t, tc.method, srv.URL+tc.path)
		if code != http.StatusBadRequest || !strings.HasPrefix(body, tc.param+":") {
			t.Errorf("%s %s = %d %q, want 400 naming %q", tc.method, tc.path, code, body, tc.param)
		}
	}
	if k := a.Knobs(); k != (app.Knobs{LatencyMS: 7, ErrorRate: 0.2}) {
		t.Errorf("knobs after bad input = %+v, want unchanged", k)
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/admin/latency?ms=5", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/admin/errors?rate=0", http.StatusMethodNotAllowed},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
	} {
		if code, body := do(t, tc.method, srv.URL+tc.path); code != tc.want {
			t.Errorf("%s %s = %d %q, want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []app.Config{
		{Latency: -time.Second},
		{Latency: app.MaxLatency + time.Millisecond},
		{ErrorRate: -0.01},
		{ErrorRate: 1.01},
		{ErrorRate: math.NaN()},
	} {
		if _, err := app.New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

func TestAdminRoundTrip(t *testing.T) {
	_, srv := start(t, app.Config{})
	if code, body := do(t, http.MethodPut, srv.URL+"/admin/latency?ms=2500"); code != http.StatusOK {
		t.Fatalf("PUT latency: %d %s", code, body)
	}
	if code, body := do(t, http.MethodPost, srv.URL+"/admin/errors?rate=0.05"); code != http.StatusOK {
		t.Fatalf("POST errors: %d %s", code, body)
	}
	code, body := do(t, http.MethodGet, srv.URL+"/admin")
	var k app.Knobs
	if err := json.Unmarshal([]byte(body), &k); code != http.StatusOK || err != nil {
		t.Fatalf("GET /admin: %d %q %v", code, body, err)
	}
	if k != (app.Knobs{LatencyMS: 2500, ErrorRate: 0.05}) {
		t.Errorf("GET /admin = %+v", k)
	}
	fams := scrape(t, srv.URL)
	if v := fams["demoapp_injected_latency_seconds"].GetMetric()[0].GetGauge().GetValue(); v != 2.5 {
		t.Errorf("demoapp_injected_latency_seconds = %v, want 2.5", v)
	}
	if v := fams["demoapp_injected_error_ratio"].GetMetric()[0].GetGauge().GetValue(); v != 0.05 {
		t.Errorf("demoapp_injected_error_ratio = %v, want 0.05", v)
	}
}

func BenchmarkWork(b *testing.B) {
	a, err := app.New(app.Config{})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Handler()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("code %d", w.Code)
		}
	}
}
