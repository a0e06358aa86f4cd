// Package crash_test kills a real `smartscale serve` process (SIGKILL) at
// every journal step of a scale-up, a scale-down and a spot interruption,
// before and after the step's side effect, starts a fresh replica on the
// same DynamoDB table, and checks that the fresh one finishes or rolls back
// what the dead one began: no node left cordoned by SmartScale, no instance
// without a Ready node after the ready timeout, no node removed before its
// pods were evicted, the group at the size the outcome says and every pod
// of the workload Running.
//
// The binary is built with the "failpoints" tag (package
// internal/failpoint): SMARTSCALE_FAILPOINT=<kind>/<step>/<before|after>
// makes replica A stop at that point and say so in its log, which is when
// the test kills it — a deterministic point, a real crash. Each point gets
// its own node group (and Deployment), so one stack serves them all.
package crash_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/cloud/kwok"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/failpoint"
	"github.com/smartscale/smartscale/internal/kube"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/dynamo"
)

const (
	table     = "smartscale-crash"
	clusterID = "crash"
	namespace = "crash"
	replicas  = 6
	// lockTTL is how long the dead replica's lease outlives it; the fresh
	// replica's reconciler looks every reconcileInterval.
	lockTTL           = 4 * time.Second
	reconcileInterval = time.Second
	// nodeReadyTimeout bounds how long an instance may lack a Ready node.
	nodeReadyTimeout = 15 * time.Second
	// drainTimeout must outlast the takeover (kill + lockTTL + a reconcile
	// round + the fresh replica's start), or a resumed drain is rolled back
	// instead of finished.
	drainTimeout = 30 * time.Second
)

// point is one failpoint and what recovery from a crash there must give.
type point struct {
	kind, step, when string
	// want is the operation's recorded end: succeeded or rolled_back.
	want string
	// atKill checks the world at the moment of the kill, proving the crash
	// came before or after the step's side effect.
	atKill func(ctx context.Context, w *world) error
}

func (p point) name() string { return p.kind + "/" + p.step + "/" + p.when }

// The scale-up starts at 2 nodes and adds 2 (urgency high); the scale-down
// starts at 3 nodes (two in us-east-1a) and removes one.
const (
	upBefore, upAfter     = 2, 4
	downBefore, downAfter = 3, 2
)

var points = []point{
	{"scale_up", "launching", failpoint.Before, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantNodes(ctx, upBefore, "no instance launched yet")
	}},
	{"scale_up", "launching", failpoint.After, "succeeded", func(ctx context.Context, w *world) error {
		if err := w.wantNodes(ctx, upAfter, "instances launched"); err != nil {
			return err
		}
		if len(w.op.Instances) != 0 {
			return fmt.Errorf("journal already names the instances %v: the kill came after the journal write", w.op.Instances)
		}
		return nil
	}},
	{"scale_up", "waiting_ready", failpoint.Before, "succeeded", func(ctx context.Context, w *world) error {
		if len(w.op.Instances) != upAfter-upBefore {
			return fmt.Errorf("journal names instances %v, want %d", w.op.Instances, upAfter-upBefore)
		}
		return w.wantNodes(ctx, upAfter, "instances launched and journaled")
	}},
	{"scale_up", "waiting_ready", failpoint.After, "succeeded", func(ctx context.Context, w *world) error {
		nodes, err := w.nodes(ctx)
		if err != nil {
			return err
		}
		if len(nodes) != upAfter || harness.ReadyCount(nodes) != upAfter {
			return fmt.Errorf("nodes %v, want %d Ready: the wait was over", nodes, upAfter)
		}
		return nil
	}},
	{"scale_down", "cordoning", failpoint.Before, "rolled_back", func(ctx context.Context, w *world) error {
		return w.wantTarget(ctx, false, replicas/downBefore)
	}},
	{"scale_down", "cordoning", failpoint.After, "rolled_back", func(ctx context.Context, w *world) error {
		return w.wantTarget(ctx, true, replicas/downBefore)
	}},
	{"scale_down", "draining", failpoint.Before, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTarget(ctx, true, replicas/downBefore)
	}},
	{"scale_down", "draining", failpoint.After, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTarget(ctx, true, 0)
	}},
	{"scale_down", "terminating", failpoint.Before, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTarget(ctx, true, 0)
	}},
	{"scale_down", "terminating", failpoint.After, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTargetGone(ctx, "the instance (kwok: the Node) is terminated")
	}},
	{"scale_down", "deleting_node", failpoint.Before, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTargetGone(ctx, "the instance is terminated")
	}},
	{"scale_down", "deleting_node", failpoint.After, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTargetGone(ctx, "the Node is deleted")
	}},
	// An interruption's journal starts at draining (the drain cordons);
	// AWS ends the instance, SmartScale only deletes the Node after.
	{"interruption", "draining", failpoint.Before, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTarget(ctx, false, replicas/downBefore)
	}},
	{"interruption", "draining", failpoint.After, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTarget(ctx, true, 0)
	}},
	{"interruption", "deleting_node", failpoint.Before, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTarget(ctx, true, 0)
	}},
	{"interruption", "deleting_node", failpoint.After, "succeeded", func(ctx context.Context, w *world) error {
		return w.wantTargetGone(ctx, "the Node is deleted")
	}},
}

