package kube

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/smartscale/smartscale/internal/policy"
)

func TestInstanceID(t *testing.T) {
	kwok := map[string]string{annotationKwokNode: "fake"}
	for _, tc := range []struct {
		providerID, name string
		ann              map[string]string
		want             string
	}{
		{"aws:///us-east-1a/i-0abc123", "ip-10-0-1-2", nil, "i-0abc123"},
		{"kwok://node-7", "node-7", kwok, "node-7"},
		{"k3s://worker-1", "worker-1", nil, "worker-1"},
		{"", "kwok-node-3", kwok, "kwok-node-3"},
		{"", "bare-metal", nil, ""},
		{"opaque", "x", nil, "opaque"},
	} {
		if got := InstanceID(tc.providerID, tc.name, tc.ann); got != tc.want {
			t.Errorf("InstanceID(%q, %q) = %q, want %q", tc.providerID, tc.name, got, tc.want)
		}
	}
}

func TestConvertNode(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:              "ip-10-0-1-2",
			CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{
				LabelZone: "us-east-1b", LabelInstanceType: "t3.small",
				LabelMarket: "spot", LabelNodeGroup: "workers",
			},
			Annotations:   map[string]string{annotationLastApplied: `{"huge":true}`, "karpenter.sh/do-not-disrupt": "true"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.NodeSpec{
			ProviderID:    "aws:///us-east-1b/i-0123",
			Unschedulable: true,
			Taints:        []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("1930m"), corev1.ResourceMemory: resource.MustParse("1Gi"),
				corev1.ResourcePods: resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
			},
			Images: []corev1.ContainerImage{{Names: []string{"registry/big:1"}, SizeBytes: 1 << 30}},
		},
	}
	want := policy.Node{
		Name: "ip-10-0-1-2", NodeGroup: "workers", InstanceID: "i-0123", Zone: "us-east-1b",
		Market: policy.Spot, InstanceType: "t3.small",
		Allocatable: policy.Resources{MilliCPU: 1930, Memory: 1 << 30, Pods: 110},
		Created:     created,
		Labels:      n.Labels,
		Annotations: map[string]string{"karpenter.sh/do-not-disrupt": "true"},
		Taints:      []policy.Taint{{Key: "dedicated", Value: "db", Effect: "NoSchedule"}},
		Ready:       true, Unschedulable: true,
	}
	if got := convertNode(n); !reflect.DeepEqual(got, want) {
		t.Errorf("convertNode:\n got %+v\nwant %+v", got, want)
	}
	// The input keeps its annotation: conversion does not mutate the object.
	if _, ok := n.Annotations[annotationLastApplied]; !ok {
		t.Error("convertNode mutated the node's annotations")
	}

	// Unlabelled market is on-demand; beta labels are read; no Ready
	// condition is not Ready.
	old := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "old", Labels: map[string]string{
		labelZoneBeta: "eu-west-1a", labelInstanceTypeBeta: "m5.large",
	}}}
	got := convertNode(old)
	if got.Market != policy.OnDemand || got.Zone != "eu-west-1a" || got.InstanceType != "m5.large" || got.Ready {
		t.Errorf("convertNode(old) = %+v", got)
	}
}

