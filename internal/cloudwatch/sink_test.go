package cloudwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

const (
	workers   = "ClusterID=test,NodeGroup=workers"
	workers1a = "ClusterID=test,NodeGroup=workers,Zone=us-east-1a"
)

func TestGaugesAreSentAsTheirValue(t *testing.T) {
	m := newScalerMetrics("workers", "batch")
	f := &fakeClient{}
	s := newTestSink(t, f, m.reg, Options{})
	m.nodes.WithLabelValues("workers", "us-east-1a", "spot").Set(3)
	m.nodes.WithLabelValues("workers", "us-east-1a", "on_demand").Set(1)
	m.nodes.WithLabelValues("workers", "us-east-1b", "spot").Set(2)
	m.inFlight.WithLabelValues("workers").Set(1)
	m.cost.WithLabelValues("workers").Set(0.0445)

	data := publish(t, s, f)
	if got := value(t, data, "Nodes", workers1a+",Market=spot"); got != 3 {
		t.Errorf("Nodes{1a,spot} = %v, want 3", got)
	}
	if got := value(t, data, "Nodes", "ClusterID=test,NodeGroup=workers,Zone=us-east-1b,Market=on_demand"); got != 0 {
		t.Errorf("Nodes{1b,on_demand} = %v, want 0", got)
	}
	// NodeCount sums zones and markets: what the at-max-capacity alarm reads.
	if got := value(t, data, "NodeCount", workers); got != 6 {
		t.Errorf("NodeCount{workers} = %v, want 6", got)
	}
	if got := value(t, data, "NodeCount", "ClusterID=test,NodeGroup=batch"); got != 0 {
		t.Errorf("NodeCount{batch} = %v, want 0", got)
	}
	if got := value(t, data, "OperationsInFlight", workers); got != 1 {
		t.Errorf("OperationsInFlight = %v, want 1", got)
	}
	cost := mustFind(t, data, "EstimatedHourlyCost", workers)
	if *cost.Value != 0.0445 || cost.Unit != types.StandardUnitNone {
		t.Errorf("EstimatedHourlyCost = %v %s, want 0.0445 None", *cost.Value, cost.Unit)
	}
	for _, d := range data {
		if d.Timestamp == nil || !d.Timestamp.Equal(testNow) {
			t.Errorf("%s timestamp %v, want the publish time", *d.MetricName, d.Timestamp)
		}
		if d.StorageResolution != nil {
			t.Errorf("%s has storage resolution %d: standard resolution is the cheap default", *d.MetricName, *d.StorageResolution)
		}
	}
	// A gauge is its value every time, unchanged or not.
	again := publish(t, s, f)
	if got := value(t, again, "NodeCount", workers); got != 6 {
		t.Errorf("second NodeCount = %v, want 6", got)
	}
}

func TestCountersAreSentAsIncreases(t *testing.T) {
	m := newScalerMetrics("workers")
	f := &fakeClient{}
	s := newTestSink(t, f, m.reg, Options{})
	up := "ClusterID=test,NodeGroup=workers,Action=scale_up,Result="

	// Before the first publish: everything since the process started.
	m.decisions.WithLabelValues("workers", "scale_up", "succeeded").Add(3)
	m.lock.WithLabelValues("workers").Inc()
	data := publish(t, s, f)
	if got := value(t, data, "Decisions", up+"succeeded"); got != 3 {
		t.Errorf("first Decisions = %v, want 3", got)
	}
	// Series created at 0 are sent as 0: alarms and graphs see data, not gaps.
	if got := value(t, data, "Decisions", up+"failed"); got != 0 {
		t.Errorf("Decisions{failed} = %v, want 0", got)
	}
	if got := value(t, data, "LockContention", workers); got != 1 {
		t.Errorf("LockContention = %v, want 1", got)
	}
	if d := mustFind(t, data, "Decisions", up+"succeeded"); d.Unit != types.StandardUnitCount {
		t.Errorf("Decisions unit %s, want Count", d.Unit)
	}

	// Nothing happened: increase 0, not the total again.
	data = publish(t, s, f)
	if got := value(t, data, "Decisions", up+"succeeded"); got != 0 {
		t.Errorf("unchanged Decisions = %v, want 0", got)
	}

	m.decisions.WithLabelValues("workers", "scale_up", "succeeded").Add(2)
	m.decisions.WithLabelValues("workers", "scale_up", "failed").Inc()
	m.decisions.WithLabelValues("workers", "scale_down", "rolled_back").Inc() // created by the event
	m.decisions.WithLabelValues("workers", "interruption", "partial").Inc()
	data = publish(t, s, f)
	if got := value(t, data, "Decisions", up+"succeeded"); got != 2 {
		t.Errorf("Decisions after +2 = %v, want 2", got)
	}
	if got := value(t, data, "Decisions", "ClusterID=test,NodeGroup=workers,Action=scale_down,Result=rolled_back"); got != 1 {
		t.Errorf("a series created by its first event = %v, want 1", got)
	}
	// ScalingFailures: failed, partial and rolled_back of every action,
	// by group only (the scaling-failures alarm's dimensions).
	if got := value(t, data, "ScalingFailures", workers); got != 3 {
		t.Errorf("ScalingFailures = %v, want 3", got)
	}
}