// env is what the subtests share: one stack, one binary, one table.
type env struct {
	bin    string
	st     *stack.Stack
	client kubernetes.Interface
	store  *dynamo.Store
	kwok   *kwok.Provider
}

func TestCrashAtEveryJournalStep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack and smartscale processes")
	}
	ctx := context.Background()
	start := time.Now()
	e := &env{bin: harness.Build(t, "failpoints")}
	e.st = stack.Start(t, stack.Options{Dynalite: true, Kwok: true})
	e.client = e.st.Client()
	quiet := slog.New(slog.DiscardHandler)
	e.store = dynamo.New(e.st.DynamoClient(), table, clusterID, 5*time.Second, state.Options{Logger: quiet})
	e.kwok = kwok.New(e.client, kwok.Options{Logger: quiet})
	if _, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("stack and binary ready in %s", time.Since(start).Round(time.Millisecond))
	for i, p := range points {
		t.Run(p.name(), func(t *testing.T) {
			began := time.Now()
			group := fmt.Sprintf("crash-%02d", i)
			e.crashAt(t, group, p)
			t.Logf("%s: %s in %s", p.name(), p.want, time.Since(began).Round(time.Millisecond))
		})
	}
}

// world is one subtest's group and what the test knows of its operation.
type world struct {
	e      *env
	group  string
	op     state.Operation // as journaled at the kill
	target string          // the node a scale-down removes
}

func (w *world) nodes(ctx context.Context) ([]harness.Node, error) {
	return harness.GroupNodes(ctx, w.e.client, w.group)
}

func (w *world) wantNodes(ctx context.Context, n int, why string) error {
	nodes, err := w.nodes(ctx)
	if err != nil {
		return err
	}
	if len(nodes) != n {
		return fmt.Errorf("%d nodes %v, want %d (%s)", len(nodes), nodes, n, why)
	}
	return nil
}

// wantTarget checks the scale-down's node: present, cordoned by SmartScale
// or not, with this many pods of the workload still on it.
func (w *world) wantTarget(ctx context.Context, cordoned bool, pods int) error {
	node, err := w.e.client.CoreV1().Nodes().Get(ctx, w.target, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("target node: %w", err)
	}
	if ours := node.Annotations[kube.AnnotationCordonedBy] == kube.CordonedBy; ours != cordoned || node.Spec.Unschedulable != cordoned {
		return fmt.Errorf("node %s cordoned=%v (ours=%v), want %v", w.target, node.Spec.Unschedulable, ours, cordoned)
	}
	on, err := w.podsOn(ctx, w.target)
	if err != nil {
		return err
	}
	if len(on) != pods {
		return fmt.Errorf("node %s runs %d pods of the workload %v, want %d", w.target, len(on), on, pods)
	}
	return nil
}

func (w *world) wantTargetGone(ctx context.Context, why string) error {
	_, err := w.e.client.CoreV1().Nodes().Get(ctx, w.target, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("target node %s still there (%v), want it gone: %s", w.target, err, why)
	}
	return nil
}

