package cloudwatch

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/fxamacker/cbor/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The CloudWatch client (service/cloudwatch v1.75) speaks Smithy RPC v2
// CBOR, query-compatible: POST /service/GraniteServiceVersion20100801/
// operation/PutMetricData with a CBOR body (gzip above 10 KiB), errors as a
// CBOR document {__type, message} plus x-amzn-query-error. The stub below
// decodes the body with an independent CBOR decoder, so the test checks
// what really goes over the wire.

type wireInput struct {
	Namespace  string      `cbor:"Namespace"`
	MetricData []wireDatum `cbor:"MetricData"`
}

type wireDatum struct {
	MetricName      string          `cbor:"MetricName"`
	Dimensions      []wireDimension `cbor:"Dimensions"`
	Timestamp       time.Time       `cbor:"Timestamp"`
	Unit            string          `cbor:"Unit"`
	Value           *float64        `cbor:"Value"`
	StatisticValues *struct {
		SampleCount float64 `cbor:"SampleCount"`
		Sum         float64 `cbor:"Sum"`
		Minimum     float64 `cbor:"Minimum"`
		Maximum     float64 `cbor:"Maximum"`
	} `cbor:"StatisticValues"`
}

type wireDimension struct {
	Name  string `cbor:"Name"`
	Value string `cbor:"Value"`
}

func (d wireDatum) dims() string {
	var parts []string
	for _, dim := range d.Dimensions {
		parts = append(parts, dim.Name+"="+dim.Value)
	}
	return strings.Join(parts, ",")
}

// stub is a CloudWatch endpoint: it records decoded requests and answers
// each with respond (nil: success).
type stub struct {
	t       testing.TB
	mu      sync.Mutex
	reqs    []wireInput
	bodies  []int // decoded (uncompressed) body sizes
	headers []http.Header
	respond func(n int) (status int, errType, message string)
}

func newStub(t testing.TB) (*stub, *httptest.Server) {
	s := &stub{t: t}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			raw, err = io.ReadAll(zr)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	var in wireInput
	// Unknown fields fail: the test knows every field the sink sends.
	dec, _ := cbor.DecOptions{ExtraReturnErrors: cbor.ExtraDecErrorUnknownField, DupMapKey: cbor.DupMapKeyEnforcedAPF}.DecMode()
	if err := dec.Unmarshal(raw, &in); err != nil {
		s.t.Errorf("request body is not the CBOR PutMetricData input: %v", err)
	}
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, in)
	s.bodies = append(s.bodies, len(raw))
	s.headers = append(s.headers, r.Header.Clone())
	respond := s.respond
	s.mu.Unlock()

	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("7d3b2c1a-0000-4000-8000-%012d", n))
	if respond != nil {
		if status, errType, msg := respond(n); status != 0 {
			// CloudWatch's error document, with the awsQuery error code the
			// query-compatible protocol carries in a header.
			code := strings.TrimSuffix(errType, "Exception")
			w.Header().Set("X-Amzn-Query-Error", code+";Sender")
			w.WriteHeader(status)
			body, _ := cbor.Marshal(map[string]string{"__type": "com.amazonaws.cloudwatch#" + errType, "message": msg})
			_, _ = w.Write(body)
			return
		}
	}
	// PutMetricData's output has no members: an empty CBOR map.
	_, _ = w.Write([]byte{0xa0})
}

func (s *stub) requests() []wireInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func sdkClient(srv *httptest.Server) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRET", ""),
		HTTPClient:   srv.Client(),
	})
}

