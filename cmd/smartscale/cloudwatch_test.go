package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/alert/alerttest"
)

// cloudwatchStub answers PutMetricData as CloudWatch does (RPC v2 CBOR) and
// keeps the decoded requests with their Authorization headers.
type cloudwatchStub struct {
	mu   sync.Mutex
	reqs []cwRequest
}

type cwRequest struct {
	auth       string
	Namespace  string `cbor:"Namespace"`
	MetricData []struct {
		MetricName string `cbor:"MetricName"`
		Dimensions []struct {
			Name  string `cbor:"Name"`
			Value string `cbor:"Value"`
		} `cbor:"Dimensions"`
		Value *float64 `cbor:"Value"`
	} `cbor:"MetricData"`
}

func (s *cloudwatchStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, _ = io.ReadAll(zr)
		}
	}
	var req cwRequest
	if r.URL.Path != "/service/GraniteServiceVersion20100801/operation/PutMetricData" || cbor.Unmarshal(body, &req) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	req.auth = r.Header.Get("Authorization")
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	_, _ = w.Write([]byte{0xa0}) // PutMetricData's empty output
}

func (s *cloudwatchStub) requests() []cwRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cwRequest(nil), s.reqs...)
}

// sum adds up the values of metric across every request, over the datums
// whose dimensions include all of want ("Name=value").
func (s *cloudwatchStub) sum(metric string, want ...string) (total float64, seen bool) {
	for _, r := range s.requests() {
		for _, d := range r.MetricData {
			if d.MetricName != metric || d.Value == nil {
				continue
			}
			have := map[string]bool{}
			for _, dim := range d.Dimensions {
				have[dim.Name+"="+dim.Value] = true
			}
			all := true
			for _, w := range want {
				all = all && have[w]
			}
			if all {
				total += *d.Value
				seen = true
			}
		}
	}
	return total, seen
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServePublishesToCloudWatch runs `smartscale serve --cloudwatch-namespace`
// against a real API server, with the CloudWatch endpoint pointed at the
// stub through the SDK's own override, and sends it a notification: the
// decision arrives in CloudWatch as a counter increase, the figures carry
// the ClusterID dimension, and stopping serve makes one last publish.
func TestServePublishesToCloudWatch(t *testing.T) {
	st := stack.Start(t, stack.Options{Kube: true})
	stub := &cloudwatchStub{}
	srv := httptest.NewServer(stub)
	defer srv.Close()

	dir := t.TempDir()
	// Credentials from the default chain (here the environment), nothing
	// from the machine's own AWS files or instance metadata.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSERVE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", srv.URL)

	addr := freeAddr(t)
	cfg := writeFile(t, "clusterID: cwtest\ncloud:\n  aws:\n    region: eu-west-1\nkube:\n  kubeconfig: "+st.KubeconfigPath+"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(io.Discard)
		cmd.SetArgs([]string{"serve", "--config", cfg, "--insecure-no-auth", "--listen", addr,
			"--cloudwatch-namespace", "SmartScale/Test", "--cloudwatch-interval", "1s"})
		errc <- cmd.ExecuteContext(ctx)
	}()

	// A scale-up notification: whatever the policy decides, it is a
	// decision, counted.
	body := alerttest.Notification("{}:{smartscale_action=\"scale_up\"}",
		alerttest.Alert{Name: "PendingPods", Action: "scale_up", NodeGroup: "workers", Urgency: "normal"})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/v1/alerts", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not take the notification: %v %v", resp, err)
		}
		select {
		case err := <-errc:
			t.Fatalf("serve stopped: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The increases published add up to serve's own counter: nothing lost,
	// nothing counted twice (the reconciler may decide too meanwhile, so
	// wait for the two to meet).
	var local, published float64
	for {
		local = decisionsTotal(t, "http://"+addr+"/metrics", "workers")
		published, _ = stub.sum("Decisions", "ClusterID=cwtest", "NodeGroup=workers")
		if local >= 1 && published == local {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CloudWatch got %v workers decisions, serve counted %v (%d requests)", published, local, len(stub.requests()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	reqs := stub.requests()
	first := reqs[0]
	if first.Namespace != "SmartScale/Test" {
		t.Errorf("namespace %q", first.Namespace)
	}
	// Region from cloud.aws.region, CloudWatch's signing name, the
	// environment's key.
	if !strings.Contains(first.auth, "Credential=AKIDSERVE/") || !strings.Contains(first.auth, "/eu-west-1/monitoring/aws4_request") {
		t.Errorf("Authorization %q: want SigV4 with the environment's key for monitoring in eu-west-1", first.auth)
	}
	for _, metric := range []string{"Decisions", "ScalingFailures", "Nodes", "NodeCount", "LockContention", "OperationsInFlight", "EstimatedHourlyCost"} {
		if _, ok := stub.sum(metric, "ClusterID=cwtest", "NodeGroup=workers"); !ok {
			t.Errorf("%s{ClusterID=cwtest,NodeGroup=workers} never published", metric)
		}
	}

	// Stopping serve makes a final publish before it returns.
	before := len(stub.requests())
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}
	if after := len(stub.requests()); after <= before {
		t.Errorf("no publish on shutdown (%d requests before, %d after)", before, after)
	}
}

func TestServeRefusesBadCloudWatchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cloudwatch-namespace", "AWS/EC2"}, "--cloudwatch-namespace"},
		{[]string{"--cloudwatch-namespace", "SmartScale", "--cloudwatch-interval", "10ms"}, "--cloudwatch-interval"},
	} {
		args := append([]string{"serve", "--insecure-no-auth", "--listen", "127.0.0.1:0"}, tc.args...)
		if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	out, err := run(t, "serve", "--help")
	if err != nil || !strings.Contains(out, "--cloudwatch-namespace") || !strings.Contains(out, "--cloudwatch-interval") {
		t.Errorf("serve --help does not list the CloudWatch flags: %v\n%s", err, out)
	}
}

// decisionsTotal scrapes serve's /metrics for the sum of
// smartscale_decisions_total over the group's series.
func decisionsTotal(t *testing.T, url, group string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	total := 0.0
	for _, m := range fams["smartscale_decisions_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "group" && l.GetValue() == group {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