func TestConvertPod(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	prio := int32(1000)
	grace := int64(45)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "web-7d9-abcde", UID: "uid-1",
			Labels:          map[string]string{"app": "web"},
			Annotations:     map[string]string{annotationLastApplied: "{}"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d9", Controller: new(true)}},
		},
		Spec: corev1.PodSpec{
			NodeName:                      "n1",
			Priority:                      &prio,
			TerminationGracePeriodSeconds: &grace,
			NodeSelector:                  map[string]string{LabelNodeGroup: "workers"},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
					{MatchExpressions: []corev1.NodeSelectorRequirement{
						{Key: LabelZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1a", "us-east-1b"}},
						{Key: "gpu", Operator: corev1.NodeSelectorOpDoesNotExist},
					}},
					{MatchExpressions: []corev1.NodeSelectorRequirement{
						{Key: LabelZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1c"}},
					}},
				}},
			}},
			Tolerations: []corev1.Toleration{{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			Volumes: []corev1.Volume{
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
				{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
				{Name: "kube-api-access-x7k2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}},
			},
			InitContainers: []corev1.Container{
				// A one-shot init container, run before the sidecar starts,
				// larger in CPU than the app: the pod needs 800m while it runs.
				{Name: "migrate", Resources: requests("800m", "64Mi")},
				// A sidecar runs alongside the app and adds to it.
				{Name: "proxy", RestartPolicy: &always, Resources: requests("100m", "32Mi")},
			},
			Containers: []corev1.Container{
				{Name: "app", Resources: requests("250m", "256Mi")},
				{Name: "metrics", Resources: requests("50m", "16Mi")},
			},
			Overhead: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	want := policy.Pod{
		Namespace: "shop", Name: "web-7d9-abcde", UID: "uid-1", NodeName: "n1", Phase: "Running",
		OwnerKind: "ReplicaSet", OwnerName: "web-7d9",
		// CPU max(800m, 100m + 250m + 50m) + 10m overhead; memory
		// max(64Mi, 32Mi + 256Mi + 16Mi).
		Requests:             policy.Resources{MilliCPU: 810, Memory: 304 << 20, Pods: 1},
		Priority:             1000,
		Labels:               map[string]string{"app": "web"},
		NodeSelector:         map[string]string{LabelNodeGroup: "workers"},
		RequiredNodeAffinity: map[string][]string{LabelZone: {"us-east-1a", "us-east-1b"}},
		Tolerations:          []policy.Toleration{{Key: "spot", Operator: "Exists", Effect: "NoSchedule"}},
		Volumes: []policy.Volume{
			{Name: "cache", EmptyDir: true, EmptyDirMemory: true},
			{Name: "logs", HostPath: true},
		},
	}
	if got := convertPod(p); !reflect.DeepEqual(got, want) {
		t.Errorf("convertPod:\n got %+v\nwant %+v", got, want)
	}
}

func TestConvertPodOwnerAndScheduling(t *testing.T) {
	mirror := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "etcd-n1", Annotations: map[string]string{annotationMirrorPod: "hash"}},
		Spec:       corev1.PodSpec{NodeName: "n1"},
	}
	if got := convertPod(mirror); got.OwnerKind != kindNode || got.OwnerName != "n1" {
		t.Errorf("mirror pod owner = %q/%q, want Node/n1", got.OwnerKind, got.OwnerName)
	}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare",
		// A non-controller owner does not make a pod managed.
		OwnerReferences: []metav1.OwnerReference{{Kind: "ConfigMap", Name: "x"}}}}
	if got := convertPod(bare); got.OwnerKind != "" {
		t.Errorf("bare pod owner kind = %q, want none", got.OwnerKind)
	}
	pending := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable},
		}},
	}
	if got := convertPod(pending); !got.Unschedulable || got.NodeName != "" || got.Requests.Pods != 1 {
		t.Errorf("pending pod = %+v", got)
	}
}

func TestConvertPDB(t *testing.T) {
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: new(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1},
	}
	want := policy.PDB{Namespace: "shop", Name: "web", Selector: map[string]string{"app": "web"}, DisruptionsAllowed: 1}
	if got := convertPDB(p); !reflect.DeepEqual(got, want) {
		t.Errorf("convertPDB = %+v, want %+v", got, want)
	}
}

func TestTransformIsIdempotent(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "b", UID: "u", ResourceVersion: "42"}}
	var st store
	once, err := st.transformPod(p)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := st.transformPod(once)
	if err != nil {
		t.Fatal(err)
	}
	if once != twice {
		t.Error("transforming a transformed pod changed it")
	}
	m := once.(*podObj).GetObjectMeta()
	if m.GetNamespace() != "a" || m.GetName() != "b" || m.GetResourceVersion() != "42" || m.GetUID() != "u" {
		t.Errorf("object meta = %v/%v rv %v uid %v", m.GetNamespace(), m.GetName(), m.GetResourceVersion(), m.GetUID())
	}
}

func requests(cpu, mem string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
	}}
}
