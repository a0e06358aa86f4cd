package kube_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/kube"
)

// TestAgainstAPIServer proves the package on a real kube-apiserver with
// etcd, kube-controller-manager (Deployments, DaemonSets, PDB status),
// kube-scheduler and kwok — the Eviction API and PodDisruptionBudgets are
// the server's own. One stack serves every subtest; each subtest has its own
// namespace, node group and nodes.
func TestAgainstAPIServer(t *testing.T) {
	s := stack.Start(t, stack.Options{Kwok: true})
	client := s.Client()

	t.Run("DrainRespectsPDB", func(t *testing.T) { testDrainRespectsPDB(t, s, client) })
	t.Run("DrainBlockedByPDB", func(t *testing.T) { testDrainBlockedByPDB(t, s, client) })
	t.Run("DaemonSetAndUnmanagedPods", func(t *testing.T) { testDaemonSetAndUnmanaged(t, s, client) })
	t.Run("WaitForReady", func(t *testing.T) { testWaitForReady(t, s, client) })
	t.Run("Resume", func(t *testing.T) { testResume(t, s, client) })
	t.Run("SnapshotAndDeleteNode", func(t *testing.T) { testSnapshotAndDeleteNode(t, s, client) })
}

// newCluster is a started, synced kube.Cluster on the stack, recording
// Events to the API server as in production.
func newCluster(t *testing.T, s *stack.Stack) *kube.Cluster {
	t.Helper()
	cs, err := kubernetes.NewForConfig(kube.Tune(s.RESTConfig()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := kube.New(cs, kube.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Close() })
	c.Start(ctx)
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if err := c.WaitForSync(sctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func createNamespace(t *testing.T, ctx context.Context, client kubernetes.Interface, name string) {
	t.Helper()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// nodeSpecs are kwok nodes of one group, roomy enough for the tests' pods.
func nodeSpecs(group string, names ...string) []stack.NodeSpec {
	var out []stack.NodeSpec
	for _, n := range names {
		out = append(out, stack.NodeSpec{Name: n, NodeGroup: group, CPU: "8", Memory: "16Gi"})
	}
	return out
}

func createDeployment(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string, replicas int32, nodeSelector map[string]string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: nodeSelector,
					Containers:   []corev1.Container{{Name: "app", Image: "registry.example/app:1", Resources: resourceRequests("100m", "64Mi")}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createPDB(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, app string, maxUnavailable, minAvailable *intstr.IntOrString) {
	t.Helper()
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			MaxUnavailable: maxUnavailable,
			MinAvailable:   minAvailable,
		},
	}
	if _, err := client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPDB waits until the disruption controller has computed the PDB's
// status for want healthy pods.
func waitPDB(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string, healthy, allowed int32) {
	t.Helper()
	var last policyv1.PodDisruptionBudgetStatus
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p.Status
		return p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == healthy && p.Status.DisruptionsAllowed == allowed, nil
	})
	if err != nil {
		t.Fatalf("PDB %s/%s status %+v, want %d healthy, %d allowed: %v", ns, name, last, healthy, allowed, err)
	}
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitReadyPods waits until n pods matching selector are Ready, all on
// node when node is set.
func waitReadyPods(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, selector, node string, n int) []corev1.Pod {
	t.Helper()
	var ready []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		ready = ready[:0]
		for _, p := range list.Items {
			if podReady(&p) && (node == "" || p.Spec.NodeName == node) {
				ready = append(ready, p)
			}
		}
		return len(ready) == n, nil
	})
	if err != nil {
		t.Fatalf("want %d Ready pods %q in %s (node %q), have %d: %v", n, selector, ns, node, len(ready), err)
	}
	return ready
}

// podsOnNode lists the pods bound to node, leaving out DaemonSet pods.
func podsOnNode(t *testing.T, ctx context.Context, client kubernetes.Interface, node string) []string {
	t.Helper()
	list, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.Kind == "DaemonSet" {
			continue
		}
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

// waitEvent waits for an Event with reason on the node (the broadcaster
// sends them asynchronously).
func waitEvent(t *testing.T, ctx context.Context, client kubernetes.Interface, node, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": node, "reason": reason}.AsSelector().String()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return false, err
		}
		if len(list.Items) == 0 {
			return false, nil
		}
		found = list.Items[0]
		return true, nil
	})
	if err != nil {
		t.Fatalf("no %s Event on node %s: %v", reason, node, err)
	}
	return found
}