func TestWirePutMetricData(t *testing.T) {
	st, srv := newStub(t)
	m := newScalerMetrics("workers", "batch", "gpu")
	s := newTestSink(t, sdkClient(srv), m.reg, Options{Namespace: "SmartScale"})
	m.nodes.WithLabelValues("workers", "us-east-1a", "spot").Set(3)
	m.nodes.WithLabelValues("workers", "us-east-1b", "on_demand").Set(2)
	m.decisions.WithLabelValues("workers", "scale_up", "failed").Add(2)
	m.cost.WithLabelValues("workers").Set(0.0445)
	m.scaleDuration.WithLabelValues("scale_up", "succeeded").Observe(42)
	if err := s.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}

	reqs := st.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	h := st.headers[0]
	if got := h.Get("Smithy-Protocol"); got != "rpc-v2-cbor" {
		t.Errorf("Smithy-Protocol %q", got)
	}
	// SigV4 for CloudWatch's signing name, in the client's region.
	if auth := h.Get("Authorization"); !strings.Contains(auth, "Credential=AKIDTEST/") || !strings.Contains(auth, "/eu-west-1/monitoring/aws4_request") {
		t.Errorf("Authorization %q is not SigV4 for monitoring in eu-west-1", auth)
	}
	in := reqs[0]
	if in.Namespace != "SmartScale" {
		t.Errorf("namespace %q", in.Namespace)
	}
	byKey := map[string]wireDatum{}
	for _, d := range in.MetricData {
		byKey[d.MetricName+"{"+d.dims()+"}"] = d
		if !d.Timestamp.Equal(testNow) {
			t.Errorf("%s timestamp %v, want %v", d.MetricName, d.Timestamp, testNow)
		}
	}
	for key, want := range map[string]float64{
		"Nodes{ClusterID=test,NodeGroup=workers,Zone=us-east-1a,Market=spot}":          3,
		"Nodes{ClusterID=test,NodeGroup=workers,Zone=us-east-1b,Market=on_demand}":     2,
		"Nodes{ClusterID=test,NodeGroup=gpu,Zone=us-east-1a,Market=spot}":              0,
		"NodeCount{ClusterID=test,NodeGroup=workers}":                                  5,
		"NodeCount{ClusterID=test,NodeGroup=gpu}":                                      0,
		"Decisions{ClusterID=test,NodeGroup=workers,Action=scale_up,Result=failed}":    2,
		"Decisions{ClusterID=test,NodeGroup=batch,Action=scale_down,Result=succeeded}": 0,
		"ScalingFailures{ClusterID=test,NodeGroup=workers}":                            2,
		"ScalingFailures{ClusterID=test,NodeGroup=batch}":                              0,
		"EstimatedHourlyCost{ClusterID=test,NodeGroup=workers}":                        0.0445,
		"OperationsInFlight{ClusterID=test,NodeGroup=batch}":                           0,
		"LockContention{ClusterID=test,NodeGroup=gpu}":                                 0,
	} {
		d, ok := byKey[key]
		if !ok {
			t.Errorf("%s not sent", key)
		} else if d.Value == nil || *d.Value != want {
			t.Errorf("%s = %v, want %v", key, d.Value, want)
		}
	}
	for _, key := range []string{
		// Never created, or no observation since the last publish.
		"Decisions{ClusterID=test,NodeGroup=workers,Action=interruption,Result=failed}",
		"ScaleDuration{ClusterID=test,Action=scale_down,Result=failed}",
		"DrainDuration{ClusterID=test,Action=scale_down}",
	} {
		if _, ok := byKey[key]; ok {
			t.Errorf("%s sent, want absent", key)
		}
	}
	// Small datums: the fixed part of the estimate covers the encoding.
	if est := estimate(in); st.bodies[0] > est {
		t.Errorf("body %d bytes, estimated %d", st.bodies[0], est)
	}
	t.Logf("%d datums: %d bytes encoded, %d estimated", len(in.MetricData), st.bodies[0], estimate(in))
	// 3 groups: Decisions 24, ScalingFailures 3, Nodes 12, NodeCount 3,
	// LockContention 3, OperationsInFlight 3, EstimatedHourlyCost 3, and one
	// ScaleDuration with an observation.
	if len(in.MetricData) != 52 {
		t.Errorf("%d datums, want 52", len(in.MetricData))
	}
	sd, ok := byKey["ScaleDuration{ClusterID=test,Action=scale_up,Result=succeeded}"]
	if !ok || sd.StatisticValues == nil || sd.Value != nil || sd.Unit != "Seconds" ||
		sd.StatisticValues.SampleCount != 1 || sd.StatisticValues.Sum != 42 || sd.StatisticValues.Minimum != 42 || sd.StatisticValues.Maximum != 42 {
		t.Errorf("ScaleDuration on the wire = %+v", sd)
	}
	units := map[string]string{}
	for _, d := range in.MetricData {
		units[d.MetricName] = d.Unit
	}
	wantUnits := map[string]string{"Decisions": "Count", "ScalingFailures": "Count", "Nodes": "Count", "NodeCount": "Count",
		"LockContention": "Count", "OperationsInFlight": "Count", "EstimatedHourlyCost": "None", "ScaleDuration": "Seconds"}
	if !mapsEqual(units, wantUnits) {
		t.Errorf("units %v, want %v", units, wantUnits)
	}
}