// podsOn lists the workload's pods bound to node and not being deleted.
func (w *world) podsOn(ctx context.Context, node string) ([]string, error) {
	list, err := w.e.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app=" + w.group, FieldSelector: "spec.nodeName=" + node,
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	return out, nil
}

func (e *env) crashAt(t *testing.T, group string, p point) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := &world{e: e, group: group}
	before, after := upBefore, upAfter
	if p.kind != "scale_up" {
		before, after = downBefore, downAfter
	}
	if p.want == "rolled_back" {
		after = before
	}
	// Registered first, so it runs after the replicas are stopped.
	t.Cleanup(func() { e.removeGroup(t, group) })

	e.provision(t, ctx, group, before)
	e.deploy(t, ctx, group)
	nodes, err := w.nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if on, err := w.podsOn(ctx, n.Name); err != nil || len(on) != replicas/before {
			t.Fatalf("workload spread: node %s runs %v (%v), want %d pods", n.Name, on, err, replicas/before)
		}
	}
	rm, err := watchRemovals(ctx, e.client, namespace, "app="+group, harness.GroupLabel+"="+group)
	if err != nil {
		t.Fatal(err)
	}

	serve := harness.ServeOptions{
		Bin: e.bin, Stack: e.st, Table: table, ClusterID: clusterID, NodeGroups: nodeGroup(group),
		LockTTL: lockTTL, ReconcileInterval: reconcileInterval,
	}
	a := serve
	a.Name, a.Env = "a-"+group, []string{failpoint.Env + "=" + p.name()}
	var queue *harness.SQSQueue
	if p.kind == "interruption" {
		// Only A polls the queue: B recovers from the journal alone.
		queue = harness.NewSQSQueue(t)
		a.InterruptionQueueURL = queue.URL
		a.Env = append(a.Env, "AWS_ENDPOINT_URL_SQS="+queue.Endpoint, "AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
			"AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true")
	}
	replicaA := harness.StartServe(t, a)

	var opID string
	switch p.kind {
	case "interruption":
		// A node of the zone that keeps another, so no replacement is due.
		for _, n := range nodes {
			if n.Zone == "us-east-1a" {
				w.target = n.Name
				break
			}
		}
		queue.Send(spotWarning(t, w.target, time.Now()))
	default:
		opID, w.target = notify(t, ctx, replicaA, group, p.kind)
	}

	err = harness.Eventually(ctx, 45*time.Second, 50*time.Millisecond, "replica A at "+p.name(), func(context.Context) (bool, error) {
		if proc := replicaA.Process(); proc.Exited() {
			return false, fmt.Errorf("replica A exited: %v", proc.Wait())
		}
		_, ok, err := replicaA.FirstLog(time.Time{}, func(l harness.LogLine) bool {
			return l.Msg == "failpoint reached" && l.Str("failpoint") == p.name()
		})
		return ok, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := replicaA.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if p.kind == "interruption" {
		opID = w.interruption(t, ctx)
	}

	// The journal holds the operation at the step, unfinished, A's.
	if w.op, err = e.store.Operation(ctx, opID); err != nil {
		t.Fatal(err)
	}
	if w.op.Done() || w.op.Step != p.step || w.op.Owner == "" {
		t.Fatalf("journal at the kill: %+v, want unfinished at step %s", w.op, p.step)
	}
	if err := p.atKill(ctx, w); err != nil {
		t.Fatalf("at the kill: %v", err)
	}

	b := serve
	b.Name = "b-" + group
	replicaB := harness.StartServe(t, b)
	err = harness.Eventually(ctx, 30*time.Second, 100*time.Millisecond, "replica B adopts the operation", func(context.Context) (bool, error) {
		_, ok, err := replicaB.FirstLog(time.Time{}, func(l harness.LogLine) bool {
			return l.Msg == "adopted an unfinished operation" && l.Str("operation") == opID && l.Str("step") == p.step
		})
		return ok, err
	})
	if err != nil {
		t.Fatal(err)
	}
	adopted := time.Now()

	var last string
	var wrong error
	err = harness.Eventually(ctx, nodeReadyTimeout+30*time.Second, 200*time.Millisecond, "the end state", func(ctx context.Context) (bool, error) {
		problems, err := w.endState(ctx, replicaB, opID, p.want, after)
		if errors.Is(err, errWrongEnd) {
			wrong = err // final: no use waiting
			return true, nil
		}
		last = strings.Join(problems, "; ")
		return err == nil && len(problems) == 0, err
	})
	if wrong != nil {
		t.Fatal(wrong)
	}
	if err != nil {
		t.Fatalf("%v\nlast: %s", err, last)
	}
	undrained, werrs := rm.undrained()
	for _, u := range undrained {
		t.Error(u)
	}
	for _, err := range werrs {
		t.Error(err)
	}
	deleted := rm.deleted()
	if p.kind != "scale_up" && p.want == "succeeded" && (len(deleted) != 1 || deleted[0] != w.target) {
		t.Errorf("nodes deleted %v, want only %s", deleted, w.target)
	}
	if (p.kind == "scale_up" || p.want == "rolled_back") && len(deleted) != 0 {
		t.Errorf("nodes deleted %v, want none", deleted)
	}
	t.Logf("killed at %s; B adopted %s later; settled %s after that", p.name(),
		adopted.Sub(killed).Round(time.Millisecond), time.Since(adopted).Round(time.Millisecond))
}

// notify posts a firing notification asking the group to scale and
// returns the accepted decision's operation and node.
func notify(t *testing.T, ctx context.Context, sv *harness.Serve, group, action string) (op, node string) {
	t.Helper()
	urgency := "normal"
	if action == "scale_up" {
		urgency = "high"
	}
	// The replica's own reconciler holds the group's lock for a moment
	// every reconcileInterval; a notification that meets it is answered
	// 200 "in_progress_elsewhere" and not remembered, so it is sent again,
	// as Alertmanager would at its next group_interval.
	body := notification(group, action, urgency, time.Now())
	var rec decision.Record
	err := harness.Eventually(ctx, 15*time.Second, 100*time.Millisecond, "notification accepted", func(ctx context.Context) (bool, error) {
		code, a, err := sv.Post(ctx, body)
		if err == nil && code == http.StatusOK && len(a.Decisions) == 1 && len(a.Decisions[0].Reasons) > 0 &&
			strings.HasPrefix(a.Decisions[0].Reasons[0], "in_progress_elsewhere") {
			return false, nil
		}
		if err != nil || code != http.StatusAccepted || len(a.Decisions) != 1 || a.Decisions[0].Outcome != decision.Accepted {
			return false, fmt.Errorf("POST %s: %d %+v %v", action, code, a, err)
		}
		rec = a.Decisions[0]
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if action == "scale_down" && rec.Node == "" {
		t.Fatalf("scale_down accepted without a node: %+v", rec)
	}
	return rec.Operation, rec.Node
}

// spotWarning is the EventBridge document of a spot interruption warning
// for node (the kwok provider's instance id is the node name).
func spotWarning(t *testing.T, node string, now time.Time) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "internal", "interruption", "testdata", "spot-interruption-warning.json"))
	if err != nil {
		t.Fatal(err)
	}
	event := strings.ReplaceAll(string(doc), "i-0f3e2d1c0b9a80002", node)
	return strings.ReplaceAll(event, "2026-03-02T10:41:07Z", now.UTC().Format(time.RFC3339))
}

