package scaler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/alert/alerttest"
	"github.com/smartscale/smartscale/internal/cloud/kwok"
	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/kube"
	"github.com/smartscale/smartscale/internal/notify"
	"github.com/smartscale/smartscale/internal/scaler"
	"github.com/smartscale/smartscale/internal/server"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/dynamo"
	"github.com/smartscale/smartscale/internal/state/memory"
)

// slackSink is an incoming-webhook stand-in that keeps what it got.
type slackSink struct {
	mu       sync.Mutex
	messages []string
}

func (s *slackSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.messages = append(s.messages, string(b))
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (s *slackSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages...)
}

func testGroup() config.NodeGroup {
	g := config.DefaultNodeGroup("workers")
	g.MinNodeAge = 0 // kwok nodes are seconds old
	g.NodeReadyTimeout = config.Duration(60 * time.Second)
	g.DrainTimeout = config.Duration(60 * time.Second)
	return g
}

// realScaler wires a Scaler as serve does, on the stack's API server with
// the kwok provider.
func realScaler(t *testing.T, s *stack.Stack, store scaler.Store, owner string, slackURL string, g config.NodeGroup) (*scaler.Scaler, *kube.Cluster) {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	client := kubernetes.NewForConfigOrDie(s.RESTConfig())
	cluster, err := kube.New(client, kube.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cluster.Start(ctx)
	if err := cluster.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var notifiers []notify.Notifier
	if slackURL != "" {
		notifiers = append(notifiers, notify.NewSlack(slackURL, nil))
	}
	fan := notify.NewFanout(reg, log, 5*time.Second, notifiers...)
	sc, err := scaler.New(store, cluster, kwok.New(client, kwok.Options{Logger: log}), fan, scaler.Options{
		ClusterID: "it", Groups: []config.NodeGroup{g}, Owner: owner, Logger: log, Registry: reg,
		LockTTL: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sc.Close()
		fan.Wait()
		cancel()
		cluster.Close()
	})
	return sc, cluster
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}

func groupNodes(t *testing.T, client kubernetes.Interface) []corev1.Node {
	t.Helper()
	list, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: "smartscale.io/nodegroup=workers"})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func ready(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestAgainstRealCluster: memory state, the kwok provider and a real API
// server with kwok: a scale_up notification creates Ready nodes and tells
// Slack; the same again within the cooldown does nothing; a scale_down
// drains and removes one node.
func TestAgainstRealCluster(t *testing.T) {
	s := stack.Start(t, stack.Options{Kwok: true, KwokNodes: []stack.NodeSpec{
		{Name: "w-a1", Zone: "us-east-1a", NodeGroup: "workers", Market: "on-demand", InstanceType: "t3.small", CPU: "2", Memory: "2Gi"},
		{Name: "w-b1", Zone: "us-east-1b", NodeGroup: "workers", Market: "on-demand", InstanceType: "t3.small", CPU: "2", Memory: "2Gi"},
	}})
	sink := &slackSink{}
	slack := httptest.NewServer(sink)
	defer slack.Close()
	store := memory.New(state.Options{})
	sc, _ := realScaler(t, s, store, "it-1", slack.URL, testGroup())
	client := s.Client()
	ctx := context.Background()

	up := alert.Notification{GroupKey: "{}:{alertname=\"SmartScalePodsPending\"}", Status: "firing",
		Signals: []alert.Signal{{NodeGroup: "workers", Action: alert.ScaleUp, Urgency: alert.High, AlertName: "SmartScalePodsPending",
			Fingerprint: "aa", StartsAt: time.Now(), Status: "firing"}}}
	recs, err := sc.Handle(ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Outcome != decision.Accepted || recs[0].Count != 2 {
		t.Fatalf("scale-up decision %+v", recs)
	}
	sc.Wait()
	nodes := groupNodes(t, client)
	if len(nodes) != 4 {
		t.Fatalf("%d nodes after the scale-up, want 4", len(nodes))
	}
	zones := map[string]int{}
	for _, n := range nodes {
		if !ready(n) {
			t.Errorf("node %s not Ready", n.Name)
		}
		zones[n.Labels[corev1.LabelTopologyZone]]++
	}
	if zones["us-east-1a"] != 2 || zones["us-east-1b"] != 2 {
		t.Errorf("zones %v, want the new nodes spread 1+1", zones)
	}
	msgs := sink.all()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "scale-up succeeded of workers: 2") {
		t.Errorf("slack got %v", msgs)
	}
	list, err := sc.Decisions(ctx, "workers", 10)
	if err != nil || len(list) < 2 {
		t.Errorf("decisions %v %v", list, err)
	}

	// The same notification again, within the cooldown.
	recs, err = sc.Handle(ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	sc.Wait()
	if recs[0].Outcome != decision.Ignored || !strings.Contains(strings.Join(recs[0].Reasons, ";"), "cooldown_active") {
		t.Errorf("repeat within the cooldown: %+v", recs)
	}
	if n := len(groupNodes(t, client)); n != 4 {
		t.Errorf("%d nodes after the repeat, want 4", n)
	}

	// Pods on one of the new nodes; scale-down after the scale-down delay.
	// The delay after a scale-up is 10m: start a fresh scaler on a fresh
	// store, as a cluster that scaled up long ago.
	deployment(t, client, "web", 2)
	sc2, _ := realScaler(t, s, memory.New(state.Options{}), "it-2", slack.URL, testGroup())
	down := alert.Notification{GroupKey: "{}:{alertname=\"SmartScaleNodeGroupIdle\"}", Status: "firing",
		Signals: []alert.Signal{{NodeGroup: "workers", Action: alert.ScaleDown, Urgency: alert.Normal, AlertName: "SmartScaleNodeGroupIdle",
			Fingerprint: "bb", StartsAt: time.Now(), Status: "firing"}}}
	recs, err = sc2.Handle(ctx, down)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Outcome != decision.Accepted || recs[0].Node == "" {
		t.Fatalf("scale-down decision %+v", recs)
	}
	sc2.Wait()
	after := groupNodes(t, client)
	if len(after) != 3 {
		t.Errorf("%d nodes after the scale-down, want 3", len(after))
	}
	for _, n := range after {
		if n.Name == recs[0].Node {
			t.Errorf("node %s chosen for removal still exists", n.Name)
		}
		if n.Spec.Unschedulable {
			t.Errorf("node %s left cordoned", n.Name)
		}
	}
	waitRunning(t, client, "web", 2)
	outcomes, _ := sc2.Decisions(ctx, "workers", 5)
	raw, _ := json.Marshal(outcomes)
	if !strings.Contains(string(raw), `"outcome":"succeeded"`) {
		t.Errorf("no succeeded scale-down recorded: %s", raw)
	}
}

func deployment(t *testing.T, client kubernetes.Interface, name string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("128Mi")}}}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, client, name, int(replicas))
}

