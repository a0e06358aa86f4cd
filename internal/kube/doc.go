// Package kube is SmartScale's only contact with the Kubernetes API: a
// cluster snapshot served from shared informers, the wait for a new node to
// become Ready, cordon / evict / drain with PodDisruptionBudgets respected
// through the Eviction API, removal of a Node object, and Events on Nodes.
//
// Removing a node is the one thing SmartScale does that can hurt users, so
// the drain is as careful as `kubectl drain`: it never deletes a running pod
// directly, every Eviction carries the pod's UID as a precondition, a 429
// (a PodDisruptionBudget says "not yet") is retried with backoff until the
// deadline, and a drain that fails puts the node back the way it found it —
// uncordoned only if SmartScale was the one that cordoned it.
package kube

// Node labels SmartScale reads.
const (
	LabelZone         = "topology.kubernetes.io/zone"
	LabelInstanceType = "node.kubernetes.io/instance-type"
	// LabelMarket is "spot" or "on-demand"; a node without it counts as on-demand.
	LabelMarket    = "smartscale.io/market"
	LabelNodeGroup = "smartscale.io/nodegroup"

	// Older spellings, still set by some kubelets and cloud providers.
	labelZoneBeta         = "failure-domain.beta.kubernetes.io/zone"
	labelInstanceTypeBeta = "beta.kubernetes.io/instance-type"
)

// Marks SmartScale leaves on a node it cordons, so that recovery uncordons
// only what SmartScale cordoned and never a node a person cordoned.
const (
	// AnnotationCordonedBy is set to CordonedBy together with
	// spec.unschedulable, in the same write.
	AnnotationCordonedBy = "smartscale.io/cordoned-by"
	CordonedBy           = "smartscale"
	// TaintDraining (NoSchedule) makes the reason visible in `kubectl
	// describe node` and keeps pods that tolerate plain unschedulable nodes
	// off a node that is about to go away.
	TaintDraining = "smartscale.io/draining"
)

// Annotations and kinds the API server and kubelet use.
const (
	annotationMirrorPod      = "kubernetes.io/config.mirror"
	annotationLastApplied    = "kubectl.kubernetes.io/last-applied-configuration"
	annotationKwokNode       = "kwok.x-k8s.io/node"
	kindDaemonSet            = "DaemonSet"
	kindNode                 = "Node"
	defaultGracePeriodSecond = 30
)