func getNode(t *testing.T, ctx context.Context, client kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readyWatcher counts the Ready pods matching a selector from a watch, for
// the whole drain, and keeps the lowest count it saw.
type readyWatcher struct {
	mu    sync.Mutex
	ready map[string]bool
	min   int
	w     watch.Interface
	done  chan struct{}
}

func watchReady(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, selector string) *readyWatcher {
	t.Helper()
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	rw := &readyWatcher{ready: map[string]bool{}, done: make(chan struct{})}
	for _, p := range list.Items {
		rw.ready[string(p.UID)] = podReady(&p)
	}
	rw.min = rw.count()
	rw.w, err = client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(rw.done)
		for ev := range rw.w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rw.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(rw.ready, string(p.UID))
			} else {
				rw.ready[string(p.UID)] = podReady(p)
			}
			rw.min = min(rw.min, rw.count())
			rw.mu.Unlock()
		}
	}()
	return rw
}

func (rw *readyWatcher) count() int {
	n := 0
	for _, r := range rw.ready {
		if r {
			n++
		}
	}
	return n
}

func (rw *readyWatcher) stop() int {
	rw.w.Stop()
	<-rw.done
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.min
}

func testDrainRespectsPDB(t *testing.T, s *stack.Stack, client kubernetes.Interface) {
	ctx := testCtx(t, 3*time.Minute)
	const ns, group, replicas = "drain-pdb", "drain-pdb", 4
	createNamespace(t, ctx, client, ns)
	if err := s.CreateNodes(ctx, nodeSpecs(group, "pdb-src")...); err != nil {
		t.Fatal(err)
	}
	createDeployment(t, ctx, client, ns, "web", replicas, map[string]string{kube.LabelNodeGroup: group})
	createPDB(t, ctx, client, ns, "web", new(intstr.FromInt32(1)), nil)
	waitReadyPods(t, ctx, client, ns, "app=web", "pdb-src", replicas)
	waitPDB(t, ctx, client, ns, "web", replicas, 1)
	// Somewhere for the pods to go.
	if err := s.CreateNodes(ctx, nodeSpecs(group, "pdb-dst")...); err != nil {
		t.Fatal(err)
	}

	c := newCluster(t, s)
	rw := watchReady(t, ctx, client, ns, "app=web")
	start := time.Now()
	err := c.Drain(ctx, "pdb-src", kube.DrainOptions{Timeout: 2 * time.Minute})
	elapsed := time.Since(start)
	// Let the replacements settle, then stop watching.
	waitReadyPods(t, ctx, client, ns, "app=web", "pdb-dst", replicas)
	minReady := rw.stop()
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	t.Logf("drained %d pods under a maxUnavailable=1 PDB in %s; fewest Ready pods seen: %d", replicas, elapsed.Round(time.Millisecond), minReady)
	if minReady < replicas-1 {
		t.Errorf("PDB violated: only %d of %d pods Ready at one point (maxUnavailable 1)", minReady, replicas)
	}
	n := getNode(t, ctx, client, "pdb-src")
	if !n.Spec.Unschedulable || !kube.CordonedBySmartScale(n) {
		t.Errorf("drained node not cordoned by SmartScale: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
	if left := podsOnNode(t, ctx, client, "pdb-src"); len(left) != 0 {
		t.Errorf("pods left on drained node: %v", left)
	}
	waitEvent(t, ctx, client, "pdb-src", kube.ReasonDrainStarted)
	waitEvent(t, ctx, client, "pdb-src", kube.ReasonDrained)
}

func testDrainBlockedByPDB(t *testing.T, s *stack.Stack, client kubernetes.Interface) {
	ctx := testCtx(t, 3*time.Minute)
	const ns, group = "drain-blocked", "drain-blocked"
	createNamespace(t, ctx, client, ns)
	if err := s.CreateNodes(ctx, nodeSpecs(group, "blk-src", "blk-dst")...); err != nil {
		t.Fatal(err)
	}
	// Pin the pods to blk-src by name so that the other node only matters
	// as a place they could go.
	createDeployment(t, ctx, client, ns, "db", 1, map[string]string{"kubernetes.io/hostname": "blk-src"})
	createPDB(t, ctx, client, ns, "db", nil, new(intstr.FromInt32(1)))
	pods := waitReadyPods(t, ctx, client, ns, "app=db", "blk-src", 1)
	waitPDB(t, ctx, client, ns, "db", 1, 0)

	c := newCluster(t, s)
	start := time.Now()
	err := c.Drain(ctx, "blk-src", kube.DrainOptions{Timeout: 4 * time.Second})
	t.Logf("blocked drain returned after %s: %v", time.Since(start).Round(time.Millisecond), err)

	var derr *kube.DrainError
	if !errors.As(err, &derr) || !errors.Is(err, kube.ErrDrainTimeout) {
		t.Fatalf("Drain = %v, want a *DrainError wrapping ErrDrainTimeout", err)
	}
	blocker := ns + "/" + pods[0].Name
	if len(derr.Blocking) != 1 || derr.Blocking[0].Namespace+"/"+derr.Blocking[0].Name != blocker {
		t.Errorf("blocking = %+v, want %s", derr.Blocking, blocker)
	} else if !strings.Contains(derr.Blocking[0].Reason, "disruption budget") {
		t.Errorf("blocking reason %q does not mention the disruption budget", derr.Blocking[0].Reason)
	}
	if !strings.Contains(err.Error(), blocker) {
		t.Errorf("error %q does not name %s", err, blocker)
	}
	if !derr.Uncordoned {
		t.Error("DrainError.Uncordoned = false")
	}
	n := getNode(t, ctx, client, "blk-src")
	if n.Spec.Unschedulable || kube.CordonedBySmartScale(n) {
		t.Errorf("node not uncordoned after the failed drain: unschedulable=%v annotations=%v", n.Spec.Unschedulable, n.Annotations)
	}
	for _, tn := range n.Spec.Taints {
		if tn.Key == kube.TaintDraining {
			t.Errorf("draining taint left on the node: %v", n.Spec.Taints)
		}
	}
	// The pod is untouched.
	if p, err := client.CoreV1().Pods(ns).Get(ctx, pods[0].Name, metav1.GetOptions{}); err != nil || p.UID != pods[0].UID || p.DeletionTimestamp != nil {
		t.Errorf("blocked pod was disturbed: %v", err)
	}
	ev := waitEvent(t, ctx, client, "blk-src", kube.ReasonDrainFailed)
	if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, pods[0].Name) {
		t.Errorf("DrainFailed event = %s %q, want a Warning naming %s", ev.Type, ev.Message, pods[0].Name)
	}
}

func testDaemonSetAndUnmanaged(t *testing.T, s *stack.Stack, client kubernetes.Interface) {
	ctx := testCtx(t, 3*time.Minute)
	const ns, group, node = "drain-ds", "drain-ds", "ds-src"
	createNamespace(t, ctx, client, ns)
	if err := s.CreateNodes(ctx, nodeSpecs(group, node)...); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{kube.LabelNodeGroup: group},
					Containers:   []corev1.Container{{Name: "agent", Image: "registry.example/agent:1"}},
				},
			},
		},
	}
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createDeployment(t, ctx, client, ns, "web", 2, map[string]string{kube.LabelNodeGroup: group})
	bare := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "debug", Labels: map[string]string{"app": "debug"}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "sh", Image: "registry.example/busybox:1"}},
		},
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, bare, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	agents := waitReadyPods(t, ctx, client, ns, "app=agent", node, 1)
	waitReadyPods(t, ctx, client, ns, "app=web", node, 2)
	waitReadyPods(t, ctx, client, ns, "app=debug", node, 1)

	c := newCluster(t, s)
	err := c.Drain(ctx, node, kube.DrainOptions{Timeout: 30 * time.Second})
	var derr *kube.DrainError
	if !errors.As(err, &derr) || !errors.Is(err, kube.ErrUnmanagedPod) {
		t.Fatalf("Drain with an unmanaged pod = %v, want ErrUnmanagedPod", err)
	}
	if len(derr.Blocking) != 1 || derr.Blocking[0].Name != "debug" {
		t.Errorf("blocking = %+v, want the unmanaged pod", derr.Blocking)
	}
	if p, err := client.CoreV1().Pods(ns).Get(ctx, "debug", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("the unmanaged pod was removed: %v", err)
	}
	waitReadyPods(t, ctx, client, ns, "app=web", node, 2) // nothing was evicted
	if getNode(t, ctx, client, node).Spec.Unschedulable {
		t.Error("node left cordoned after the refusal")
	}
	waitEvent(t, ctx, client, node, kube.ReasonDrainFailed)

	// Without the unmanaged pod the drain goes through and leaves the
	// DaemonSet pod running where it was.
	if err := client.CoreV1().Pods(ns).Delete(ctx, "debug", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, "debug", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Drain(ctx, node, kube.DrainOptions{Timeout: 30 * time.Second}); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if left := podsOnNode(t, ctx, client, node); len(left) != 0 {
		t.Errorf("pods left on drained node: %v", left)
	}
	now := waitReadyPods(t, ctx, client, ns, "app=agent", node, 1)
	if now[0].UID != agents[0].UID {
		t.Error("the DaemonSet pod was replaced: a drain must leave it alone")
	}
}