func TestCounterResetCountsFromZero(t *testing.T) {
	m := newScalerMetrics("workers")
	f := &fakeClient{}
	s := newTestSink(t, f, m.reg, Options{})
	fail := "ClusterID=test,NodeGroup=workers,Action=scale_up,Result=failed"
	m.decisions.WithLabelValues("workers", "scale_up", "failed").Add(5)
	publish(t, s, f)

	// The series is deleted and created again: 2 is below the 5 sent
	// before, so it is a new count from zero, not -3.
	m.decisions.DeleteLabelValues("workers", "scale_up", "failed")
	m.decisions.WithLabelValues("workers", "scale_up", "failed").Add(2)
	data := publish(t, s, f)
	if got := value(t, data, "Decisions", fail); got != 2 {
		t.Errorf("after a reset Decisions = %v, want 2", got)
	}
	if got := value(t, data, "ScalingFailures", workers); got != 2 {
		t.Errorf("after a reset ScalingFailures = %v, want 2", got)
	}

	// Gone, then back at 1 after a publish without it: counted from zero.
	m.decisions.DeleteLabelValues("workers", "scale_up", "failed")
	data = publish(t, s, f)
	if _, ok := find(data, "Decisions", fail); ok {
		t.Error("a deleted series is still published")
	}
	m.decisions.WithLabelValues("workers", "scale_up", "failed").Add(7)
	data = publish(t, s, f)
	if got := value(t, data, "Decisions", fail); got != 7 {
		t.Errorf("re-created series = %v, want 7", got)
	}
}

