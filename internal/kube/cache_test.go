package kube

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/policy"
)

var metav1GetOptions = metav1.GetOptions{}

func groupNode(name, group string) *corev1.Node {
	n := testNode(name)
	n.Labels = map[string]string{LabelNodeGroup: group, LabelZone: "us-east-1a"}
	n.Spec.ProviderID = "kwok://" + name
	return n
}

func TestSnapshot(t *testing.T) {
	pending := testPod("shop", "pending", "")
	pending.Status.Phase = corev1.PodPending
	f := newFakeAPI(
		groupNode("w1", "workers"), groupNode("w2", "workers"), groupNode("g1", "gpu"),
		testPod("shop", "a", "w1"), testPod("shop", "b", "w2"), testPod("shop", "c", "g1"),
		testPod("batch", "done", "w1", phase(corev1.PodSucceeded)),
		pending,
		&policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
			Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1},
		},
	)
	c, _ := newTestCluster(t, f)
	if _, err := c.Snapshot("workers"); !errors.Is(err, ErrNotSynced) || !errors.Is(err, decision.ErrUnavailable) {
		t.Fatalf("Snapshot before sync: %v, want ErrNotSynced (unavailable)", err)
	}
	if c.HasSynced() {
		t.Fatal("HasSynced before Start")
	}
	ctx := ctxTimeout(t, 10*time.Second)
	c.Start(ctx)
	if err := c.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.HasSynced() {
		t.Fatal("HasSynced false after WaitForSync")
	}

	s, err := c.Snapshot("workers")
	if err != nil {
		t.Fatal(err)
	}
	var nodes, pods []string
	for _, n := range s.Nodes {
		nodes = append(nodes, n.Name)
	}
	for _, p := range s.Pods {
		pods = append(pods, p.Namespace+"/"+p.Name)
	}
	if want := []string{"w1", "w2"}; !slices.Equal(nodes, want) {
		t.Errorf("nodes = %v, want %v", nodes, want)
	}
	// Pods on the group's nodes and pending pods; not the other group's,
	// not terminal ones.
	if want := []string{"shop/a", "shop/b", "shop/pending"}; !slices.Equal(pods, want) {
		t.Errorf("pods = %v, want %v", pods, want)
	}
	if len(s.PDBs) != 1 || s.PDBs[0].DisruptionsAllowed != 1 || s.PDBs[0].Selector["app"] != "web" {
		t.Errorf("pdbs = %+v", s.PDBs)
	}
	if s.Nodes[0].InstanceID != "w1" || s.Nodes[0].NodeGroup != "workers" {
		t.Errorf("node = %+v", s.Nodes[0])
	}

	// The slices are the caller's: reordering one snapshot leaves the next
	// alone.
	s.Pods[0], s.Pods[1] = s.Pods[1], s.Pods[0]
	if again, _ := c.Snapshot("workers"); again.Pods[0].Name != "a" {
		t.Errorf("second snapshot starts with %s", again.Pods[0].Name)
	}

	all, err := c.Snapshot("")
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Nodes) != 3 || len(all.Pods) != 4 {
		t.Errorf("all groups: %d nodes, %d pods; want 3, 4", len(all.Nodes), len(all.Pods))
	}
}

func TestWaitForReady(t *testing.T) {
	f := newFakeAPI()
	c, rec := newTestCluster(t, f)
	ctx := ctxTimeout(t, 20*time.Second)
	c.Start(ctx)
	if err := c.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}

	type result struct {
		n   policy.Node
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := c.WaitForReady(ctx, "i-0abc", 10*time.Second)
		done <- result{n, err}
	}()

	// The node registers NotReady, then turns Ready.
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-7"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-0abc"}}
	if _, err := f.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		t.Fatalf("WaitForReady returned before the node was Ready: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if _, err := f.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.n.Name != "ip-10-0-0-7" || !r.n.Ready || r.n.InstanceID != "i-0abc" {
		t.Fatalf("WaitForReady = %+v, %v", r.n, r.err)
	}

	if got, ok := c.NodeByID("i-0abc"); !ok || got.Name != "ip-10-0-0-7" {
		t.Errorf("NodeByID(i-0abc) = %+v, %v", got, ok)
	}
	if _, ok := c.NodeByID("i-other"); ok {
		t.Error("NodeByID found a node for an unknown instance")
	}

	// Matched by the full provider id too, at once since it is Ready.
	if got, err := c.WaitForReady(ctx, "aws:///us-east-1a/i-0abc", time.Second); err != nil || got.Name != "ip-10-0-0-7" {
		t.Errorf("by provider id: %+v, %v", got, err)
	}

	_, err := c.WaitForReady(ctx, "i-never", 300*time.Millisecond)
	var te *ReadyTimeoutError
	if !errors.As(err, &te) || te.ID != "i-never" || te.Node != "" {
		t.Fatalf("WaitForReady(never) = %v, want *ReadyTimeoutError for i-never", err)
	}
	if evs := events(rec); !hasEvent(evs, "Warning", ReasonNodeReadyTimeout) {
		t.Errorf("events = %q, want NodeReadyTimeout", evs)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.WaitForReady(cctx, "i-never", time.Minute); !errors.Is(err, context.Canceled) || errors.As(err, &te) {
		t.Errorf("cancelled wait = %v, want context.Canceled", err)
	}
}