func TestWireBatchesFitTheRequestLimits(t *testing.T) {
	st, srv := newStub(t)
	// 1200 series with 20 dimensions of 200 characters: both limits bite
	// (about 4.9 KB a datum: ~200 a call by size), and bodies above 10 KiB
	// go gzip-compressed.
	labels := make([]string, 20)
	for i := range labels {
		labels[i] = fmt.Sprintf("l%02d", i)
	}
	reg := prometheus.NewRegistry()
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x", Help: "h"}, labels)
	reg.MustRegister(v)
	for i := range 1200 {
		values := make([]string, len(labels))
		for j := range values {
			values[j] = fmt.Sprintf("%04d-%02d-%s", i, j, strings.Repeat("é", 96)) // 2 bytes each
		}
		v.WithLabelValues(values...).Set(float64(i))
	}
	s := newTestSink(t, sdkClient(srv), reg, Options{
		Namespace: "SmartScale/" + strings.Repeat("n", 200),
		Figures:   []Figure{{Metric: "x", Name: "X", Unit: types.StandardUnitCount, By: labels}},
	})
	if err := s.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := st.requests()
	total := 0
	gzipped := 0
	for i, in := range reqs {
		total += len(in.MetricData)
		est := estimate(in)
		t.Logf("request %d: %d datums, %d bytes encoded, %d estimated", i, len(in.MetricData), st.bodies[i], est)
		// The estimate batches by must not undercount the real encoding.
		if st.bodies[i] > est {
			t.Errorf("request %d: body %d bytes, estimated %d", i, st.bodies[i], est)
		}
		if st.bodies[i] > MaxBytesPerCall || len(in.MetricData) > MaxDatumsPerCall {
			t.Errorf("request %d: %d bytes, %d datums: over the PutMetricData limits", i, st.bodies[i], len(in.MetricData))
		}
		if st.headers[i].Get("Content-Encoding") == "gzip" {
			gzipped++
		}
	}
	if total != 1200 || len(reqs) < 6 {
		t.Errorf("%d datums in %d requests, want 1200 in at least 6", total, len(reqs))
	}
	if gzipped != len(reqs) {
		t.Errorf("%d of %d requests gzip-compressed; the stub should have decoded them all", gzipped, len(reqs))
	}
}

func TestWireErrorIsCountedAndLoggedNotFatal(t *testing.T) {
	st, srv := newStub(t)
	st.respond = func(n int) (int, string, string) {
		if n == 0 {
			return http.StatusBadRequest, "InvalidParameterValueException",
				"The value NaN for parameter MetricData.member.1.Value is invalid."
		}
		return 0, "", ""
	}
	m := newScalerMetrics("workers")
	reg := prometheus.NewRegistry()
	var logs logBuffer
	s := newTestSink(t, sdkClient(srv), m.reg, Options{Namespace: "SmartScale", Registerer: reg, Logger: logs.logger()})
	m.decisions.WithLabelValues("workers", "scale_down", "failed").Inc()

	err := s.Publish(context.Background())
	var invalid *types.InvalidParameterValueException
	if !errors.As(err, &invalid) || invalid.ErrorCode() != "InvalidParameterValue" || !strings.Contains(invalid.ErrorMessage(), "MetricData.member.1.Value") {
		t.Fatalf("publish error %v (%T), want CloudWatch's InvalidParameterValue", err, errors.Unwrap(err))
	}
	if got := testutil.ToFloat64(s.failures); got != 1 {
		t.Errorf("failures = %v, want 1", got)
	}
	var logged map[string]any
	for l := range strings.Lines(logs.String()) {
		var v map[string]any
		must(t, json.Unmarshal([]byte(l), &v))
		if v["msg"] == "cloudwatch publish failed" {
			logged = v
		}
	}
	if logged == nil || logged["namespace"] != "SmartScale" || !strings.Contains(fmt.Sprint(logged["reason"]), "InvalidParameterValue") {
		t.Errorf("log line %v, want namespace and the CloudWatch error as reason", logged)
	}
	if len(st.requests()) != 1 {
		t.Errorf("%d requests: a 400 is not retried", len(st.requests()))
	}

	// The sink goes on, and the failed increase arrives with the next call.
	if err := s.Publish(context.Background()); err != nil {
		t.Fatalf("second publish: %v", err)
	}
	reqs := st.requests()
	found := false
	for _, d := range reqs[len(reqs)-1].MetricData {
		if d.MetricName == "ScalingFailures" && d.dims() == "ClusterID=test,NodeGroup=workers" {
			found = d.Value != nil && *d.Value == 1
		}
	}
	if !found {
		t.Error("ScalingFailures 1 not carried into the publish after the failure")
	}
}

// estimate is what batches reckons a request's size to be.
func estimate(in wireInput) int {
	est := requestOverhead + len(in.Namespace)
	for _, d := range in.MetricData {
		dims := make([]types.Dimension, len(d.Dimensions))
		for j, dim := range d.Dimensions {
			dims[j] = types.Dimension{Name: aws.String(dim.Name), Value: aws.String(dim.Value)}
		}
		est += datumSize(types.MetricDatum{MetricName: aws.String(d.MetricName), Unit: types.StandardUnit(d.Unit), Dimensions: dims})
	}
	return est
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
