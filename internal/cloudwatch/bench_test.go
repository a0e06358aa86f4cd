package cloudwatch

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type discardClient struct{}

func (discardClient) PutMetricData(context.Context, *cloudwatch.PutMetricDataInput, ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	return &cloudwatch.PutMetricDataOutput{}, nil
}

// benchRegistry is serve's registry with 3 node groups: the scaler's
// metrics and the Go and process collectors (server.RegisterRuntime), with
// some activity between publishes.
func benchRegistry() *scalerMetrics {
	m := newScalerMetrics("workers", "batch", "gpu")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func activity(m *scalerMetrics) {
	m.decisions.WithLabelValues("workers", "scale_up", "succeeded").Inc()
	m.nodes.WithLabelValues("batch", "us-east-1a", "spot").Add(1)
	m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(47)
	m.drainDuration.WithLabelValues("scale_down").Observe(31)
}

// BenchmarkPublish is one publish as Run makes it: gather the registry,
// convert the key figures, batch, call the client (a no-op here).
func BenchmarkPublish(b *testing.B) {
	m := benchRegistry()
	s := newTestSink(b, discardClient{}, m.reg, Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		activity(m)
		if err := s.Publish(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvert is the conversion alone, on one gathered snapshot.
func BenchmarkConvert(b *testing.B) {
	m := benchRegistry()
	activity(m)
	families, err := m.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	c := newConverter(KeyFigures(), map[string]string{"ClusterID": "bench"})
	b.ReportAllocs()
	var n int
	for b.Loop() {
		// Nothing is applied, so every iteration converts the same increases.
		n = len(c.convert(families, testNow, true))
	}
	b.ReportMetric(float64(n), "datums/op")
}