func TestFailedPublishIsCountedLoggedAndCarriedOver(t *testing.T) {
	m := newScalerMetrics("workers")
	reg := prometheus.NewRegistry()
	var logs logBuffer
	f := &fakeClient{fail: func(call int) error {
		if call == 1 {
			return errTest
		}
		return nil
	}}
	s := newTestSink(t, f, m.reg, Options{Registerer: reg, Logger: logs.logger()})
	ok := "ClusterID=test,NodeGroup=workers,Action=scale_up,Result=succeeded"
	publish(t, s, f) // call 0 succeeds

	m.decisions.WithLabelValues("workers", "scale_up", "succeeded").Add(2)
	err := s.Publish(context.Background()) // call 1 fails
	if err == nil || !strings.Contains(err.Error(), "SmartScale/Test") {
		t.Fatalf("failed publish returned %v, want an error naming the namespace", err)
	}
	if got := testutil.ToFloat64(s.failures); got != 1 {
		t.Errorf("smartscale_cloudwatch_publish_failures_total = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "smartscale_cloudwatch_publish_failures_total"); err != nil || n != 1 {
		t.Errorf("failure counter not registered: %d, %v", n, err)
	}
	var line map[string]any
	for l := range strings.Lines(logs.String()) {
		var v map[string]any
		must(t, json.Unmarshal([]byte(l), &v))
		if v["level"] == "ERROR" {
			line = v
		}
	}
	if line["msg"] != "cloudwatch publish failed" || line["namespace"] != "SmartScale/Test" ||
		line["reason"] != errTest.Error() || line["datums"] == nil {
		t.Errorf("error log line %v, want msg, namespace, datums and reason", line)
	}

	// The next publish carries the increase the failed one could not send.
	m.decisions.WithLabelValues("workers", "scale_up", "succeeded").Add(1)
	data := publish(t, s, f)
	if got := value(t, data, "Decisions", ok); got != 3 {
		t.Errorf("Decisions after a failed publish = %v, want 2+1", got)
	}
}

// A gather that fails part-way must not make the sink forget what it sent:
// the series it missed would otherwise be counted again from zero.
func TestPartialGatherKeepsBaselines(t *testing.T) {
	m := newScalerMetrics("workers")
	broken := false
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, err := m.reg.Gather()
		if !broken {
			return fams, err
		}
		var rest []*dto.MetricFamily
		for _, f := range fams {
			if f.GetName() != "smartscale_decisions_total" {
				rest = append(rest, f)
			}
		}
		return rest, errors.New("collector failed")
	})
	f := &fakeClient{}
	var logs logBuffer
	s := newTestSink(t, f, g, Options{Logger: logs.logger()})
	ok := "ClusterID=test,NodeGroup=workers,Action=scale_up,Result=succeeded"
	m.decisions.WithLabelValues("workers", "scale_up", "succeeded").Add(4)
	publish(t, s, f)

	broken = true
	data := publish(t, s, f)
	if _, sent := find(data, "Decisions", ok); sent {
		t.Error("Decisions sent from a gather that did not return them")
	}
	if got := value(t, data, "NodeCount", workers); got != 0 {
		t.Errorf("what the partial gather returned is still published: NodeCount = %v", got)
	}
	if !strings.Contains(logs.String(), "collector failed") {
		t.Errorf("gather error not logged: %s", logs.String())
	}

	broken = false
	m.decisions.WithLabelValues("workers", "scale_up", "succeeded").Inc()
	if got := value(t, publish(t, s, f), "Decisions", ok); got != 1 {
		t.Errorf("Decisions after a partial gather = %v, want 1 (not 5 again)", got)
	}
}

func TestHistogramsAreStatisticSets(t *testing.T) {
	m := newScalerMetrics("workers")
	f := &fakeClient{}
	s := newTestSink(t, f, m.reg, Options{})
	upOK := "ClusterID=test,Action=scale_up,Result=succeeded"
	stats := func(data []types.MetricDatum, name, dims string) types.StatisticSet {
		t.Helper()
		d := mustFind(t, data, name, dims)
		if d.StatisticValues == nil || d.Value != nil || d.Unit != types.StandardUnitSeconds {
			t.Fatalf("%s{%s} = %+v, want a statistic set in Seconds", name, dims, d)
		}
		return *d.StatisticValues
	}
	want := func(got types.StatisticSet, n, sum, lo, hi float64) {
		t.Helper()
		if *got.SampleCount != n || *got.Sum != sum || *got.Minimum != lo || *got.Maximum != hi {
			t.Errorf("statistics = n %v sum %v min %v max %v, want %v %v %v %v",
				*got.SampleCount, *got.Sum, *got.Minimum, *got.Maximum, n, sum, lo, hi)
		}
	}

	// One observation: exact.
	m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(42)
	m.drainDuration.WithLabelValues("scale_down").Observe(12.5)
	data := publish(t, s, f)
	want(stats(data, "ScaleDuration", upOK), 1, 42, 42, 42)
	want(stats(data, "DrainDuration", "ClusterID=test,Action=scale_down"), 1, 12.5, 12.5, 12.5)
	// Series without observations since the last publish send nothing: a
	// statistic set needs a sample.
	if _, ok := find(data, "ScaleDuration", "ClusterID=test,Action=scale_down,Result=failed"); ok {
		t.Error("a histogram without observations was published")
	}

	// Several: count and sum exact, minimum and maximum from the buckets
	// (3 is in (1,5], 200 in (180,300], and the sum caps the maximum).
	for _, v := range []float64{3, 20, 200} {
		m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(v)
	}
	data = publish(t, s, f)
	want(stats(data, "ScaleDuration", upOK), 3, 223, 1, 223)
	if _, ok := find(data, "DrainDuration", "ClusterID=test,Action=scale_down"); ok {
		t.Error("DrainDuration published again without a new observation")
	}

	// Past the last bucket (900): the sum bounds the maximum.
	m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(2000)
	m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(8)
	data = publish(t, s, f)
	want(stats(data, "ScaleDuration", upOK), 2, 2008, 5, 2008)

	// Within one bucket: the bucket's bounds, clamped around the mean.
	m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(31)
	m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(59)
	data = publish(t, s, f)
	want(stats(data, "ScaleDuration", upOK), 2, 90, 30, 60)

	// Reset: deleted and created again, counted from zero.
	m.scaleDuration.DeleteLabelValues("scale_up", "succeeded")
	m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(7)
	data = publish(t, s, f)
	want(stats(data, "ScaleDuration", upOK), 1, 7, 7, 7)
}

