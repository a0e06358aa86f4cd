package kube

import (
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unique"
	"weak"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/smartscale/smartscale/internal/policy"
)

// The informers store compact values instead of API objects: a transform
// converts each object once as it arrives, so a decoded Pod — tens of
// kilobytes with its managed fields, status and container specs — becomes
// a couple of hundred bytes. Pods stamped from one template (the replicas of
// a ReplicaSet, a DaemonSet's pods) share one podTemplate holding their
// labels, annotations, requests, tolerations and the rest; only name, UID,
// node and phase are per pod. Low-cardinality strings (namespaces, node
// names, phases) are interned. The types implement just enough of
// runtime.Object and metav1.ObjectMetaAccessor for the informer machinery
// (keys, resource versions).

type nodeObj struct {
	rv         string
	providerID string
	node       policy.Node
}

type pdbObj struct {
	rv  string
	pdb policy.PDB
}

type podObj struct {
	rv, name, uid              string
	namespace, nodeName, phase string // interned
	unschedulable              bool
	tpl                        *podTemplate // shared, read-only
}

// podTemplate is what pods of one template have in common. It is shared
// between pods and never changed after it is made.
type podTemplate struct {
	ownerKind, ownerName string
	requests             policy.Resources
	priority             int32
	labels               map[string]string
	annotations          map[string]string
	nodeSelector         map[string]string
	affinity             map[string][]string
	tolerations          []policy.Toleration
	volumes              []policy.Volume
}

func (o *nodeObj) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: o.node.Name, ResourceVersion: o.rv}
}

func (o *podObj) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: o.namespace, Name: o.name, UID: types.UID(o.uid), ResourceVersion: o.rv}
}

func (o *pdbObj) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: o.pdb.Namespace, Name: o.pdb.Name, ResourceVersion: o.rv}
}

func (*nodeObj) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (*podObj) GetObjectKind() schema.ObjectKind  { return schema.EmptyObjectKind }
func (*pdbObj) GetObjectKind() schema.ObjectKind  { return schema.EmptyObjectKind }

func (o *nodeObj) DeepCopyObject() k8sruntime.Object {
	c := *o
	c.node = cloneNode(o.node)
	return &c
}

// DeepCopyObject copies the pod; the template is immutable and shared.
func (o *podObj) DeepCopyObject() k8sruntime.Object {
	c := *o
	return &c
}

func (o *pdbObj) DeepCopyObject() k8sruntime.Object {
	c := *o
	c.pdb.Selector = maps.Clone(o.pdb.Selector)
	return &c
}

// pod returns the pod as a policy value. Its maps and slices are the
// template's, shared with every replica and with the cache: read-only.
func (o *podObj) pod() policy.Pod {
	t := o.tpl
	return policy.Pod{
		Namespace: o.namespace, Name: o.name, UID: o.uid, NodeName: o.nodeName, Phase: o.phase,
		OwnerKind: t.ownerKind, OwnerName: t.ownerName, Requests: t.requests, Priority: t.priority,
		Labels: t.labels, Annotations: t.annotations, NodeSelector: t.nodeSelector,
		RequiredNodeAffinity: t.affinity, Tolerations: t.tolerations, Volumes: t.volumes,
		Unschedulable: o.unschedulable,
	}
}

// store converts API objects into the stored values. One per Cluster: the
// template table is its own, not a global.
type store struct {
	templates canon[podTemplate]
}

// The transforms are idempotent (the informer may hand back an object it
// already transformed) and leave tombstones alone.

func (*store) transformNode(obj any) (any, error) {
	if n, ok := obj.(*corev1.Node); ok {
		return &nodeObj{rv: n.ResourceVersion, providerID: n.Spec.ProviderID, node: convertNode(n)}, nil
	}
	return obj, nil
}

func (*store) transformPDB(obj any) (any, error) {
	if p, ok := obj.(*policyv1.PodDisruptionBudget); ok {
		return &pdbObj{rv: p.ResourceVersion, pdb: convertPDB(p)}, nil
	}
	return obj, nil
}

func (s *store) transformPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	v := convertPod(p)
	t := podTemplate{
		ownerKind: v.OwnerKind, ownerName: v.OwnerName, requests: v.Requests, priority: v.Priority,
		labels: v.Labels, annotations: v.Annotations, nodeSelector: v.NodeSelector,
		affinity: v.RequiredNodeAffinity, tolerations: v.Tolerations, volumes: v.Volumes,
	}
	return &podObj{
		rv: p.ResourceVersion, name: v.Name, uid: v.UID,
		namespace: intern(v.Namespace), nodeName: intern(v.NodeName), phase: intern(v.Phase),
		unschedulable: v.Unschedulable,
		tpl:           s.templates.get(t.key(), func() *podTemplate { return &t }),
	}, nil
}

func intern(s string) string { return unique.Make(s).Value() }

// key encodes the template unambiguously (length-prefixed fields, sorted
// map keys), so equal keys mean equal templates.
func (t *podTemplate) key() string {
	var b strings.Builder
	str := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	num := func(n int64) {
		b.WriteString(strconv.FormatInt(n, 10))
		b.WriteByte(',')
	}
	strMap := func(m map[string]string) {
		num(int64(len(m)))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			str(k)
			str(m[k])
		}
	}
	str(t.ownerKind)
	str(t.ownerName)
	num(t.requests.MilliCPU)
	num(t.requests.Memory)
	num(t.requests.Pods)
	num(int64(t.priority))
	strMap(t.labels)
	strMap(t.annotations)
	strMap(t.nodeSelector)
	num(int64(len(t.affinity)))
	for _, k := range slices.Sorted(maps.Keys(t.affinity)) {
		str(k)
		num(int64(len(t.affinity[k])))
		for _, v := range t.affinity[k] {
			str(v)
		}
	}
	num(int64(len(t.tolerations)))
	for _, tol := range t.tolerations {
		str(tol.Key)
		str(tol.Operator)
		str(tol.Value)
		str(tol.Effect)
	}
	num(int64(len(t.volumes)))
	for _, v := range t.volumes {
		str(v.Name)
		b.WriteString(strconv.FormatBool(v.HostPath) + strconv.FormatBool(v.EmptyDir) + strconv.FormatBool(v.EmptyDirMemory))
	}
	return b.String()
}

// canon hands out one shared *T per key while anything still holds it; the
// table holds its values weakly, so templates no pod uses any more (an old
// ReplicaSet's, after a rollout) are collected and their entries removed.
type canon[T any] struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[T]
}

func (c *canon[T]) get(key string, mk func() *T) *T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.m[key].Value(); p != nil {
		return p
	}
	if c.m == nil {
		c.m = map[string]weak.Pointer[T]{}
	}
	p := mk()
	c.m[key] = weak.Make(p)
	runtime.AddCleanup(p, c.forget, key)
	return p
}

func (c *canon[T]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A new value may have taken the key since this one was collected.
	if wp, ok := c.m[key]; ok && wp.Value() == nil {
		delete(c.m, key)
	}
}

func (c *canon[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
