package nodeexporter

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The stand-in only reads Nodes and Pods through informers; the arithmetic
// is what this test pins down. The stack's acceptance test scrapes it
// through a real API server and Prometheus.

func node(name, cpu, mem string, ann map[string]string) *corev1.Node {
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann, CreationTimestamp: metav1.Unix(1700000000, 0)},
		Status:     corev1.NodeStatus{Capacity: rl, Allocatable: rl},
	}
}

func pod(name, nodeName string, phase corev1.PodPhase, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: ann},
		Spec:       corev1.PodSpec{NodeName: nodeName},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func scrape(t *testing.T, h http.Handler, path string) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric family %s", name)
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("%s%v: no such series", name, want)
	return 0
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-6 {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestNodeMetricsFollowPodAnnotations(t *testing.T) {
	client := fake.NewClientset(
		node("n1", "2", "4Gi", map[string]string{AnnotationCPUSteal: "0.2"}),
		node("n2", "1500m", "2Gi", nil),
		pod("a", "n1", corev1.PodRunning, map[string]string{
			AnnotationCPUUsage: "500m", AnnotationMemoryUsage: "256Mi",
			AnnotationNetworkReceive: "1000", AnnotationDiskWrite: "2e3", AnnotationDiskUsage: "1Gi",
		}),
		pod("b", "n1", corev1.PodRunning, map[string]string{AnnotationCPUUsage: "0.5", AnnotationMemoryUsage: "256Mi"}),
		pod("pending", "n1", corev1.PodPending, map[string]string{AnnotationCPUUsage: "1", AnnotationMemoryUsage: "1Gi"}),
		pod("idle", "n2", corev1.PodRunning, nil),
	)
	e := New(client)
	now := time.Unix(1700001000, 0)
	e.now = func() time.Time { return now }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h := e.Handler()

	first := scrape(t, h, "/nodes/n1/metrics")
	near(t, "idle at first sight", value(t, first, "node_cpu_seconds_total", map[string]string{"cpu": "0", "mode": "idle"}), 0)

	now = now.Add(10 * time.Second)
	m := scrape(t, h, "/nodes/n1/metrics")
	// 1 busy core (the pending pod does not count) over 2 cpus for 10 s:
	// 5 busy seconds per cpu, 85% user, 15% system; 0.2 cores of steal.
	cpu0 := func(mode string) float64 {
		return value(t, m, "node_cpu_seconds_total", map[string]string{"cpu": "0", "mode": mode})
	}
	near(t, "user", cpu0("user"), 4.25)
	near(t, "system", cpu0("system"), 0.75)
	near(t, "steal", cpu0("steal"), 1)
	near(t, "idle", cpu0("idle"), 4)
	near(t, "iowait", cpu0("iowait"), 0)
	near(t, "cpu 1 user", value(t, m, "node_cpu_seconds_total", map[string]string{"cpu": "1", "mode": "user"}), 4.25)
	near(t, "MemTotal", value(t, m, "node_memory_MemTotal_bytes", nil), 4<<30)
	near(t, "MemAvailable", value(t, m, "node_memory_MemAvailable_bytes", nil), 4<<30-512<<20)
	near(t, "rx", value(t, m, "node_network_receive_bytes_total", map[string]string{"device": "eth0"}), 10000)
	near(t, "tx", value(t, m, "node_network_transmit_bytes_total", map[string]string{"device": "eth0"}), 0)
	near(t, "disk written", value(t, m, "node_disk_written_bytes_total", map[string]string{"device": "nvme0n1"}), 20000)
	near(t, "fs avail", value(t, m, "node_filesystem_avail_bytes", map[string]string{"mountpoint": "/"}), 19<<30)
	near(t, "boot", value(t, m, "node_boot_time_seconds", nil), 1700000000)
	near(t, "uname", value(t, m, "node_uname_info", map[string]string{"nodename": "n1"}), 1)

	// Usage changes apply from the next interval on; counters never go back.
	p, err := client.CoreV1().Pods("default").Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Annotations[AnnotationCPUUsage] = "1500m"
	if _, err := client.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAnnotation(t, e, "b", "1500m")
	now = now.Add(10 * time.Second)
	m = scrape(t, h, "/nodes/n1/metrics")
	// Now 2 busy cores of 2: steal is capped to what is left (none).
	near(t, "user after change", cpu0("user"), 4.25+8.5)
	near(t, "steal after change", cpu0("steal"), 1)
	near(t, "idle after change", cpu0("idle"), 4)

	// A fractional capacity rounds up to whole cpus; no usage means idle.
	n2 := scrape(t, h, "/nodes/n2/metrics")
	if got := len(n2["node_cpu_seconds_total"].Metric); got != 2*int(numModes) {
		t.Errorf("n2 cpu series = %d, want %d", got, 2*numModes)
	}
}

func waitAnnotation(t *testing.T, e *Exporter, pod, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		obj, ok, _ := e.pods.GetStore().GetByKey("default/" + pod)
		if ok && obj.(*corev1.Pod).Annotations[AnnotationCPUUsage] == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("informer never saw %s=%s on pod %s", AnnotationCPUUsage, want, pod)
}

func TestTargetsListEveryNode(t *testing.T) {
	e := New(fake.NewClientset(node("n1", "2", "2Gi", nil), node("n2", "2", "2Gi", nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/targets", nil)
	req.Host = "127.0.0.1:9100"
	e.Handler().ServeHTTP(rec, req)
	var groups []targetGroup
	if err := json.Unmarshal(rec.Body.Bytes(), &groups); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	got := map[string]targetGroup{}
	for _, g := range groups {
		got[g.Labels["node"]] = g
	}
	for _, n := range []string{"n1", "n2"} {
		g, ok := got[n]
		if !ok {
			t.Fatalf("no target for %s in %s", n, rec.Body)
		}
		if g.Targets[0] != "127.0.0.1:9100" || g.Labels["instance"] != n || g.Labels["__metrics_path__"] != "/nodes/"+n+"/metrics" {
			t.Errorf("target for %s = %+v", n, g)
		}
	}

	rec = httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nodes/nope/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown node: %d, want 404", rec.Code)
	}
}