func TestStatisticsKeepsMinimumAverageMaximumInOrder(t *testing.T) {
	bounds := []float64{1, 5, 10}
	for _, tc := range []struct {
		name    string
		h       histPoint
		lo, hi  float64
		useBnds bool
	}{
		{"first bucket starts at 0", histPoint{count: 2, sum: 1.5, buckets: []uint64{2, 0, 0, 0}}, 0, 1, true},
		{"mixed buckets", histPoint{count: 3, sum: 16, buckets: []uint64{1, 0, 2, 0}}, 0, 10, true},
		// Bounds that disagree with the sum (negative observations):
		// clamped so Minimum ≤ Average ≤ Maximum.
		{"inconsistent", histPoint{count: 2, sum: 30, buckets: []uint64{0, 2, 0, 0}}, 1, 15, true},
		{"no bounds: the mean", histPoint{count: 4, sum: 10}, 2.5, 2.5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b []float64
			if tc.useBnds {
				b = bounds
			}
			st := statistics(tc.h, b)
			if *st.Minimum != tc.lo || *st.Maximum != tc.hi || *st.SampleCount != float64(tc.h.count) || *st.Sum != tc.h.sum {
				t.Errorf("got min %v max %v n %v sum %v, want min %v max %v", *st.Minimum, *st.Maximum, *st.SampleCount, *st.Sum, tc.lo, tc.hi)
			}
			if mean := tc.h.sum / float64(tc.h.count); *st.Minimum > mean || *st.Maximum < mean {
				t.Errorf("min %v, mean %v, max %v out of order", *st.Minimum, mean, *st.Maximum)
			}
		})
	}
}

func TestLabelsBecomeDimensions(t *testing.T) {
	for label, want := range map[string]string{
		"group": "NodeGroup", "action": "Action", "result": "Result", "zone": "Zone",
		"market": "Market", "instance_type": "InstanceType", "kind": "Kind",
	} {
		if got := DimensionName(label); got != want {
			t.Errorf("DimensionName(%q) = %q, want %q", label, got, want)
		}
	}

	// By keeps and orders the dimensions; other labels are summed over; an
	// empty label value is no dimension (CloudWatch refuses empty values).
	reg := prometheus.NewRegistry()
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x_instances", Help: "h"}, []string{"group", "instance_type", "zone"})
	reg.MustRegister(v)
	v.WithLabelValues("workers", "t3.small", "a").Set(1)
	v.WithLabelValues("workers", "t3.small", "b").Set(2)
	v.WithLabelValues("workers", "t3a.small", "a").Set(4)
	v.WithLabelValues("", "t3.small", "a").Set(8)
	f := &fakeClient{}
	s := newTestSink(t, f, reg, Options{
		Dimensions: map[string]string{"ClusterID": "test", "Account": "prod"},
		Figures:    []Figure{{Metric: "x_instances", Name: "Instances", Unit: types.StandardUnitCount, By: []string{"instance_type", "group"}}},
	})
	data := publish(t, s, f)
	// Fixed dimensions first, sorted; then By's, in By's order.
	for dims, want := range map[string]float64{
		"Account=prod,ClusterID=test,InstanceType=t3.small,NodeGroup=workers":  3,
		"Account=prod,ClusterID=test,InstanceType=t3a.small,NodeGroup=workers": 4,
		"Account=prod,ClusterID=test,InstanceType=t3.small":                    8,
	} {
		if got := value(t, data, "Instances", dims); got != want {
			t.Errorf("Instances{%s} = %v, want %v", dims, got, want)
		}
	}
	if len(data) != 3 {
		t.Errorf("%d datums, want 3", len(data))
	}
}