func waitRunning(t *testing.T, client kubernetes.Interface, app string, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pods, err := client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		if running == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pods of %s Running after 60s", running, want, app)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestThreeReplicasOneAction: three scalers, each behind its own HTTP
// server on its own port with its own DynamoDB client on one dynalite
// table, get the same notification at the same time, round after round.
// Exactly one of them acts each round. Rounds alternate scale-up and
// scale-down so every round has an action to take.
func TestThreeReplicasOneAction(t *testing.T) {
	s := stack.Start(t, stack.Options{Dynalite: true, Kwok: true, KwokNodes: []stack.NodeSpec{
		{Name: "r-a1", Zone: "us-east-1a", NodeGroup: "workers", Market: "on-demand", InstanceType: "t3.small", CPU: "2", Memory: "2Gi"},
		{Name: "r-b1", Zone: "us-east-1b", NodeGroup: "workers", Market: "on-demand", InstanceType: "t3.small", CPU: "2", Memory: "2Gi"},
	}})
	ctx := context.Background()
	if _, err := dynamo.CreateTable(ctx, s.DynamoClient(), "smartscale", 30*time.Second); err != nil && !errors.Is(err, dynamo.ErrTTLUnsupported) {
		t.Fatal(err)
	}
	g := testGroup()
	g.Cooldowns = config.Cooldowns{ScaleUp: config.Duration(time.Second), ScaleDown: config.Duration(time.Second)}
	g.ScaleDownDelayAfterScaleUp = 0
	g.SpotPercentage = 0

	var urls []string
	var scalers []*scaler.Scaler
	for i := range 3 {
		store := dynamo.New(s.DynamoClient(), "smartscale", "it", 5*time.Second, state.Options{})
		sc, _ := realScaler(t, s, store, fmt.Sprintf("replica-%d", i), "", g)
		scalers = append(scalers, sc)
		srv := server.New(server.Options{Scaler: sc, Decisions: sc, KnownGroup: func(n string) bool { return n == "workers" },
			Logger: slog.New(slog.DiscardHandler)})
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		urls = append(urls, hs.URL)
	}
	rounds := 100
	want := 2
	for round := range rounds {
		action := "scale_up"
		if round%2 == 1 {
			action = "scale_down"
		}
		body := alerttest.Notification(fmt.Sprintf("{}:{round=%q}", action),
			alerttest.Alert{Name: "Round", Action: action, NodeGroup: "workers", Fingerprint: fmt.Sprintf("%016x", round),
				StartsAt: time.Now().UTC()})
		codes := make([]int, len(urls))
		replies := make([]string, len(urls))
		var wg sync.WaitGroup
		for i, u := range urls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(u+"/v1/alerts", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				codes[i], replies[i] = resp.StatusCode, string(b)
			}()
		}
		wg.Wait()
		accepted := 0
		for i, c := range codes {
			switch c {
			case http.StatusAccepted:
				accepted++
			case http.StatusOK:
			default:
				t.Fatalf("round %d replica %d: %d %s", round, i, c, replies[i])
			}
		}
		if accepted != 1 {
			t.Fatalf("round %d (%s): %d replicas acted, want exactly 1: %v", round, action, accepted, replies)
		}
		for _, sc := range scalers {
			sc.Wait()
		}
		if action == "scale_up" {
			want++
		} else {
			want--
		}
		if n := len(groupNodes(t, s.Client())); n != want {
			t.Fatalf("round %d: %d nodes, want %d", round, n, want)
		}
		time.Sleep(1100 * time.Millisecond) // past the 1s cooldown
	}
}
