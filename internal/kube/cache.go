package kube

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/policy"
)

// ErrNotSynced: the informer caches have not finished their first list, so
// there is no snapshot to decide on yet. It is a decision.ErrUnavailable:
// the webhook answers 503 and Alertmanager retries.
var ErrNotSynced = fmt.Errorf("kube: informer caches not synced yet: %w", decision.ErrUnavailable)

// Index names.
const (
	indexPodNode = "node"     // pod → spec.nodeName ("" while pending)
	indexNodeID  = "instance" // node → provider id, instance id, name
)

// cache holds the shared informers for nodes, pods and PDBs. Objects are
// stored already converted to compact policy values (see store.go).
type cache struct {
	factory informers.SharedInformerFactory
	store   *store
	nodes   toolscache.SharedIndexInformer
	pods    toolscache.SharedIndexInformer
	pdbs    toolscache.SharedIndexInformer

	mu sync.Mutex
	// nodeChanged is closed, and replaced, on every node add or update, so a
	// waiter wakes on the event instead of polling.
	nodeChanged chan struct{}
}

func newCache(client kubernetes.Interface) (*cache, error) {
	// No resync: the stores are only read, never reconciled against.
	f := informers.NewSharedInformerFactory(client, 0)
	c := &cache{
		factory:     f,
		nodes:       f.Core().V1().Nodes().Informer(),
		pods:        f.Core().V1().Pods().Informer(),
		pdbs:        f.Policy().V1().PodDisruptionBudgets().Informer(),
		nodeChanged: make(chan struct{}),
		store:       &store{},
	}
	for _, s := range []struct {
		inf toolscache.SharedIndexInformer
		fn  toolscache.TransformFunc
	}{{c.nodes, c.store.transformNode}, {c.pods, c.store.transformPod}, {c.pdbs, c.store.transformPDB}} {
		if err := s.inf.SetTransform(s.fn); err != nil {
			return nil, fmt.Errorf("set informer transform: %w", err)
		}
	}
	if err := c.pods.AddIndexers(toolscache.Indexers{indexPodNode: func(obj any) ([]string, error) {
		if p, ok := obj.(*podObj); ok {
			return []string{p.nodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("add pod index: %w", err)
	}
	if err := c.nodes.AddIndexers(toolscache.Indexers{indexNodeID: func(obj any) ([]string, error) {
		n, ok := obj.(*nodeObj)
		if !ok {
			return nil, nil
		}
		keys := []string{n.node.Name}
		for _, k := range []string{n.providerID, n.node.InstanceID} {
			if k != "" && k != n.node.Name {
				keys = append(keys, k)
			}
		}
		return keys, nil
	}}); err != nil {
		return nil, fmt.Errorf("add node index: %w", err)
	}
	if _, err := c.nodes.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.notifyNodes() },
		UpdateFunc: func(any, any) { c.notifyNodes() },
	}); err != nil {
		return nil, fmt.Errorf("add node handler: %w", err)
	}
	return c, nil
}

func (c *cache) start(stop <-chan struct{}) { c.factory.Start(stop) }

func (c *cache) shutdown() { c.factory.Shutdown() }

func (c *cache) hasSynced() bool {
	return c.nodes.HasSynced() && c.pods.HasSynced() && c.pdbs.HasSynced()
}

func (c *cache) waitForSync(ctx context.Context) error {
	if !toolscache.WaitForCacheSync(ctx.Done(), c.nodes.HasSynced, c.pods.HasSynced, c.pdbs.HasSynced) {
		return fmt.Errorf("wait for informer caches: %w", context.Cause(ctx))
	}
	return nil
}

func (c *cache) notifyNodes() {
	c.mu.Lock()
	close(c.nodeChanged)
	c.nodeChanged = make(chan struct{})
	c.mu.Unlock()
}

// nodesChanged returns a channel closed at the next node add or update.
// Take it before looking at the store, so no change is missed in between.
func (c *cache) nodesChanged() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodeChanged
}

// nodeByID finds the node whose provider id, instance id or name is id.
func (c *cache) nodeByID(id string) (policy.Node, bool) {
	objs, err := c.nodes.GetIndexer().ByIndex(indexNodeID, id)
	if err != nil || len(objs) == 0 {
		return policy.Node{}, false
	}
	// Two node objects for one instance is a registration race (old name
	// still present); prefer the Ready one.
	best := objs[0].(*nodeObj).node
	for _, o := range objs[1:] {
		if n := o.(*nodeObj).node; n.Ready && !best.Ready {
			best = n
		}
	}
	return cloneNode(best), true
}

// snapshot returns the nodes of group ("" = every node), the pods bound to
// them and every pending pod, and all PDBs, sorted by name. Terminal pods
// (Succeeded, Failed) hold no resources and are left out. The slices are the
// caller's; the maps and slices inside the values are shared with the cache
// (copying them would cost more than the decision that reads them: 30 000
// pods' labels are tens of megabytes) and must not be modified.
func (c *cache) snapshot(group string) (policy.Snapshot, error) {
	if !c.hasSynced() {
		return policy.Snapshot{}, ErrNotSynced
	}
	return c.build(group)
}

func (c *cache) build(group string) (policy.Snapshot, error) {
	var s policy.Snapshot
	for _, o := range c.nodes.GetStore().List() {
		n := o.(*nodeObj).node
		if group == "" || n.NodeGroup == group {
			s.Nodes = append(s.Nodes, n)
		}
	}
	slices.SortFunc(s.Nodes, func(a, b policy.Node) int { return cmp.Compare(a.Name, b.Name) })

	// Gather and sort pointers, then copy each pod once into a slice of
	// the exact size: a 30 000-pod snapshot moves 8-byte pointers while
	// sorting, not 250-byte values, and allocates once.
	var objs []any
	if group == "" {
		objs = c.pods.GetStore().List()
	} else {
		idx := c.pods.GetIndexer()
		for _, name := range append(nodeNames(s.Nodes), "") { // "": pending
			on, err := idx.ByIndex(indexPodNode, name)
			if err != nil {
				return policy.Snapshot{}, fmt.Errorf("pods of node %q: %w", name, err)
			}
			objs = append(objs, on...)
		}
	}
	pods := make([]*podObj, 0, len(objs))
	for _, o := range objs {
		p := o.(*podObj)
		if p.phase != string(corev1.PodSucceeded) && p.phase != string(corev1.PodFailed) {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(a, b *podObj) int {
		// Namespaces are interned and mostly equal: test that first,
		// then compare each string once (cmp.Or would compare both).
		if a.namespace != b.namespace {
			return strings.Compare(a.namespace, b.namespace)
		}
		return strings.Compare(a.name, b.name)
	})
	s.Pods = make([]policy.Pod, len(pods))
	for i, p := range pods {
		s.Pods[i] = p.pod()
	}

	for _, o := range c.pdbs.GetStore().List() {
		s.PDBs = append(s.PDBs, o.(*pdbObj).pdb)
	}
	slices.SortFunc(s.PDBs, func(a, b policy.PDB) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return s, nil
}

func nodeNames(nodes []policy.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}