func TestInvalidValuesAreDropped(t *testing.T) {
	reg := prometheus.NewRegistry()
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x", Help: "h"}, []string{"group"})
	reg.MustRegister(v)
	v.WithLabelValues("nan").Set(math.NaN())
	v.WithLabelValues("inf").Set(math.Inf(-1))
	v.WithLabelValues("huge").Set(1e300)
	v.WithLabelValues("tiny").Set(1e-300)
	v.WithLabelValues("ok").Set(2)
	f := &fakeClient{}
	s := newTestSink(t, f, reg, Options{Figures: []Figure{{Metric: "x", Name: "X", Unit: types.StandardUnitNone, By: []string{"group"}}}})
	data := publish(t, s, f)
	var got []string
	for _, d := range data {
		got = append(got, dims(d)+"="+fmt.Sprint(*d.Value))
	}
	slices.Sort(got)
	// One bad value would make CloudWatch refuse the whole call.
	want := []string{"ClusterID=test,NodeGroup=ok=2", "ClusterID=test,NodeGroup=tiny=0"}
	if !slices.Equal(got, want) {
		t.Errorf("datums %v, want %v", got, want)
	}
}

func TestBatchesStayWithinTheAPILimits(t *testing.T) {
	t.Run("datums", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x", Help: "h"}, []string{"group"})
		reg.MustRegister(v)
		for i := range 2500 {
			v.WithLabelValues(fmt.Sprintf("g%04d", i)).Set(float64(i))
		}
		f := &fakeClient{}
		s := newTestSink(t, f, reg, Options{Figures: []Figure{{Metric: "x", Name: "X", Unit: types.StandardUnitCount, By: []string{"group"}}}})
		data := publish(t, s, f)
		var sizes []int
		for _, c := range f.calls {
			sizes = append(sizes, len(c.MetricData))
			if *c.Namespace != "SmartScale/Test" {
				t.Errorf("call to namespace %q", *c.Namespace)
			}
		}
		if !slices.Equal(sizes, []int{1000, 1000, 500}) {
			t.Errorf("calls of %v datums, want 1000, 1000, 500", sizes)
		}
		seen := map[string]bool{}
		for _, d := range data {
			seen[dims(d)] = true
		}
		if len(seen) != 2500 {
			t.Errorf("%d distinct datums sent, want 2500 once each", len(seen))
		}
	})
	t.Run("bytes", func(t *testing.T) {
		// 25 dimensions of 1000 characters: about 26 KB a datum, so the
		// 1 MB limit splits long before 1000 datums.
		labels := make([]string, 25)
		for i := range labels {
			labels[i] = fmt.Sprintf("l%02d", i)
		}
		reg := prometheus.NewRegistry()
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x", Help: "h"}, labels)
		reg.MustRegister(v)
		for i := range 100 {
			values := make([]string, len(labels))
			for j := range values {
				values[j] = fmt.Sprintf("%03d-%s", i, strings.Repeat("v", 996))
			}
			v.WithLabelValues(values...).Set(1)
		}
		f := &fakeClient{}
		s := newTestSink(t, f, reg, Options{Figures: []Figure{{Metric: "x", Name: "X", Unit: types.StandardUnitCount, By: labels}}})
		data := publish(t, s, f)
		if len(data) != 100 || len(f.calls) < 3 {
			t.Fatalf("%d datums in %d calls, want 100 in at least 3", len(data), len(f.calls))
		}
		for i, c := range f.calls {
			total := requestOverhead + len(*c.Namespace)
			for _, d := range c.MetricData {
				total += datumSize(d)
			}
			if total > MaxBytesPerCall {
				t.Errorf("call %d: about %d bytes, over the 1 MB limit", i, total)
			}
			if i < len(f.calls)-1 && total+datumSize(c.MetricData[0]) <= MaxBytesPerCall {
				t.Errorf("call %d: %d bytes, another datum would have fit", i, total)
			}
		}
	})
}

