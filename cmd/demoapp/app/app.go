// Package app is the demo application of the end-to-end scenarios: a small
// HTTP service whose latency, error rate and CPU use can be turned up at
// run time, instrumented the way rules/app.yaml expects an application to be.
//
// Endpoints:
//
//	GET  /, /work              a normal request: a little CPU work, then the
//	                           injected latency; answers 500 for the injected
//	                           fraction of requests, 200 otherwise
//	GET  /burn?ms=N            burns CPU for N ms (0..10000), then 200
//	GET  /admin                the knobs as JSON {"latency_ms":…,"error_rate":…}
//	PUT|POST /admin/latency?ms=N    latency added to every / request (0..60000, 0 = off)
//	PUT|POST /admin/errors?rate=R   fraction of / requests answering 500 (0..1)
//	GET  /metrics              Prometheus metrics
//	GET  /healthz              200 "ok"
//
// Metrics (only / and /burn are counted, so scrapes, health checks and knob
// changes do not move the application's figures):
//
//	http_requests_total{handler="work"|"burn", method, code}
//	http_request_duration_seconds{handler, method, code}   histogram
//	demoapp_injected_latency_seconds, demoapp_injected_error_ratio
//
// The histogram's buckets are dense between 1 s and 3 s so that
// histogram_quantile resolves the p95 > 2 s alert of rules/app.yaml: with
// 2500 ms injected every request lands in (2.5, 3] and the p95 reads ≈ 2.98 s;
// with 1500 ms, in (1.5, 2] and ≈ 1.98 s, below the threshold. /burn requests
// are in the same histogram (they are slow requests of the same job), so a
// scenario that must not trip the latency alert keeps its burns short or rare.
//
// The admin endpoints have no authentication: the app is a test fixture and
// listens on loopback unless told otherwise.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	// MaxLatency bounds the injected latency: beyond a minute clients and
	// scrapes time out and the scenario measures timeouts, not latency.
	MaxLatency = 60 * time.Second
	// MaxBurn bounds one /burn request so a typo cannot pin a core for hours.
	MaxBurn = 10 * time.Second

	// StatusClientClosed is recorded when the client goes away before the
	// answer (nginx's 499). It is not a 5xx, so a load generator cut short by
	// its deadline does not feed the error-rate alert.
	StatusClientClosed = 499

	perMillion = 1_000_000
)

// Buckets of http_request_duration_seconds.
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10}

// Config is the app's state at start; the admin endpoints change it later.
type Config struct {
	Latency   time.Duration // added to every / request, 0..MaxLatency
	ErrorRate float64       // fraction of / requests answering 500, 0..1
	Log       *slog.Logger  // nil: discard
}

// Knobs is what GET /admin shows.
type Knobs struct {
	LatencyMS int64   `json:"latency_ms"`
	ErrorRate float64 `json:"error_rate"`
}

// App is the demo application. Its handler is safe for concurrent use.
type App struct {
	log *slog.Logger
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	latGauge prometheus.Gauge
	errGauge prometheus.Gauge

	// payload is what a normal request hashes: a fixed amount of real CPU
	// work, so that request rate shows up as CPU use.
	payload []byte

	mu      sync.Mutex
	latency time.Duration
	// errPPM is the error rate in failures per million requests, and errAcc
	// accumulates it per request: a request fails when the accumulator
	// crosses one million. Integer arithmetic makes the count exact (N
	// requests at rate R fail floor(N·R) times from the moment R is set,
	// whatever the concurrency) where a random draw would only be close.
	errPPM int64
	errAcc int64
}

// New returns an app with its own metrics registry (Go and process
// collectors included).
func New(cfg Config) (*App, error) {
	if err := checkLatency(cfg.Latency); err != nil {
		return nil, err
	}
	if err := checkErrorRate(cfg.ErrorRate); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{
		log: log,
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served by the application, by handler, method and status code.",
		}, []string{"handler", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve an application request, injected latency included.",
			Buckets: Buckets,
		}, []string{"handler", "method", "code"}),
		latGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "demoapp_injected_latency_seconds",
			Help: "Latency currently added to every / request.",
		}),
		errGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "demoapp_injected_error_ratio",
			Help: "Fraction of / requests currently answered with 500.",
		}),
		payload: make([]byte, 16<<10),
	}
	for i := range a.payload {
		a.payload[i] = byte(i)
	}
	a.reg.MustRegister(a.requests, a.duration, a.latGauge, a.errGauge,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.setLatency(cfg.Latency)
	a.setErrorRate(cfg.ErrorRate)
	return a, nil
}

// Handler serves every endpoint of the app.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	work := a.instrument("work", http.HandlerFunc(a.serveWork))
	mux.Handle("GET /{$}", work)
	mux.Handle("GET /work", work)
	mux.Handle("GET /burn", a.instrument("burn", http.HandlerFunc(a.serveBurn)))
	mux.HandleFunc("GET /admin", a.serveKnobs)
	mux.HandleFunc("PUT /admin/latency", a.serveSetLatency)
	mux.HandleFunc("POST /admin/latency", a.serveSetLatency)
	mux.HandleFunc("PUT /admin/errors", a.serveSetErrorRate)
	mux.HandleFunc("POST /admin/errors", a.serveSetErrorRate)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// Knobs returns the current latency and error rate.
