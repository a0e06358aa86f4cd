package kwok_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/cloud/kwok"
)

// TestCreateAndTerminateOnTheLocalStack runs the provider against a real
// kube-apiserver with kwok: two nodes in two zones become Ready with the
// labels and size of a t3.small worker, a retried Create adds nothing, and
// Terminate removes them while refusing nodes that are not the group's.
func TestCreateAndTerminateOnTheLocalStack(t *testing.T) {
	s := stack.Start(t, stack.Options{Kwok: true, KwokNodes: []stack.NodeSpec{
		// Another group's kwok node, and a node of the group kwok does not
		// manage (a real kubelet's, say): Terminate must refuse both.
		{Name: "batch-1", Zone: "us-east-1a", NodeGroup: "batch", Market: "on-demand"},
		{Name: "real-1", Zone: "us-east-1a", NodeGroup: "workers", Market: "on-demand", Unmanaged: true},
	}})
	client := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := kwok.New(client, kwok.Options{})

	req := cloud.CreateRequest{
		Group: "workers",
		Launches: []cloud.Launch{
			{Zone: "us-east-1a", Market: cloud.Spot, Count: 1},
			{Zone: "us-east-1b", Market: cloud.OnDemand, Count: 1},
		},
		InstanceTypes: []string{"t3.small", "t3a.small"},
		ClientToken:   "op-01JNBK7Z3Q",
	}
	res, err := p.Create(ctx, req)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if len(res.Instances) != 2 || res.Shortfall() != 0 || len(res.Fallback) != 0 {
		t.Fatalf("result = %+v, want two instances", res)
	}
	wantZone := map[string]string{}
	wantMarket := map[string]cloud.Market{}
	for i, l := range req.Launches {
		inst := res.Instances[i]
		wantZone[inst.ID], wantMarket[inst.ID] = l.Zone, l.Market
		if inst.ProviderID != "kwok://"+inst.ID || inst.NodeName != inst.ID || inst.Zone != l.Zone ||
			inst.Market != l.Market || inst.Type != "t3.small" || inst.Group != "workers" {
			t.Errorf("instance %d = %+v", i, inst)
		}
	}

	for id := range wantZone {
		node := waitReady(ctx, t, client, id)
		for k, v := range map[string]string{
			cloud.LabelZone:         wantZone[id],
			cloud.LabelRegion:       "us-east-1",
			cloud.LabelInstanceType: "t3.small",
			cloud.LabelMarket:       string(wantMarket[id]),
			cloud.LabelNodeGroup:    "workers",
		} {
			if node.Labels[k] != v {
				t.Errorf("node %s label %s = %q, want %q", id, k, node.Labels[k], v)
			}
		}
		if node.Annotations[kwok.Annotation] != "fake" || node.Spec.ProviderID != "kwok://"+id {
			t.Errorf("node %s: annotation %q, providerID %q", id, node.Annotations[kwok.Annotation], node.Spec.ProviderID)
		}
		// kwok keeps the t3.small size rather than its 1k-CPU default.
		for name, want := range map[corev1.ResourceName]string{
			corev1.ResourceCPU: "2", corev1.ResourceMemory: "1948Mi", corev1.ResourcePods: "110",
		} {
			if got := node.Status.Allocatable[name]; got.Cmp(resource.MustParse(want)) != 0 {
				t.Errorf("node %s allocatable %s = %s, want %s", id, name, got.String(), want)
			}
		}
	}

	// A retried Create (same client token) launches nothing new.
	again, err := p.Create(ctx, req)
	if err != nil {
		t.Fatalf("retried Create: %v", err)
	}
	if !slices.Equal(ids(again.Instances), ids(res.Instances)) {
		t.Errorf("retried Create returned %v, want the same nodes %v", ids(again.Instances), ids(res.Instances))
	}
	listed, err := p.List(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(listed, func(a, b cloud.Instance) int { return strings.Compare(a.ID, b.ID) })
	if got, want := ids(listed), slices.Sorted(slices.Values(ids(res.Instances))); !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v (and not the unmanaged real-1)", got, want)
	}
	for _, inst := range listed {
		if inst.State != cloud.Running {
			t.Errorf("listed %s state %s, want running", inst.ID, inst.State)
		}
	}
	if inst, ok, err := p.Find(ctx, res.Instances[0].ID); err != nil || !ok || inst.Group != "workers" {
		t.Errorf("Find(%s) = %+v, %v, %v", res.Instances[0].ID, inst, ok, err)
	}
	if _, ok, err := p.Find(ctx, "real-1"); err != nil || ok {
		t.Errorf("Find(real-1) = %v, %v; want not ours", ok, err)
	}

	for _, other := range []string{"batch-1", "real-1"} {
		err := p.Terminate(ctx, "workers", []string{res.Instances[0].ID, other})
		if !errors.Is(err, cloud.ErrNotManaged) || !strings.Contains(err.Error(), other) {
			t.Errorf("Terminate with %s: err = %v, want ErrNotManaged naming it", other, err)
		}
		if _, err := client.CoreV1().Nodes().Get(ctx, res.Instances[0].ID, metav1.GetOptions{}); err != nil {
			t.Errorf("refused Terminate still deleted %s: %v", res.Instances[0].ID, err)
		}
	}

	if err := p.Terminate(ctx, "workers", ids(res.Instances)); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	for _, id := range ids(res.Instances) {
		if _, err := client.CoreV1().Nodes().Get(ctx, id, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node %s after Terminate: err = %v, want NotFound", id, err)
		}
	}
	// Terminating what is already gone succeeds.
	if err := p.Terminate(ctx, "workers", ids(res.Instances)); err != nil {
		t.Errorf("second Terminate: %v", err)
	}
	if listed, err := p.List(ctx, "workers"); err != nil || len(listed) != 0 {
		t.Errorf("List after Terminate = %v, %v", listed, err)
	}
	for _, keep := range []string{"batch-1", "real-1"} {
		if _, err := client.CoreV1().Nodes().Get(ctx, keep, metav1.GetOptions{}); err != nil {
			t.Errorf("node %s: %v", keep, err)
		}
	}
}

func waitReady(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err // the node exists since Create returned
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("node %s not Ready: %v (last seen %+v)", name, err, node)
	}
	return node
}

func ids(is []cloud.Instance) []string {
	out := make([]string, len(is))
	for i, in := range is {
		out[i] = in.ID
	}
	return out
}