func TestRunPublishesOnEveryTickAndOnceMoreOnStop(t *testing.T) {
	m := newScalerMetrics("workers")
	f := &fakeClient{}
	ticks := make(chan time.Time)
	stopped := make(chan struct{})
	var interval time.Duration
	s := newTestSink(t, f, m.reg, Options{
		Interval: 90 * time.Second,
		NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
			interval = d
			return ticks, func() { close(stopped) }
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	ticks <- testNow
	ticks <- testNow // the second send waits for the first publish to end
	// The second publish has gathered once its call is under way.
	for deadline := time.Now().Add(10 * time.Second); f.callCount() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the second tick did not publish")
		}
		time.Sleep(time.Millisecond)
	}
	m.decisions.WithLabelValues("workers", "scale_up", "succeeded").Inc()
	cancel()
	<-done
	<-stopped
	if interval != 90*time.Second {
		t.Errorf("ticker interval %s, want the configured 90s", interval)
	}
	if n := len(f.calls); n != 3 {
		t.Fatalf("%d calls, want 2 ticks + 1 final", n)
	}
	// The final publish sends what happened after the last tick.
	if got := value(t, f.calls[2].MetricData, "Decisions", "ClusterID=test,NodeGroup=workers,Action=scale_up,Result=succeeded"); got != 1 {
		t.Errorf("final publish Decisions = %v, want 1", got)
	}
}

func TestRunNeverHangsOnAStuckCloudWatch(t *testing.T) {
	m := newScalerMetrics("workers")
	f := &fakeClient{block: true}
	ticks := make(chan time.Time)
	reg := prometheus.NewRegistry()
	s := newTestSink(t, f, m.reg, Options{
		Timeout: 20 * time.Millisecond, FinalTimeout: 20 * time.Millisecond, Registerer: reg,
		NewTicker: func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	ticks <- testNow
	ticks <- testNow // accepted only once the first publish gave up
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return: a stuck CloudWatch holds up shutdown")
	}
	if got := testutil.ToFloat64(s.failures); got != 3 {
		t.Errorf("failures = %v, want 3 (two ticks, one final)", got)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no namespace", Options{}, "namespace is empty"},
		{"reserved namespace", Options{Namespace: "AWS/EC2"}, "reserved"},
		{"bad characters", Options{Namespace: "Smart$cale"}, "Smart$cale"},
		{"too long", Options{Namespace: strings.Repeat("n", 256)}, "255"},
		{"negative interval", Options{Namespace: "SmartScale", Interval: -time.Second}, "not positive"},
		{"empty dimension", Options{Namespace: "SmartScale", Dimensions: map[string]string{"ClusterID": ""}}, "must not be empty"},
		{"too many dimensions", Options{Namespace: "SmartScale", Figures: []Figure{{Metric: "x", Name: "X", By: make([]string, 31)}}}, "at most 30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(&fakeClient{}, prometheus.NewRegistry(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	s, err := New(&fakeClient{}, prometheus.NewRegistry(), Options{Namespace: "SmartScale"})
	if err != nil {
		t.Fatal(err)
	}
	if s.opts.Interval != DefaultInterval || len(s.opts.Figures) != len(KeyFigures()) {
		t.Errorf("defaults: interval %s, %d figures", s.opts.Interval, len(s.opts.Figures))
	}
}

// The figures name metrics the scaler really registers.
func TestKeyFiguresMatchScalerMetrics(t *testing.T) {
	registered := scalerMetricNames(t)
	for _, f := range KeyFigures() {
		if !slices.Contains(registered, f.Metric) {
			t.Errorf("figure %s reads %s, which internal/scaler/metrics.go does not register (it has %v)", f.Name, f.Metric, registered)
		}
	}
}