// interruption returns the journaled interruption of the target node,
// checking it is the group's only operation (no replacement was due).
func (w *world) interruption(t *testing.T, ctx context.Context) string {
	t.Helper()
	ops, err := w.e.store.UnfinishedOperations(ctx, w.group)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].Kind != "interruption" || ops[0].Node != w.target {
		t.Fatalf("operations at the kill: %+v, want one interruption of %s", ops, w.target)
	}
	return ops[0].ID
}

// errWrongEnd marks an end state that waiting cannot change: the operation
// finished otherwise than it must.
var errWrongEnd = errors.New("wrong end")

// endState lists what is not yet as recovery must leave it.
func (w *world) endState(ctx context.Context, b *harness.Serve, opID, want string, count int) ([]string, error) {
	var problems []string
	recs, err := b.Decisions(ctx, w.group)
	if err != nil {
		return nil, err
	}
	var end *decision.Record
	for i := range recs {
		if recs[i].Operation == opID && recs[i].Outcome != decision.Accepted {
			end = &recs[i]
		}
	}
	switch {
	case end == nil:
		problems = append(problems, "no recorded end of operation "+opID)
	case len(end.Reasons) == 0 || end.Reasons[0] != want:
		return nil, fmt.Errorf("%w: operation %s recorded %s %v, want %s", errWrongEnd, opID, end.Outcome, end.Reasons, want)
	}
	op, err := w.e.store.Operation(ctx, opID)
	if err != nil {
		return nil, err
	}
	if !op.Done() {
		problems = append(problems, fmt.Sprintf("journal: operation at step %s, unfinished", op.Step))
	} else if op.Result != want {
		return nil, fmt.Errorf("%w: journal: operation %s finished %s, want %s", errWrongEnd, opID, op.Result, want)
	}
	if open, err := w.e.store.UnfinishedOperations(ctx, w.group); err != nil {
		return nil, err
	} else if len(open) > 0 {
		problems = append(problems, fmt.Sprintf("%d unfinished operations", len(open)))
	}

	nodes, err := w.nodes(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.OurCordon || n.Cordoned {
			problems = append(problems, "node left cordoned: "+n.String())
		}
		if !n.Ready {
			problems = append(problems, "node not Ready: "+n.String())
		}
		if n.Name == w.target && want == "succeeded" {
			problems = append(problems, "node not removed: "+n.String())
		}
	}
	if len(nodes) != count {
		problems = append(problems, fmt.Sprintf("%d nodes %v, want %d", len(nodes), nodes, count))
	}
	// The cloud's view: every instance of the group has a Ready node.
	instances, err := w.e.kwok.List(ctx, w.group)
	if err != nil {
		return nil, err
	}
	for _, in := range instances {
		if in.State != cloud.Running {
			problems = append(problems, fmt.Sprintf("instance %s is %s, without a Ready node", in.ID, in.State))
		}
	}

	pods, err := w.e.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + w.group})
	if err != nil {
		return nil, err
	}
	running := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(&p) {
			running++
		}
	}
	if running != replicas || len(pods.Items) != replicas {
		problems = append(problems, fmt.Sprintf("%d of %d workload pods Running (%d pods)", running, replicas, len(pods.Items)))
	}
	return problems, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// provision launches the group's first nodes with the kwok provider, as
