package cloudwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"
)

// scalerMetrics mirrors internal/scaler/metrics.go (names, labels, buckets
// and the series it creates up front); TestKeyFiguresMatchScalerMetrics
// keeps the names in step.
type scalerMetrics struct {
	reg           *prometheus.Registry
	decisions     *prometheus.CounterVec
	nodes         *prometheus.GaugeVec
	scaleDuration *prometheus.HistogramVec
	drainDuration *prometheus.HistogramVec
	lock          *prometheus.CounterVec
	inFlight      *prometheus.GaugeVec
	cost          *prometheus.GaugeVec
}

func newScalerMetrics(groups ...string) *scalerMetrics {
	m := &scalerMetrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smartscale_decisions_total", Help: "h"},
			[]string{"group", "action", "result"}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smartscale_nodes", Help: "h"},
			[]string{"group", "zone", "market"}),
		scaleDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "smartscale_scale_duration_seconds", Help: "h",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 180, 300, 600, 900}}, []string{"action", "result"}),
		drainDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "smartscale_drain_duration_seconds", Help: "h",
			Buckets: []float64{1, 5, 10, 30, 60, 90, 120, 180, 300}}, []string{"action"}),
		lock:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smartscale_lock_contention_total", Help: "h"}, []string{"group"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smartscale_operations_in_flight", Help: "h"}, []string{"group"}),
		cost:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smartscale_estimated_hourly_cost_dollars", Help: "h"}, []string{"group"}),
	}
	m.reg.MustRegister(m.decisions, m.nodes, m.scaleDuration, m.drainDuration, m.lock, m.inFlight, m.cost)
	for _, g := range groups {
		m.inFlight.WithLabelValues(g)
		m.lock.WithLabelValues(g)
		m.cost.WithLabelValues(g)
		for _, z := range []string{"us-east-1a", "us-east-1b"} {
			for _, mk := range []string{"spot", "on_demand"} {
				m.nodes.WithLabelValues(g, z, mk)
			}
		}
		for _, a := range []string{"scale_up", "scale_down"} {
			for _, r := range []string{"accepted", "ignored", "succeeded", "failed"} {
				m.decisions.WithLabelValues(g, a, r)
			}
		}
	}
	for _, a := range []string{"scale_up", "scale_down", "interruption"} {
		for _, r := range []string{"succeeded", "partial", "failed", "rolled_back"} {
			m.scaleDuration.WithLabelValues(a, r)
		}
	}
	for _, a := range []string{"scale_down", "interruption"} {
		m.drainDuration.WithLabelValues(a)
	}
	return m
}

// fakeClient records every call; fail, when set, decides each call's error.
type fakeClient struct {
	mu    sync.Mutex
	calls []*cloudwatch.PutMetricDataInput
	fail  func(call int) error
	block bool // wait for the context instead of answering
}

func (f *fakeClient) PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, in)
	fail, block := f.fail, f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if fail != nil {
		if err := fail(n); err != nil {
			return nil, err
		}
	}
	return &cloudwatch.PutMetricDataOutput{}, nil
}

func (f *fakeClient) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// since returns the datums of the calls made since call from (all datums
// of one publish).
func (f *fakeClient) since(from int) []types.MetricDatum {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []types.MetricDatum
	for _, c := range f.calls[from:] {
		out = append(out, c.MetricData...)
	}
	return out
}

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newTestSink(t testing.TB, client Client, g prometheus.Gatherer, opts Options) *Sink {
	t.Helper()
	if opts.Namespace == "" {
		opts.Namespace = "SmartScale/Test"
	}
	if opts.Dimensions == nil {
		opts.Dimensions = map[string]string{"ClusterID": "test"}
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	s, err := New(client, g, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// publish runs one publish and returns its datums.
func publish(t testing.TB, s *Sink, f *fakeClient) []types.MetricDatum {
	t.Helper()
	from := f.callCount()
	if err := s.Publish(context.Background()); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return f.since(from)
}

// dims renders a datum's dimensions as "A=x,B=y" in their order.
func dims(d types.MetricDatum) string {
	var parts []string
	for _, dim := range d.Dimensions {
		parts = append(parts, *dim.Name+"="+*dim.Value)
	}
	return strings.Join(parts, ",")
}

// find returns the datum of metric name whose dimensions are exactly want.
func find(data []types.MetricDatum, name, want string) (types.MetricDatum, bool) {
	for _, d := range data {
		if *d.MetricName == name && dims(d) == want {
			return d, true
		}
	}
	return types.MetricDatum{}, false
}

func mustFind(t testing.TB, data []types.MetricDatum, name, want string) types.MetricDatum {
	t.Helper()
	d, ok := find(data, name, want)
	if !ok {
		var have []string
		for _, d := range data {
			if *d.MetricName == name {
				have = append(have, dims(d))
			}
		}
		sort.Strings(have)
		t.Fatalf("no %s{%s}; have %s", name, want, strings.Join(have, " | "))
	}
	return d
}

func value(t testing.TB, data []types.MetricDatum, name, want string) float64 {
	t.Helper()
	d := mustFind(t, data, name, want)
	if d.Value == nil {
		t.Fatalf("%s{%s} has no value: %+v", name, want, d)
	}
	return *d.Value
}

// logBuffer captures the sink's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// scalerMetricNames reads the metric names internal/scaler registers.
func scalerMetricNames(t testing.TB) []string {
	t.Helper()
	src, err := os.ReadFile("../scaler/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`Name:\s+"(smartscale_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("no metric names found in internal/scaler/metrics.go")
	}
	return out
}

var errTest = errors.New("test: CloudWatch is down")

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Errorf("unexpected: %w", err))
	}
}