func testWaitForReady(t *testing.T, s *stack.Stack, client kubernetes.Interface) {
	ctx := testCtx(t, 2*time.Minute)
	c := newCluster(t, s)

	// The instance's node registers a moment after the wait begins, as a
	// new kwok node, and kwok makes it Ready.
	spec := stack.NodeSpec{Name: "rdy-new", NodeGroup: "ready", Zone: "us-east-1b"}
	go func() {
		time.Sleep(300 * time.Millisecond)
		if _, err := client.CoreV1().Nodes().Create(ctx, spec.Node(), metav1.CreateOptions{}); err != nil {
			t.Errorf("create node: %v", err)
		}
	}()
	start := time.Now()
	n, err := c.WaitForReady(ctx, "kwok://rdy-new", 60*time.Second)
	if err != nil {
		t.Fatalf("WaitForReady: %v", err)
	}
	t.Logf("node %s Ready %s after the wait began", n.Name, time.Since(start).Round(time.Millisecond))
	if n.Name != "rdy-new" || !n.Ready || n.InstanceID != "rdy-new" || n.Zone != "us-east-1b" || n.NodeGroup != "ready" {
		t.Errorf("WaitForReady = %+v", n)
	}
	// By instance id too.
	if n, err := c.WaitForReady(ctx, "rdy-new", time.Second); err != nil || n.Name != "rdy-new" {
		t.Errorf("WaitForReady by instance id = %+v, %v", n, err)
	}

	// An instance whose node never registers.
	_, err = c.WaitForReady(ctx, "kwok://rdy-never", 2*time.Second)
	var te *kube.ReadyTimeoutError
	if !errors.As(err, &te) || te.ID != "kwok://rdy-never" || te.Node != "" {
		t.Fatalf("WaitForReady(never) = %v, want *ReadyTimeoutError without a node", err)
	}
	// The Event goes on the instance id, a valid object name.
	waitEvent(t, ctx, client, "rdy-never", kube.ReasonNodeReadyTimeout)

	// A node that registers but never turns Ready (kwok leaves it alone).
	stuck := stack.NodeSpec{Name: "rdy-stuck", NodeGroup: "ready", Unmanaged: true}
	if err := s.CreateNodes(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitForReady(ctx, "rdy-stuck", 2*time.Second)
	if !errors.As(err, &te) || te.Node != "rdy-stuck" {
		t.Fatalf("WaitForReady(stuck) = %v, want *ReadyTimeoutError naming the node", err)
	}
	ev := waitEvent(t, ctx, client, "rdy-stuck", kube.ReasonNodeReadyTimeout)
	if ev.Type != corev1.EventTypeWarning {
		t.Errorf("NodeReadyTimeout event type %s", ev.Type)
	}
}

func testResume(t *testing.T, s *stack.Stack, client kubernetes.Interface) {
	ctx := testCtx(t, 3*time.Minute)
	const ns, group = "resume", "resume"
	createNamespace(t, ctx, client, ns)
	if err := s.CreateNodes(ctx, nodeSpecs(group, "rs-finish", "rs-rollback", "rs-person", "rs-spare")...); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, s)
	for _, node := range []string{"rs-finish", "rs-rollback"} {
		createDeployment(t, ctx, client, ns, node, 2, map[string]string{"kubernetes.io/hostname": node})
		waitReadyPods(t, ctx, client, ns, "app="+node, node, 2)
	}
	createDeployment(t, ctx, client, ns, "person", 1, map[string]string{"kubernetes.io/hostname": "rs-person"})
	waitReadyPods(t, ctx, client, ns, "app=person", "rs-person", 1)

	// A replica cordoned rs-finish and rs-rollback and crashed mid-drain.
	for _, node := range []string{"rs-finish", "rs-rollback"} {
		if ours, err := c.Cordon(ctx, node); err != nil || !ours {
			t.Fatalf("Cordon(%s) = %v, %v", node, ours, err)
		}
	}
	// A person cordoned rs-person (kubectl cordon).
	n := getNode(t, ctx, client, "rs-person")
	n.Spec.Unschedulable = true
	if _, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	got, err := c.Resume(ctx, "rs-finish", kube.ResumeOptions{Finish: true, Drain: kube.DrainOptions{Timeout: time.Minute}})
	if err != nil || got != kube.ResumeDrained {
		t.Errorf("Resume(rs-finish, finish) = %q, %v; want drained", got, err)
	}
	if left := podsOnNode(t, ctx, client, "rs-finish"); len(left) != 0 {
		t.Errorf("pods left on rs-finish: %v", left)
	}
	if !getNode(t, ctx, client, "rs-finish").Spec.Unschedulable {
		t.Error("rs-finish not cordoned after the finished drain")
	}

	got, err = c.Resume(ctx, "rs-rollback", kube.ResumeOptions{})
	if err != nil || got != kube.ResumeUncordoned {
		t.Errorf("Resume(rs-rollback) = %q, %v; want uncordoned", got, err)
	}
	if n := getNode(t, ctx, client, "rs-rollback"); n.Spec.Unschedulable || kube.CordonedBySmartScale(n) {
		t.Error("rs-rollback still cordoned after roll back")
	}
	waitReadyPods(t, ctx, client, ns, "app=rs-rollback", "rs-rollback", 2) // untouched

	for _, finish := range []bool{false, true} {
		got, err = c.Resume(ctx, "rs-person", kube.ResumeOptions{Finish: finish})
		if err != nil || got != kube.ResumeNotOurs {
			t.Errorf("Resume(rs-person, finish=%v) = %q, %v; want not_ours", finish, got, err)
		}
	}
	if !getNode(t, ctx, client, "rs-person").Spec.Unschedulable {
		t.Error("SmartScale uncordoned a node a person cordoned")
	}
	waitReadyPods(t, ctx, client, ns, "app=person", "rs-person", 1)
	if done, err := c.Uncordon(ctx, "rs-person"); err != nil || done {
		t.Errorf("Uncordon(rs-person) = %v, %v; want refused", done, err)
	}

	if got, err := c.Resume(ctx, "rs-missing", kube.ResumeOptions{Finish: true}); err != nil || got != kube.ResumeNodeGone {
		t.Errorf("Resume(missing) = %q, %v; want node_gone", got, err)
	}
}

