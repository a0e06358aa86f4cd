package policy

import (
	"time"
)

// Action is what a plan does to the node group.
type Action string

// Actions. The values are those of decision.Record.Action.
const (
	None Action = "none"
	Up   Action = "scale_up"
	Down Action = "scale_down"
)

// Plan is the outcome of one decision: the action, its details, and every
// reason that led to it. Reasons are present whatever the action, so a plan
// that does nothing still says why.
type Plan struct {
	NodeGroup string     `json:"nodegroup"`
	Action    Action     `json:"action"`
	ScaleUp   *ScaleUp   `json:"scaleUp,omitempty"`
	ScaleDown *ScaleDown `json:"scaleDown,omitempty"`
	Reasons   []Reason   `json:"reasons"`
}

// ScaleUp says how many nodes to launch and where.
type ScaleUp struct {
	// Count is the number of nodes to launch, the sum of Launches.
	Count int `json:"count"`
	// Launches are the concrete requests, one per zone and market, in the
	// order of the group's zones, spot before on-demand in each zone. A spot
	// launch falls back to on-demand for any shortfall (the cloud provider
	// does this; see cloud.CreateRequest).
	Launches []Launch `json:"launches"`
	// PerZone and PerMarket summarise Launches.
	PerZone   map[string]int `json:"perZone"`
	PerMarket map[Market]int `json:"perMarket"`
	// InstanceTypes in order of preference: the group's configured order,
	// except that a replacement moves the interrupted node's type last.
	InstanceTypes []string `json:"instanceTypes"`
}

// Launch asks for Count nodes of one market in one zone. It has the shape of
// cloud.Launch.
type Launch struct {
	Zone   string `json:"zone"`
	Market Market `json:"market"`
	Count  int    `json:"count"`
}

// ScaleDown names the one node to remove and the pods to evict from it.
type ScaleDown struct {
	Node         string `json:"node"`
	Zone         string `json:"zone"`
	InstanceID   string `json:"instanceID,omitempty"`
	InstanceType string `json:"instanceType"`
	Market       Market `json:"market"`
	// Evict are the pods a drain evicts, sorted by namespace and name:
	// every pod of the node except DaemonSet pods, mirror (static) pods and
	// pods that already finished. They fit on the remaining nodes.
	Evict []PodRef `json:"evict"`
}

// PodRef names a pod; UID is the eviction's precondition.
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
}

// String is namespace/name.
func (r PodRef) String() string { return r.Namespace + "/" + r.Name }

// Code is the stable, machine-readable kind of a reason: a metric label
// value and a key in decision records. Codes are never renamed.
type Code string

// Reason codes.
const (
	// CodeNoSignal: the notification holds no signal for the group.
	CodeNoSignal Code = "no_signal"
	// CodeScaleUpWins: scale-down signals were dropped because a scale-up
	// signal for the group is firing (rule 5).
	CodeScaleUpWins Code = "scale_up_wins"
	// CodeOperationInFlight: an operation on the group has not finished.
	CodeOperationInFlight Code = "operation_in_flight"
	// CodeCooldownActive: a cooldown or the scale-down delay after a
	// scale-up has not passed; Until says when it does.
	CodeCooldownActive Code = "cooldown_active"
	// CodeAtMax: the group already has maxNodes (provisioning included).
	CodeAtMax Code = "at_max"
	// CodeAtMin: removing a node would take the group below minNodes.
	CodeAtMin Code = "at_min"
	// CodeCappedAtMax: a scale-up was cut to what maxNodes allows.
	CodeCappedAtMax Code = "capped_at_max"
	// CodeStep: the scale-up step chosen by the signals' urgency.
	CodeStep Code = "scale_up_step"
	// CodePendingPodsNeed: the pending pods need this many new nodes.
	CodePendingPodsNeed Code = "pending_pods_need"
	// CodeUnschedulableByScaleUp: a pending pod that no new node of the
	// group could run; it does not drive the scale-up.
	CodeUnschedulableByScaleUp Code = "unschedulable_by_scale_up"
	// CodeCapacityUnknown: no allocatable is known for the group's instance
	// types, so pending pods were not sized.
	CodeCapacityUnknown Code = "capacity_unknown"
	// CodeBelowMin: the group has fewer than minNodes; the plan makes up
	// the difference.
	CodeBelowMin Code = "below_min"
	// CodeZoneFloor: a zone has no node (scale-up fills it) or a node is
	// its zone's last one (scale-down keeps it).
	CodeZoneFloor Code = "zone_floor"
	// CodeSpotMix: the market split of a scale-up, or a replacement's market.
	CodeSpotMix Code = "spot_mix"
	// CodeCandidate: the node a scale-down removes, and why it ranks first.
	CodeCandidate Code = "scale_down_candidate"
	// CodeNoCandidate: a node that cannot be removed, and why.
	CodeNoCandidate Code = "no_candidate"
	// CodeRescheduleFailed: a candidate's pods would not fit on the
	// remaining nodes.
	CodeRescheduleFailed Code = "reschedule_check_failed"
	// CodeFloorMet: EnforceMinimum found nothing to do.
	CodeFloorMet Code = "floor_met"
	// CodeReplaceInterrupted: Replacement launches a node for an interrupted one.
	CodeReplaceInterrupted Code = "replace_interrupted"
	// CodeReplacementNotNeeded: the group keeps what it needs without the
	// interrupted node.
	CodeReplacementNotNeeded Code = "replacement_not_needed"
	// CodeUnknownNode: Replacement was asked about a node that is not one of
	// the group's nodes in the snapshot.
	CodeUnknownNode Code = "unknown_node"
	// CodeNoZones: the group has no zone to launch into.
	CodeNoZones Code = "no_zones"
)

// Reason is one machine-readable reason of a plan.
type Reason struct {
	Code Code `json:"code"`
	// Until is when a cooldown ends (cooldown_active only).
	Until time.Time `json:"until,omitzero"`
	// Node and Pod name what the reason is about, when it is about one.
	Node string `json:"node,omitempty"`
	Pod  string `json:"pod,omitempty"`
	// Detail is the human part.
	Detail string `json:"detail,omitempty"`
}

// String is "code", then " until=<RFC 3339 UTC>" when Until is set, then
// ": detail" when there is one, e.g. "cooldown_active until=2026-01-01T10:05:00Z"
// or "no_candidate: node x has StatefulSet pod ns/y".
func (r Reason) String() string {
	s := string(r.Code)
	if !r.Until.IsZero() {
		s += " until=" + r.Until.UTC().Format(time.RFC3339)
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

// Strings returns the reasons' strings, for logs and decision records.
func (p Plan) Strings() []string {
	out := make([]string, len(p.Reasons))
	for i, r := range p.Reasons {
		out[i] = r.String()
	}
	return out
}

// Has reports whether the plan carries a reason with the code.
func (p Plan) Has(c Code) bool {
	for _, r := range p.Reasons {
		if r.Code == c {
			return true
		}
	}
	return false
}

// maxListed bounds the per-node and per-pod reasons of one kind, so a plan
// over a thousand-node cluster stays readable and fits a decision record;
// the rest are summarised in one more reason.
const maxListed = 10