func (a *App) Knobs() Knobs {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Knobs{LatencyMS: a.latency.Milliseconds(), ErrorRate: float64(a.errPPM) / perMillion}
}

// SetLatency sets the latency added to every / request (0 turns it off).
func (a *App) SetLatency(d time.Duration) error {
	if err := checkLatency(d); err != nil {
		return err
	}
	a.setLatency(d)
	a.log.Info("knob set", "knob", "latency", "latency_ms", d.Milliseconds())
	return nil
}

// SetErrorRate sets the fraction of / requests answering 500 and restarts
// the count, so the next N requests hold exactly floor(N·rate) errors.
func (a *App) SetErrorRate(rate float64) error {
	if err := checkErrorRate(rate); err != nil {
		return err
	}
	a.setErrorRate(rate)
	a.log.Info("knob set", "knob", "error_rate", "error_rate", rate)
	return nil
}

func (a *App) setLatency(d time.Duration) {
	a.mu.Lock()
	a.latency = d
	a.mu.Unlock()
	a.latGauge.Set(d.Seconds())
}

func (a *App) setErrorRate(rate float64) {
	a.mu.Lock()
	a.errPPM = int64(math.Round(rate * perMillion))
	a.errAcc = 0
	a.mu.Unlock()
	a.errGauge.Set(rate)
}

// next returns the latency of the next / request and whether it fails.
func (a *App) next() (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errAcc += a.errPPM
	if a.errAcc >= perMillion {
		a.errAcc -= perMillion
		return a.latency, true
	}
	return a.latency, false
}

func (a *App) instrument(handler string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"handler": handler}
	return promhttp.InstrumentHandlerDuration(a.duration.MustCurryWith(labels),
		promhttp.InstrumentHandlerCounter(a.requests.MustCurryWith(labels), h))
}

func (a *App) serveWork(w http.ResponseWriter, r *http.Request) {
	latency, fail := a.next()
	sum := sha256.Sum256(a.payload)
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			w.WriteHeader(StatusClientClosed)
			return
		}
	}
	if fail {
		http.Error(w, "injected error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "ok %s\n", hex.EncodeToString(sum[:4]))
}

func (a *App) serveBurn(w http.ResponseWriter, r *http.Request) {
	ms, err := intParam(r, "ms", 0, MaxBurn.Milliseconds())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	burned := burn(r.Context(), time.Duration(ms)*time.Millisecond)
	if r.Context().Err() != nil {
		w.WriteHeader(StatusClientClosed)
		return
	}
	writeJSON(w, map[string]int64{"burned_ms": burned.Milliseconds()})
}

// burn keeps one core busy hashing for d or until ctx ends, and returns how
// long it ran.
func burn(ctx context.Context, d time.Duration) time.Duration {
	start := time.Now()
	sum := sha256.Sum256(nil)
	for i := 0; ; i++ {
		// Reading the clock and the context costs more than a hash of
		// 32 bytes; look every 64 hashes (about 15 µs).
		if i%64 == 0 && (time.Since(start) >= d || ctx.Err() != nil) {
			return time.Since(start)
		}
		sum = sha256.Sum256(sum[:])
	}
}

func (a *App) serveKnobs(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, a.Knobs())
}

func (a *App) serveSetLatency(w http.ResponseWriter, r *http.Request) {
	ms, err := intParam(r, "ms", 0, MaxLatency.Milliseconds())
	if err == nil {
		err = a.SetLatency(time.Duration(ms) * time.Millisecond)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, a.Knobs())
}

func (a *App) serveSetErrorRate(w http.ResponseWriter, r *http.Request) {
	raw := r.FormValue("rate")
	rate, err := strconv.ParseFloat(raw, 64)
	if err == nil {
		err = a.SetErrorRate(rate)
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("rate: want a fraction between 0 and 1, got %q", raw), http.StatusBadRequest)
		return
	}
	writeJSON(w, a.Knobs())
}

// intParam reads an integer query (or form) parameter within [lo, hi].
func intParam(r *http.Request, name string, lo, hi int64) (int64, error) {
	raw := r.FormValue(name)
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s: want an integer number of milliseconds between %d and %d, got %q", name, lo, hi, raw)
	}
	return v, nil
}

func checkLatency(d time.Duration) error {
	if d < 0 || d > MaxLatency {
		return fmt.Errorf("latency: want between 0 and %s, got %s", MaxLatency, d)
	}
	return nil
}

func checkErrorRate(rate float64) error {
	// The negated form also rejects NaN.
	if !(rate >= 0 && rate <= 1) {
		return fmt.Errorf("error rate: want a fraction between 0 and 1, got %v", rate)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// An error here means the client went away: nobody is left to tell.
	_ = json.NewEncoder(w).Encode(v)
}
