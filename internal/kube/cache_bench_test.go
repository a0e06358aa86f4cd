package kube

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// BenchmarkSnapshot takes snapshots of a 1000-node, 30 000-pod cache (10
// node groups, 30 pods per node from 1000 ReplicaSets), filled directly
// through the informers' transforms — the cost of Snapshot itself, without
// an API server:
//
//	go test -run '^$' -bench BenchmarkSnapshot -benchmem ./internal/kube
func BenchmarkSnapshot(b *testing.B) {
	c, err := newCache(fake.NewClientset())
	if err != nil {
		b.Fatal(err)
	}
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	for i := range 1000 {
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%04d", i), ResourceVersion: "1", Labels: map[string]string{
				LabelNodeGroup: fmt.Sprintf("group-%d", i%10), LabelZone: zones[i%3], LabelInstanceType: "t3.large",
				"kubernetes.io/hostname": fmt.Sprintf("node-%04d", i), "kubernetes.io/os": "linux",
			}},
			Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/i-%017x", zones[i%3], i)},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			},
		}
		obj, _ := c.store.transformNode(n)
		if err := c.nodes.GetIndexer().Add(obj); err != nil {
			b.Fatal(err)
		}
		labels := map[string]string{"app": fmt.Sprintf("svc-%d", i%50), "pod-template-hash": fmt.Sprintf("%08x", i)}
		for j := range 30 {
			p := replica(fmt.Sprintf("svc-%04d", i), fmt.Sprintf("svc-%04d-%02d", i, j), n.Name, labels)
			p.UID = types.UID(fmt.Sprintf("uid-%04d-%02d", i, j))
			p.ResourceVersion = "1"
			obj, _ := c.store.transformPod(p)
			if err := c.pods.GetIndexer().Add(obj); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, group := range []string{"", "group-3"} {
		name := "all"
		if group != "" {
			name = "one_group"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, err := c.build(group)
				if err != nil {
					b.Fatal(err)
				}
				if len(s.Pods) == 0 {
					b.Fatal("empty snapshot")
				}
			}
		})
	}
}
