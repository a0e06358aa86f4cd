package crash_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
)

// removals records, from watches on the API server, when each Node of a
// group was deleted and when each pod of the test's Deployment was bound
// and went away (evicted: deletionTimestamp set, or deleted), so the test
// can tell whether a node was removed while pods of the Deployment were
// still running on it — "terminated before drained".
//
// Order across the two watches comes from resource versions: with etcd3
// storage every write gets the cluster-wide revision as its
// resourceVersion, so a pod eviction and a node deletion compare even
// though they arrive on different streams. (The API contract calls
// resourceVersions opaque; this test pins the API server and etcd it runs
// against.)
type removals struct {
	mu    sync.Mutex
	nodes map[string]uint64 // node → revision of its deletion
	pods  map[types.UID]*podTrack
	errs  []error
}

type podTrack struct {
	name  string
	node  string
	bound uint64 // first revision seen with spec.nodeName set
	gone  uint64 // first revision with deletionTimestamp, or of its deletion
}

// watchRemovals starts both watches from a fresh LIST and runs them until
// ctx ends. A RetryWatcher resumes from the last revision it delivered, so
// a dropped connection loses no event.
func watchRemovals(ctx context.Context, client kubernetes.Interface, namespace, podSelector, nodeSelector string) (*removals, error) {
	r := &removals{nodes: map[string]uint64{}, pods: map[types.UID]*podTrack{}}
	pods := client.CoreV1().Pods(namespace)
	podList, err := pods.List(ctx, metav1.ListOptions{LabelSelector: podSelector})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	for i := range podList.Items {
		r.pod(watch.Added, &podList.Items[i])
	}
	nodes := client.CoreV1().Nodes()
	nodeList, err := nodes.List(ctx, metav1.ListOptions{LabelSelector: nodeSelector})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	pw, err := watchtools.NewRetryWatcherWithContext(ctx, podList.ResourceVersion, watcherFunc(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.LabelSelector = podSelector
		return pods.Watch(ctx, o)
	}))
	if err != nil {
		return nil, fmt.Errorf("watch pods: %w", err)
	}
	nw, err := watchtools.NewRetryWatcherWithContext(ctx, nodeList.ResourceVersion, watcherFunc(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.LabelSelector = nodeSelector
		return nodes.Watch(ctx, o)
	}))
	if err != nil {
		pw.Stop()
		return nil, fmt.Errorf("watch nodes: %w", err)
	}
	go r.consume(ctx, pw, func(ev watch.Event) {
		if p, ok := ev.Object.(*corev1.Pod); ok {
			r.pod(ev.Type, p)
		}
	})
	go r.consume(ctx, nw, func(ev watch.Event) {
		if n, ok := ev.Object.(*corev1.Node); ok {
			r.node(ev.Type, n)
		}
	})
	return r, nil
}

type watcherFunc func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)

func (f watcherFunc) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return f(ctx, o)
}

func (r *removals) consume(ctx context.Context, w *watchtools.RetryWatcher, handle func(watch.Event)) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			if ev.Type == watch.Error {
				r.mu.Lock()
				r.errs = append(r.errs, fmt.Errorf("watch error: %v", ev.Object))
				r.mu.Unlock()
				continue
			}
			handle(ev)
		}
	}
}

func revision(o metav1.Object) uint64 {
	rv, _ := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	return rv
}

func (r *removals) pod(t watch.EventType, p *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr, ok := r.pods[p.UID]
	if !ok {
		tr = &podTrack{name: p.Name}
		r.pods[p.UID] = tr
	}
	rv := revision(p)
	if tr.node == "" && p.Spec.NodeName != "" {
		tr.node, tr.bound = p.Spec.NodeName, rv
	}
	if tr.gone == 0 && (t == watch.Deleted || p.DeletionTimestamp != nil) {
		tr.gone = rv
	}
}

func (r *removals) node(t watch.EventType, n *corev1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.nodes[n.Name]; seen {
		return
	}
	if t == watch.Deleted || n.DeletionTimestamp != nil {
		r.nodes[n.Name] = revision(n)
	}
}

// deleted returns the nodes seen deleted, sorted.
func (r *removals) deleted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// undrained lists, per deleted node, the pods that were bound to it and
// had not been evicted when it was deleted; and the watches' errors.
func (r *removals) undrained() ([]string, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for node, del := range r.nodes {
		for _, p := range r.pods {
			if p.node == node && p.bound < del && (p.gone == 0 || p.gone > del) {
				out = append(out, fmt.Sprintf("pod %s was still on node %s when the node was deleted (node deleted at revision %d, pod evicted at %d)", p.name, node, del, p.gone))
			}
		}
	}
	sort.Strings(out)
	return out, append([]error(nil), r.errs...)
}