// SmartScale itself would (one per zone, then the rest in us-east-1a), and
// waits until they are Ready.
func (e *env) provision(t *testing.T, ctx context.Context, group string, n int) {
	t.Helper()
	req := cloud.CreateRequest{Group: group, InstanceTypes: []string{"t3.small"}, ClientToken: "setup",
		Launches: []cloud.Launch{{Zone: "us-east-1a", Market: cloud.OnDemand, Count: n - 1}, {Zone: "us-east-1b", Market: cloud.OnDemand, Count: 1}}}
	if _, err := e.kwok.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	err := harness.Eventually(ctx, 30*time.Second, 100*time.Millisecond, fmt.Sprintf("%d Ready nodes in %s", n, group), func(ctx context.Context) (bool, error) {
		// Ready, and without the not-ready taint the node lifecycle
		// controller removes a moment later: the workload's spread
		// counts only untainted nodes.
		list, err := e.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: harness.GroupLabel + "=" + group})
		if err != nil || len(list.Items) != n {
			return false, err
		}
		for _, node := range list.Items {
			if len(node.Spec.Taints) > 0 || !nodeReady(&node) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// deploy runs the group's workload: replicas pods spread evenly over the
// group's schedulable nodes, and a PodDisruptionBudget that lets one go at
// a time. It waits until every pod runs and the budget allows a disruption.
func (e *env) deploy(t *testing.T, ctx context.Context, group string) {
	t.Helper()
	labels := map[string]string{"app": group}
	honor := corev1.NodeInclusionPolicyHonor
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: group, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{harness.GroupLabel: group},
					TerminationGracePeriodSeconds: ptr(int64(1)),
					// Even spread, so the node a scale-down picks has pods to
					// evict; cordoned nodes are no domain (nodeTaintsPolicy
					// Honor), so evicted pods land on the others.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, NodeTaintsPolicy: &honor,
					}},
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.invalid/app:1",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi"),
						}},
					}},
				},
			},
		},
	}
	if _, err := e.client.AppsV1().Deployments(namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: group, Namespace: namespace},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := e.client.PolicyV1().PodDisruptionBudgets(namespace).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := harness.Eventually(ctx, 60*time.Second, 200*time.Millisecond, "workload running, budget allows one disruption", func(ctx context.Context) (bool, error) {
		d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, group, metav1.GetOptions{})
		if err != nil || d.Status.AvailableReplicas != replicas {
			return false, err
		}
		b, err := e.client.PolicyV1().PodDisruptionBudgets(namespace).Get(ctx, group, metav1.GetOptions{})
		return err == nil && b.Status.ObservedGeneration == b.Generation && b.Status.DisruptionsAllowed == 1, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// removeGroup deletes the subtest's workload and nodes, so later subtests
// run on a small cluster.
func (e *env) removeGroup(t *testing.T, group string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	if err := e.client.AppsV1().Deployments(namespace).Delete(ctx, group, opts); err != nil && !apierrors.IsNotFound(err) {
		t.Logf("cleanup: %v", err)
	}
	if err := e.client.PolicyV1().PodDisruptionBudgets(namespace).Delete(ctx, group, opts); err != nil && !apierrors.IsNotFound(err) {
		t.Logf("cleanup: %v", err)
	}
	if err := e.client.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: harness.GroupLabel + "=" + group}); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

