package kube

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	podresource "k8s.io/component-helpers/resource"

	"github.com/smartscale/smartscale/internal/policy"
)

// InstanceID is the cloud instance behind a node: the last segment of
// spec.providerID (`aws:///<zone>/<instance-id>` → instance id,
// `kwok://<name>` → name). A kwok node created without a provider id is its
// own instance, so its name is used; any other node without one has none.
func InstanceID(providerID, nodeName string, annotations map[string]string) string {
	if providerID == "" {
		if _, ok := annotations[annotationKwokNode]; ok {
			return nodeName
		}
		return ""
	}
	if i := strings.LastIndexByte(providerID, '/'); i >= 0 {
		return providerID[i+1:]
	}
	return providerID
}

func convertNode(n *corev1.Node) policy.Node {
	out := policy.Node{
		Name:          n.Name,
		NodeGroup:     n.Labels[LabelNodeGroup],
		InstanceID:    InstanceID(n.Spec.ProviderID, n.Name, n.Annotations),
		Zone:          firstLabel(n.Labels, LabelZone, labelZoneBeta),
		Market:        policy.OnDemand,
		InstanceType:  firstLabel(n.Labels, LabelInstanceType, labelInstanceTypeBeta),
		Allocatable:   resources(n.Status.Allocatable),
		Created:       n.CreationTimestamp.Time,
		Labels:        nonEmpty(n.Labels),
		Annotations:   annotations(n.Annotations),
		Unschedulable: n.Spec.Unschedulable,
	}
	if n.Labels[LabelMarket] == string(policy.Spot) {
		out.Market = policy.Spot
	}
	for _, t := range n.Spec.Taints {
		out.Taints = append(out.Taints, policy.Taint{Key: t.Key, Value: t.Value, Effect: string(t.Effect)})
	}
	out.Ready = nodeReady(n)
	return out
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func convertPod(p *corev1.Pod) policy.Pod {
	out := policy.Pod{
		Namespace:    p.Namespace,
		Name:         p.Name,
		UID:          string(p.UID),
		NodeName:     p.Spec.NodeName,
		Phase:        string(p.Status.Phase),
		Labels:       nonEmpty(p.Labels),
		Annotations:  annotations(p.Annotations),
		NodeSelector: nonEmpty(p.Spec.NodeSelector),
		Requests:     podRequests(p),
	}
	out.OwnerKind, out.OwnerName = owner(p)
	if p.Spec.Priority != nil {
		out.Priority = *p.Spec.Priority
	}
	out.RequiredNodeAffinity = requiredAffinity(p.Spec.Affinity)
	for _, t := range p.Spec.Tolerations {
		out.Tolerations = append(out.Tolerations, policy.Toleration{Key: t.Key, Operator: string(t.Operator), Value: t.Value, Effect: string(t.Effect)})
	}
	// Only local storage (hostPath, emptyDir) matters to the policy. The
	// rest would cost memory for nothing, and the service-account token
	// volume, named kube-api-access-<random> per pod, would keep replicas
	// of one ReplicaSet from sharing their stored template.
	for _, v := range p.Spec.Volumes {
		switch {
		case v.HostPath != nil:
			out.Volumes = append(out.Volumes, policy.Volume{Name: v.Name, HostPath: true})
		case v.EmptyDir != nil:
			out.Volumes = append(out.Volumes, policy.Volume{Name: v.Name, EmptyDir: true, EmptyDirMemory: v.EmptyDir.Medium == corev1.StorageMediumMemory})
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			out.Unschedulable = true
		}
	}
	return out
}

// owner names the pod's controller. A mirror pod is owned by its Node,
// whether or not the kubelet set the owner reference.
func owner(p *corev1.Pod) (policy.OwnerKind, string) {
	if ref := metav1.GetControllerOf(p); ref != nil {
		return ref.Kind, ref.Name
	}
	if _, ok := p.Annotations[annotationMirrorPod]; ok {
		return kindNode, p.Spec.NodeName
	}
	return "", ""
}

// podRequests is what the scheduler counts for the pod: containers, init
// containers (sidecars included), pod-level resources and overhead.
func podRequests(p *corev1.Pod) policy.Resources {
	reqs := podresource.PodRequests(p, podresource.PodResourcesOptions{})
	r := policy.Resources{Pods: 1}
	if q, ok := reqs[corev1.ResourceCPU]; ok {
		r.MilliCPU = q.MilliValue()
	}
	if q, ok := reqs[corev1.ResourceMemory]; ok {
		r.Memory = q.Value()
	}
	return r
}

func resources(l corev1.ResourceList) policy.Resources {
	var r policy.Resources
	if q, ok := l[corev1.ResourceCPU]; ok {
		r.MilliCPU = q.MilliValue()
	}
	if q, ok := l[corev1.ResourceMemory]; ok {
		r.Memory = q.Value()
	}
	if q, ok := l[corev1.ResourcePods]; ok {
		r.Pods = q.Value()
	}
	return r
}

// requiredAffinity keeps the `In` expressions of the first required node
// selector term. Terms are ORed, so satisfying the first one is enough to
// schedule: using it alone is exact for the usual single term and at worst
// stricter than the pod (never looser) when there are several.
func requiredAffinity(a *corev1.Affinity) map[string][]string {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return nil
	}
	var out map[string][]string
	for _, e := range terms[0].MatchExpressions {
		if e.Operator != corev1.NodeSelectorOpIn {
			continue
		}
		if out == nil {
			out = map[string][]string{}
		}
		out[e.Key] = append([]string(nil), e.Values...)
	}
	return out
}

// convertPDB keeps matchLabels. A selector that also has matchExpressions
// is represented by its matchLabels alone, which selects at least the pods
// the PDB covers: the policy then errs on the side of protecting more pods.
// The drain itself never relies on this: the Eviction API enforces the PDB.
func convertPDB(p *policyv1.PodDisruptionBudget) policy.PDB {
	out := policy.PDB{Namespace: p.Namespace, Name: p.Name, Selector: map[string]string{}, DisruptionsAllowed: p.Status.DisruptionsAllowed}
	if p.Spec.Selector != nil {
		maps.Copy(out.Selector, p.Spec.Selector.MatchLabels)
	}
	return out
}

func firstLabel(labels map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return ""
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// annotations drops the last-applied configuration: a full copy of the
// object that nothing in SmartScale reads and the largest annotation there is.
func annotations(m map[string]string) map[string]string {
	if _, ok := m[annotationLastApplied]; !ok {
		return nonEmpty(m)
	}
	out := maps.Clone(m)
	delete(out, annotationLastApplied)
	return nonEmpty(out)
}

func cloneNode(n policy.Node) policy.Node {
	n.Labels = maps.Clone(n.Labels)
	n.Annotations = maps.Clone(n.Annotations)
	n.Taints = append([]policy.Taint(nil), n.Taints...)
	return n
}