func testSnapshotAndDeleteNode(t *testing.T, s *stack.Stack, client kubernetes.Interface) {
	ctx := testCtx(t, 2*time.Minute)
	const ns, group = "snap", "snap"
	createNamespace(t, ctx, client, ns)
	specs := []stack.NodeSpec{
		{Name: "snap-a", NodeGroup: group, Zone: "us-east-1a", Market: "spot", InstanceType: "t3.medium", CPU: "2", Memory: "4Gi"},
		{Name: "snap-b", NodeGroup: group, Zone: "us-east-1b", Market: "on-demand", CPU: "2", Memory: "4Gi"},
	}
	if err := s.CreateNodes(ctx, specs...); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, s)
	createDeployment(t, ctx, client, ns, "web", 3, map[string]string{kube.LabelNodeGroup: group})
	waitReadyPods(t, ctx, client, ns, "app=web", "", 3)
	// More than fits: 40 × 100m on 2 × 2 CPU leaves some Pending.
	createDeployment(t, ctx, client, ns, "big", 40, map[string]string{kube.LabelNodeGroup: group})

	// Other subtests leave pending pods of their own; count this namespace's.
	var total, bound, unsched int
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		sn, err := c.Snapshot(group)
		if err != nil {
			return false, err
		}
		total, bound, unsched = 0, 0, 0
		for _, p := range sn.Pods {
			if p.Namespace != ns {
				continue
			}
			total++
			if p.NodeName != "" {
				bound++
			}
			if p.Unschedulable {
				unsched++
			}
		}
		// 2 nodes × 2000m / 100m = 40 pods fit; 43 exist.
		return total == 43 && bound == 40 && unsched == 3, nil
	})
	if err != nil {
		t.Fatalf("snapshot never showed 43 pods, 40 bound, 3 unschedulable (got %d, %d, %d): %v", total, bound, unsched, err)
	}
	sn, _ := c.Snapshot(group)
	var names []string
	for _, n := range sn.Nodes {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"snap-a", "snap-b"}) {
		t.Fatalf("snapshot nodes = %v", names)
	}
	a := sn.Nodes[0]
	if a.Zone != "us-east-1a" || a.Market != "spot" || a.InstanceType != "t3.medium" || a.InstanceID != "snap-a" ||
		!a.Ready || a.Allocatable.MilliCPU != 2000 || a.Allocatable.Memory != 4<<30 || a.Allocatable.Pods != 110 {
		t.Errorf("node snap-a = %+v", a)
	}
	for _, p := range sn.Pods {
		if p.Namespace != ns {
			continue
		}
		if p.OwnerKind != "ReplicaSet" || p.Requests.MilliCPU != 100 || p.Requests.Memory != 64<<20 {
			t.Errorf("pod %s = %+v", p.Name, p)
			break
		}
	}

	if err := client.AppsV1().Deployments(ns).Delete(ctx, "big", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNode(ctx, "snap-b"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNode(ctx, "snap-b"); err != nil {
		t.Errorf("second DeleteNode: %v", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		sn, err := c.Snapshot(group)
		return err == nil && len(sn.Nodes) == 1, nil
	}); err != nil {
		t.Errorf("deleted node still in the snapshot: %v", err)
	}
}

func resourceRequests(cpu, mem string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
	}}
}
