package policy

import (
	"slices"
)

// Well-known node labels. The values match internal/cloud's label constants
// (a test keeps them in step); policy does not import cloud, as it takes
// everything as plain values.
const (
	labelZone             = "topology.kubernetes.io/zone"
	labelZoneBeta         = "failure-domain.beta.kubernetes.io/zone"
	labelInstanceType     = "node.kubernetes.io/instance-type"
	labelInstanceTypeBeta = "beta.kubernetes.io/instance-type"
	labelMarket           = "smartscale.io/market"
	labelCapacityType     = "karpenter.sh/capacity-type"
	labelNodeGroup        = "smartscale.io/nodegroup"
	labelHostname         = "kubernetes.io/hostname"
)

// Annotations that keep a node (or a pod's node) from being removed, and the
// one that lets a pod go whatever else is true of it.
const (
	annScaleDownDisabled = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
	annSafeToEvict       = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	annDoNotDisrupt      = "karpenter.sh/do-not-disrupt"
)

const (
	kindDaemonSet   = "DaemonSet"
	kindStatefulSet = "StatefulSet"
	kindNode        = "Node" // mirror (static) pod
	nsKubeSystem    = "kube-system"
)

// terminal reports whether a pod has finished and holds nothing.
func terminal(p *Pod) bool { return p.Phase == "Succeeded" || p.Phase == "Failed" }

// blocks reports whether a taint keeps pods that do not tolerate it off the
// node: NoSchedule and NoExecute do, PreferNoSchedule does not.
func blocks(t Taint) bool { return t.Effect == "NoSchedule" || t.Effect == "NoExecute" }

// tolerates reports whether tol tolerates taint t (the scheduler's rules:
// an empty key with Exists matches every taint, an empty effect every effect,
// Operator "" means Equal).
func tolerates(tol Toleration, t Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key == "" {
		return tol.Operator == "Exists"
	}
	if tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case "Exists":
		return true
	case "", "Equal":
		return tol.Value == t.Value
	}
	return false
}

// untolerated returns the first taint of taints that blocks p, if any.
func untolerated(p *Pod, taints []Taint) (Taint, bool) {
	for _, t := range taints {
		if !blocks(t) {
			continue
		}
		ok := false
		for _, tol := range p.Tolerations {
			if tolerates(tol, t) {
				ok = true
				break
			}
		}
		if !ok {
			return t, true
		}
	}
	return Taint{}, false
}

// nodeTerm is one label a pod requires of its node: from the nodeSelector
// (exactly one value) or the required node affinity (any of the values; no
// values: the label must exist).
type nodeTerm struct {
	key  string
	vals []string
}

// nodeTerms flattens the pod's nodeSelector and required node affinity, so
// matching them against many nodes does not iterate maps per node.
func nodeTerms(p *Pod) []nodeTerm {
	if len(p.NodeSelector) == 0 && len(p.RequiredNodeAffinity) == 0 {
		return nil
	}
	terms := make([]nodeTerm, 0, len(p.NodeSelector)+len(p.RequiredNodeAffinity))
	for k, v := range p.NodeSelector {
		terms = append(terms, nodeTerm{key: k, vals: []string{v}})
	}
	for k, vs := range p.RequiredNodeAffinity {
		terms = append(terms, nodeTerm{key: k, vals: vs})
	}
	return terms
}

// labelsMatch reports whether labels satisfy every term.
func labelsMatch(terms []nodeTerm, labels map[string]string) bool {
	for _, t := range terms {
		got, ok := labels[t.key]
		if !ok || (len(t.vals) > 0 && !slices.Contains(t.vals, got)) {
			return false
		}
	}
	return true
}

func fits(req, free Resources) bool {
	return req.MilliCPU <= free.MilliCPU && req.Memory <= free.Memory && req.Pods <= free.Pods
}

func (r Resources) add(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU + o.MilliCPU, Memory: r.Memory + o.Memory, Pods: r.Pods + o.Pods}
}

func (r Resources) sub(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU - o.MilliCPU, Memory: r.Memory - o.Memory, Pods: r.Pods - o.Pods}
}

// podSlots is the pod capacity of an allocatable: a node that reports no pod
// limit is treated as unlimited rather than full.
func podSlots(alloc Resources) Resources {
	if alloc.Pods <= 0 {
		alloc.Pods = unlimitedPods
	}
	return alloc
}

const unlimitedPods = 1 << 40

// request is what a pod counts for on a node: its requests, and one pod
// slot even when the snapshot left Pods at zero.
func request(p *Pod) Resources {
	r := p.Requests
	r.Pods = max(r.Pods, 1)
	return r
}