// nodeGroup is the nodeGroups entry of a subtest's group: no cooldown
// between the setup and the notification, timers short enough for a test.
func nodeGroup(group string) string {
	return fmt.Sprintf(`  - name: %s
    minNodes: 2
    maxNodes: 6
    zones: [us-east-1a, us-east-1b]
    instanceTypes: [t3.small]
    spotPercentage: 0
    scaleUpStep: {normal: 1, high: %d}
    cooldowns: {scaleUp: 1m, scaleDown: 1m}
    scaleDownDelayAfterScaleUp: 0s
    minNodeAge: 0s
    nodeReadyTimeout: %s
    drainTimeout: %s
`, group, upAfter-upBefore, nodeReadyTimeout, drainTimeout)
}

// notification is an Alertmanager webhook body (version 4) with one firing
// alert asking group to scale.
func notification(group, action, urgency string, now time.Time) []byte {
	labels := map[string]string{
		"alertname": "SmartScaleCrashTest", "severity": "warning",
		"smartscale_action": action, "smartscale_nodegroup": group, "smartscale_urgency": urgency,
	}
	body, err := json.Marshal(map[string]any{
		"receiver": "smartscale", "status": "firing", "notification_reason": "new_alerts",
		"alerts": []map[string]any{{
			"status": "firing", "labels": labels,
			"annotations":  map[string]string{"summary": action + " for the crash test", "runbook_url": "https://runbooks.invalid/crash"},
			"startsAt":     now.UTC().Format(time.RFC3339Nano),
			"endsAt":       "0001-01-01T00:00:00Z",
			"generatorURL": "http://prometheus.invalid/graph",
			"fingerprint":  fmt.Sprintf("%016x", now.UnixNano()),
		}},
		"groupLabels":       map[string]string{"smartscale_nodegroup": group},
		"commonLabels":      labels,
		"commonAnnotations": map[string]string{},
		"routeLabels":       map[string]string{"smartscale_action": action},
		"externalURL":       "http://alertmanager.invalid",
		"version":           "4",
		"groupKey":          fmt.Sprintf(`{}/{smartscale_action=~"^(?:scale_up|scale_down)$"}:{smartscale_nodegroup=%q}`, group),
		"truncatedAlerts":   0,
	})
	if err != nil {
		panic(err)
	}
	return body
}

func ptr[T any](v T) *T { return &v }
