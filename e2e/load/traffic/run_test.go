package traffic_test

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartscale/smartscale/cmd/demoapp/app"
	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/load/traffic"
)

// demo starts the demo application in-process on a free loopback port.
func demo(t *testing.T, cfg app.Config) (*app.App, string) {
	t.Helper()
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return a, srv.URL
}

// served sums http_requests_total{handler="work"} by code, as the app counts.
func served(t *testing.T, base string) map[string]float64 {
	t.Helper()
	out, err := harness.CounterBy(t.Context(), base+"/metrics", "http_requests_total", "code", map[string]string{"handler": "work"})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunShapesTraffic(t *testing.T) {
	a, err := app.New(app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Handler())
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	base := srv.URL
	p := traffic.Profile{Name: "test", Phases: []traffic.Phase{
		{Name: "ramp", Duration: time.Second, From: 5, To: 25},
		{Name: "hold", Duration: time.Second, From: 20, To: 20},
		{Name: "spike", Duration: time.Second, From: 60, To: 60},
		{Name: "calm", Duration: 500 * time.Millisecond},
		{Name: "cool-down", Duration: time.Second, From: 10, To: 10},
	}}
	var started, done []string
	rep, err := traffic.Run(t.Context(), p, base+"/", traffic.Options{
		PhaseStart: func(ph traffic.Phase) { started = append(started, ph.Name) },
		PhaseDone:  func(pr traffic.PhaseReport) { done = append(done, pr.Name) },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Truncated {
		t.Error("report truncated, want complete")
	}
	if len(rep.Phases) != len(p.Phases) {
		t.Fatalf("%d phase reports, want %d", len(rep.Phases), len(p.Phases))
	}
	if strings.Join(started, ",") != "ramp,hold,spike,calm,cool-down" || strings.Join(done, ",") != strings.Join(started, ",") {
		t.Errorf("callbacks: started %v, done %v", started, done)
	}
	var sum uint64
	for i, pr := range rep.Phases {
		ph := p.Phases[i]
		planned := (ph.From + ph.To) / 2 * ph.Duration.Seconds()
		// The pacers send floor(planned) hits; a starved machine may fall
		// behind, never ahead.
		if float64(pr.Requests) > planned+1e-9 || float64(pr.Requests) < 0.6*planned {
			t.Errorf("phase %s sent %d requests, planned %.1f", pr.Name, pr.Requests, planned)
		}
		if pr.Requests > 0 && (pr.Success != 1 || pr.StatusCodes["200"] != int(pr.Requests)) {
			t.Errorf("phase %s: success %v, codes %v", pr.Name, pr.Success, pr.StatusCodes)
		}
		if pr.Requests > 0 && (pr.P50 <= 0 || pr.P50 > pr.P95 || pr.P95 > pr.P99 || pr.P99 > pr.Max) {
			t.Errorf("phase %s latencies out of order: p50 %v p95 %v p99 %v max %v", pr.Name, pr.P50, pr.P95, pr.P99, pr.Max)
		}
		if pr.Elapsed < ph.Duration*8/10 && pr.Requests > 0 {
			t.Errorf("phase %s ended after %v of %v", pr.Name, pr.Elapsed, ph.Duration)
		}
		sum += pr.Requests
	}
	if calm := rep.Phases[3]; calm.Requests != 0 || calm.Elapsed < calm.Duration {
		t.Errorf("calm phase: %d requests in %v, want none in ≥ %v", calm.Requests, calm.Elapsed, calm.Duration)
	}
	if rep.Total.Requests != sum {
		t.Errorf("total %d requests, phases sum to %d", rep.Total.Requests, sum)
	}
	// Phases share keep-alive connections instead of dialling per request.
	if n := conns.Load(); n == 0 || n > int64(rep.Total.Requests)/2 {
		t.Errorf("%d connections for %d requests", n, rep.Total.Requests)
	}
	t.Logf("%d requests over %d connections", rep.Total.Requests, conns.Load())
	// The application counted every request the load generator sent.
	got := served(t, base)
	if got["200"] != float64(rep.Total.Requests) || len(got) != 1 {
		t.Errorf("app counted %v, load sent %d (all 200)", got, rep.Total.Requests)
	}
}

// Phases keep their planned schedule when answers are slow: the next phase
// starts sending while the previous one's answers are still on their way.
func TestRunPhasesKeepSchedule(t *testing.T) {
	_, base := demo(t, app.Config{Latency: time.Second})
	p := traffic.Profile{Name: "slow", Phases: []traffic.Phase{
		{Name: "a", Duration: 500 * time.Millisecond, From: 10, To: 10},
		{Name: "b", Duration: 500 * time.Millisecond, From: 10, To: 10},
	}}
	var events []string
	rep, err := traffic.Run(t.Context(), p, base+"/", traffic.Options{
		PhaseStart: func(ph traffic.Phase) { events = append(events, "start "+ph.Name) },
		PhaseDone:  func(pr traffic.PhaseReport) { events = append(events, "done "+pr.Name) },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := strings.Join(events, ", "); got != "start a, start b, done a, done b" {
		t.Errorf("events: %s", got)
	}
	for _, pr := range rep.Phases {
		if pr.Requests != 5 || pr.StatusCodes["200"] != 5 {
			t.Errorf("phase %s: %d requests, codes %v; want 5 answered 200", pr.Name, pr.Requests, pr.StatusCodes)
		}
		if pr.Elapsed < time.Second {
			t.Errorf("phase %s elapsed %v, shorter than one answer", pr.Name, pr.Elapsed)
		}
	}
}

func TestRunErrorInjection(t *testing.T) {
	_, base := demo(t, app.Config{ErrorRate: 0.5})
	p := traffic.Profile{Name: "errors", Phases: []traffic.Phase{{Name: "hold", Duration: 1500 * time.Millisecond, From: 40, To: 40}}}
	rep, err := traffic.Run(t.Context(), p, base+"/", traffic.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	n := int(rep.Total.Requests)
	if n < 20 {
		t.Fatalf("only %d requests sent", n)
	}
	codes := rep.Total.StatusCodes
	if codes["500"] != n/2 || codes["200"] != n-n/2 {
		t.Errorf("load saw %v over %d requests, want 500×%d 200×%d", codes, n, n/2, n-n/2)
	}
	if got := served(t, base); got["500"] != float64(codes["500"]) || got["200"] != float64(codes["200"]) {
		t.Errorf("app counted %v, load saw %v", got, codes)
	}
	if math.Abs(rep.Total.Success-float64(n-n/2)/float64(n)) > 1e-9 {
		t.Errorf("success %v", rep.Total.Success)
	}
	if len(rep.Total.Errors) != 1 || !strings.Contains(rep.Total.Errors[0], "500") {
		t.Errorf("errors %q, want the one 500 status", rep.Total.Errors)
	}
}

// The hard cap cuts requests in flight (here held by a minute of injected
// latency) instead of waiting for their timeout.
func TestRunHardCapCutsInFlight(t *testing.T) {
	_, base := demo(t, app.Config{Latency: app.MaxLatency})
	p := traffic.Profile{Name: "slow", Phases: []traffic.Phase{
		{Name: "hold", Duration: 20 * time.Second, From: 10, To: 10},
		{Name: "never", Duration: 20 * time.Second, From: 10, To: 10},
	}}
	began := time.Now()
	rep, err := traffic.Run(t.Context(), p, base+"/", traffic.Options{MaxDuration: 700 * time.Millisecond, Timeout: time.Minute})
	took := time.Since(began)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !rep.Truncated || len(rep.Phases) != 1 {
		t.Errorf("truncated %v with %d phases, want truncated after 1", rep.Truncated, len(rep.Phases))
	}
	// Generous: the point is "not the 60 s latency, not the 40 s profile".
	if took > 10*time.Second {
		t.Errorf("Run took %v with a 700 ms cap", took)
	}
	n := rep.Total.Requests
	if n == 0 || rep.Total.StatusCodes["0"] != int(n) {
		t.Errorf("codes %v over %d requests, want all unanswered", rep.Total.StatusCodes, n)
	}
	// The app saw the clients leave and freed the handlers (499). A request
	// cut at the very moment of the cap may never have reached a handler,
	// so the app counts at most n, and nothing but 499s; wait until its
	// count has settled.
	deadline := time.Now().Add(10 * time.Second)
	var got map[string]float64
	for last, stable := -1.0, 0; stable < 10; time.Sleep(50 * time.Millisecond) {
		got = served(t, base)
		if got["499"] == last && last > 0 {
			stable++
		} else {
			stable, last = 0, got["499"]
		}
		if time.Now().After(deadline) {
			t.Fatalf("app counted %v, still changing or none after 10 s (%d sent)", got, n)
		}
	}
	if len(got) != 1 || got["499"] > float64(n) {
		t.Errorf("app counted %v, want only 499s, at most the %d sent", got, n)
	}
}

// At a low rate vegeta would sleep a whole interval before noticing a stop;
// the pacer's own sleep is cut by the cap.
func TestRunLowRateStopsAtCap(t *testing.T) {
	_, base := demo(t, app.Config{})
	p := traffic.Profile{Name: "slow", Phases: []traffic.Phase{{Name: "trickle", Duration: 30 * time.Second, From: 0.1, To: 0.1}}}
	began := time.Now()
	rep, err := traffic.Run(t.Context(), p, base+"/", traffic.Options{MaxDuration: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Run took %v with a 300 ms cap at 0.1 requests/s", took)
	}
	if !rep.Truncated || rep.Total.Requests != 0 {
		t.Errorf("truncated %v, %d requests; want truncated before the first hit (due at 10 s)", rep.Truncated, rep.Total.Requests)
	}
}

func TestRunContextCancelled(t *testing.T) {
	_, base := demo(t, app.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	p := traffic.Profile{Name: "long", Phases: []traffic.Phase{{Name: "hold", Duration: 30 * time.Second, From: 20, To: 20}}}
	time.AfterFunc(400*time.Millisecond, cancel)
	rep, err := traffic.Run(ctx, p, base+"/", traffic.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v, want context.Canceled", err)
	}
	if !rep.Truncated || len(rep.Phases) != 1 || rep.Total.Requests == 0 {
		t.Errorf("partial report: truncated %v, %d phases, %d requests", rep.Truncated, len(rep.Phases), rep.Total.Requests)
	}
	if rep.Elapsed > 10*time.Second {
		t.Errorf("Run returned after %v", rep.Elapsed)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	good := traffic.Profile{Name: "ok", Phases: []traffic.Phase{{Name: "hold", Duration: time.Second, From: 1, To: 1}}}
	for _, target := range []string{"", "127.0.0.1:8081", "ftp://host/", "http://", "http://[::1"} {
		if _, err := traffic.Run(t.Context(), good, target, traffic.Options{}); err == nil || !strings.HasPrefix(err.Error(), "target:") {
			t.Errorf("target %q: err %v, want a target error", target, err)
		}
	}
	bad := traffic.Profile{Phases: []traffic.Phase{{Name: "x", Duration: 0, From: 1, To: 1}}}
	if _, err := traffic.Run(t.Context(), bad, "http://127.0.0.1:1/", traffic.Options{}); err == nil {
		t.Error("zero-length phase accepted")
	}
}
