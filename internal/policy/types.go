package policy

import (
	"time"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/config"
)

// Market is how an instance is bought.
type Market string

// Markets.
const (
	Spot     Market = "spot"
	OnDemand Market = "on-demand"
)

// Resources are the amounts the scheduler counts: CPU in millicores, memory
// in bytes, and pods.
type Resources struct {
	MilliCPU int64 `json:"milliCPU"`
	Memory   int64 `json:"memory"`
	Pods     int64 `json:"pods"`
}

// Taint is a node taint, as the scheduler sees it.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"` // NoSchedule, PreferNoSchedule, NoExecute
}

// Toleration is a pod toleration (Operator "Exists" or "Equal").
type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"`
	Value    string `json:"value,omitempty"`
	Effect   string `json:"effect,omitempty"`
}

// Node is one node of the cluster, as plain values.
type Node struct {
	Name         string            `json:"name"`
	NodeGroup    string            `json:"nodegroup"`
	InstanceID   string            `json:"instanceID,omitempty"`
	Zone         string            `json:"zone"`
	Market       Market            `json:"market"`
	InstanceType string            `json:"instanceType"`
	Allocatable  Resources         `json:"allocatable"`
	Created      time.Time         `json:"created"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Taints       []Taint           `json:"taints,omitempty"`
	Ready        bool              `json:"ready"`
	// Unschedulable is spec.unschedulable (cordoned, by anyone).
	Unschedulable bool `json:"unschedulable"`
}

// OwnerKind of a pod's controller: "DaemonSet", "ReplicaSet", "StatefulSet",
// "Job", …; "" for a pod with no controller. A static (mirror) pod is "Node".
type OwnerKind = string

// Volume is what the policy needs to know of a pod volume.
type Volume struct {
	Name     string `json:"name"`
	HostPath bool   `json:"hostPath,omitempty"`
	// EmptyDir is set for emptyDir volumes; EmptyDirMemory when medium is Memory.
	EmptyDir       bool `json:"emptyDir,omitempty"`
	EmptyDirMemory bool `json:"emptyDirMemory,omitempty"`
}

// Pod is one pod, as plain values.
type Pod struct {
	Namespace    string            `json:"namespace"`
	Name         string            `json:"name"`
	UID          string            `json:"uid,omitempty"`
	NodeName     string            `json:"nodeName,omitempty"` // "" while pending
	Phase        string            `json:"phase"`              // Pending, Running, Succeeded, Failed
	OwnerKind    OwnerKind         `json:"ownerKind,omitempty"`
	OwnerName    string            `json:"ownerName,omitempty"`
	Requests     Resources         `json:"requests"`
	Priority     int32             `json:"priority"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// RequiredNodeAffinity holds the pod's required node affinity as
	// label key → allowed values (In terms, ANDed across keys); enough for
	// zone/instance-type/group pinning, which is what scale-up must honour.
	RequiredNodeAffinity map[string][]string `json:"requiredNodeAffinity,omitempty"`
	Tolerations          []Toleration        `json:"tolerations,omitempty"`
	Volumes              []Volume            `json:"volumes,omitempty"`
	// Unschedulable: the scheduler marked it PodScheduled=False/Unschedulable.
	Unschedulable bool `json:"unschedulable,omitempty"`
}

// PDB is a PodDisruptionBudget with its computed status.
type PDB struct {
	Namespace          string            `json:"namespace"`
	Name               string            `json:"name"`
	Selector           map[string]string `json:"selector"` // matchLabels
	DisruptionsAllowed int32             `json:"disruptionsAllowed"`
}

// Snapshot is the cluster as the informers saw it.
type Snapshot struct {
	Nodes []Node `json:"nodes"`
	Pods  []Pod  `json:"pods"`
	PDBs  []PDB  `json:"pdbs"`
}

// Operation is an in-flight operation on the group, from the journal.
type Operation struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // scale_up, scale_down, interruption
	Node  string `json:"node,omitempty"`
	Count int    `json:"count,omitempty"` // nodes being provisioned (scale_up)
	// Zones of the nodes being provisioned, so multi-AZ placement counts them.
	Zones []string `json:"zones,omitempty"`
}

// GroupState is what the state store recorded for the group.
type GroupState struct {
	LastScaleUpAt   time.Time   `json:"lastScaleUpAt"`
	LastScaleDownAt time.Time   `json:"lastScaleDownAt"`
	InFlight        []Operation `json:"inFlight,omitempty"`
}

// Input is everything one decision is made from. Decide does no I/O and
// reads no clock: Now is the time of the decision.
type Input struct {
	Signals  []alert.Signal   `json:"signals"`
	Snapshot Snapshot         `json:"snapshot"`
	Group    config.NodeGroup `json:"group"`
	State    GroupState       `json:"state"`
	Now      time.Time        `json:"now"`
	// Capacity is the allocatable of one new node per instance type, used to
	// size a scale-up for pending pods when the snapshot has no node of the
	// group of that type (a node in the snapshot is preferred). Optional.
	Capacity map[string]Resources `json:"capacity,omitempty"`
}
