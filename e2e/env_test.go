package e2e_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/nodeexporter"
	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/cloud/kwok"
	"github.com/smartscale/smartscale/internal/decision"
)

// forScale compresses the rules' for: durations: 3m → 3.6s, 10m → 12s.
const forScale = 0.02

// Alertmanager timers of the smartscale route in the scenarios (production:
// 10s / 1m / 5m). The goal "firing → provider call ≤ group_wait + 1s" is
// measured against groupWait.
const (
	groupWait      = 1 * time.Second
	groupInterval  = 2 * time.Second
	repeatInterval = 4 * time.Second
)

// binary, demoApp and ruleFiles are built once per test binary by TestMain.
var (
	binary    string
	demoApp   string
	ruleFiles []string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "smartscale-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	binary = filepath.Join(dir, "smartscale")
	if err := harness.BuildTo(ctx, binary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	demoApp = filepath.Join(dir, "demoapp")
	if err := harness.BuildPackage(ctx, "./cmd/demoapp", demoApp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ruleFiles, err = harness.ExportRules(ctx, binary, filepath.Join(dir, "rules"), forScale)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// envOptions shape one scenario's world.
type envOptions struct {
	// replicas of smartscale serve (default 1), all on one table.
	replicas int
	// alertmanagers in one gossip cluster (default 1).
	alertmanagers int
	// nodes per zone created through the kwok provider (as if SmartScale
	// had launched them earlier) before serve starts; the group's minimum
	// is 2 whatever this says.
	nodes map[string]int
	// nodeGroups replaces harness.DefaultNodeGroups.
	nodeGroups string
	// dynalitePersist keeps the table across a dynalite stop/start.
	dynalitePersist bool
	// scrape adds Prometheus jobs (the demo app).
	scrape []stack.ScrapeTarget
	// serveEnv and extra go to every serve process; queueURL is the SQS
	// interruption queue they poll.
	serveEnv []string
	extra    string
	queueURL string
}

// env is one scenario's stack, SmartScale replicas and sinks.
type env struct {
	t     *testing.T
	ctx   context.Context
	st    *stack.Stack
	serve []*harness.Serve
	slack *harness.SlackSink
	tl    harness.Timeline
	start time.Time
	seen  time.Time // when waitNodes' condition was met
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end scenario: starts the whole local stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, start: time.Now()}
	st := stack.Start(t, stack.Options{
		Dynalite: true, DynalitePersist: o.dynalitePersist,
		Kwok: true, KubeStateMetrics: true, NodeExporter: true,
		Prometheus: true, RuleFiles: ruleFiles, ScrapeTargets: o.scrape,
		Alertmanager: true, AlertmanagerReplicas: max(o.alertmanagers, 1),
	})
	e.st = st

	if len(o.nodes) > 0 {
		e.launch(cloud.OnDemand, o.nodes)
	}
	e.slack = harness.NewSlackSink(t)
	token := harness.RandomToken()
	var urls []string
	for i := range max(o.replicas, 1) {
		sv := harness.StartServe(t, harness.ServeOptions{
			Bin: binary, Stack: st, Name: fmt.Sprintf("smartscale-%d", i+1), Token: token,
			NodeGroups: o.nodeGroups, SlackURL: e.slack.URL, Env: o.serveEnv, Extra: o.extra,
			InterruptionQueueURL: o.queueURL,
		})
		e.serve = append(e.serve, sv)
		urls = append(urls, sv.URL)
	}
	err := harness.PointAlertmanagers(ctx, st, token, harness.AlertmanagerOptions{
		WebhookURLs: urls, Dir: t.TempDir(),
		GroupWait: groupWait, GroupInterval: groupInterval, RepeatInterval: repeatInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.logf("stack, %d smartscale replica(s) and %d alertmanager(s) ready", len(e.serve), max(o.alertmanagers, 1))
	return e
}

func (e *env) logf(format string, args ...any) {
	e.t.Helper()
	e.t.Logf("[%6.1fs] %s", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...))
}

// launch creates Ready kwok nodes of group workers through the provider
// SmartScale uses, so they are indistinguishable from ones it launched.
func (e *env) launch(market cloud.Market, perZone map[string]int) {
	e.t.Helper()
	req := cloud.CreateRequest{Group: "workers", InstanceTypes: []string{"t3.small"}, ClientToken: harness.RandomToken()}
	want := len(e.nodes())
	for _, z := range slices.Sorted(maps.Keys(perZone)) {
		req.Launches = append(req.Launches, cloud.Launch{Zone: z, Market: market, Count: perZone[z]})
		want += perZone[z]
	}
	if _, err := kwok.New(e.st.Client(), kwok.Options{Logger: slog.New(slog.DiscardHandler)}).Create(e.ctx, req); err != nil {
		e.t.Fatal(err)
	}
	e.waitNodes(fmt.Sprintf("%d Ready nodes", want), 60*time.Second, func(n []harness.Node) bool {
		return len(n) == want && harness.ReadyCount(n) == want
	})
}

// nodes lists group workers.
func (e *env) nodes() []harness.Node {
	e.t.Helper()
	n, err := harness.GroupNodes(e.ctx, e.st.Client(), "workers")
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitNodes waits until cond holds for group workers, logging changes.
// e.seen is when it was first seen to hold.
func (e *env) waitNodes(what string, timeout time.Duration, cond func([]harness.Node) bool) []harness.Node {
	e.t.Helper()
	var last string
	var got []harness.Node
	defer func() { e.seen = time.Now() }()
	err := harness.Eventually(e.ctx, timeout, 200*time.Millisecond, what, func(ctx context.Context) (bool, error) {
		n, err := harness.GroupNodes(ctx, e.st.Client(), "workers")
		if err != nil {
			return false, err
		}
		if s := fmt.Sprint(n); s != last {
			e.logf("nodes: %d %s", len(n), s)
			last = s
		}
		got = n
		return cond(n), nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// decisions returns group workers' decisions, oldest first.
func (e *env) decisions() []decision.Record {
	e.t.Helper()
	recs, err := e.serve[0].Decisions(e.ctx, "workers")
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Reverse(recs)
	return recs
}

// actions returns the decisions that acted (scale_up or scale_down
// accepted: the record of the operation's start), oldest first.
func actions(recs []decision.Record, action string) []decision.Record {
	var out []decision.Record
	for _, r := range recs {
		if r.Action == action && r.Outcome == decision.Accepted {
			out = append(out, r)
		}
	}
	return out
}

// waitDecision waits for a decision matching match and returns it.
func (e *env) waitDecision(what string, timeout time.Duration, match func(decision.Record) bool) decision.Record {
	e.t.Helper()
	var found decision.Record
	err := harness.Eventually(e.ctx, timeout, 250*time.Millisecond, what, func(ctx context.Context) (bool, error) {
		recs, err := e.serve[0].Decisions(ctx, "workers")
		if err != nil {
			return false, err
		}
		for i := len(recs) - 1; i >= 0; i-- {
			if match(recs[i]) {
				found = recs[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		e.dumpDecisions()
		e.t.Fatal(err)
	}
	return found
}

func (e *env) dumpDecisions() {
	e.t.Helper()
	for _, r := range e.decisions() {
		e.t.Logf("  decision %s %-12s %-12s count=%d node=%s alerts=%s reasons=%s", r.Time.Format("15:04:05.000"),
			r.Action, r.Outcome, r.Count, r.Node, alertNames(r), strings.Join(r.Reasons, "; "))
	}
}

func alertNames(r decision.Record) string {
	var names []string
	for _, s := range r.Signals {
		names = append(names, s.AlertName)
	}
	return strings.Join(names, ",")
}

// markAction adds to the timeline, for the action decision rec of
// replica sv: the alert's firing (Prometheus' startsAt as delivered), the
// webhook's 202 answer and, for a scale-up, the provider call; and logs
// the latencies between them.
func (e *env) markAction(sv *harness.Serve, rec decision.Record) {
	e.t.Helper()
	var firing time.Time
	for _, s := range rec.Signals {
		if firing.IsZero() || s.StartsAt.After(firing) {
			firing = s.StartsAt
		}
	}
	e.tl.Mark("alert firing ("+alertNames(rec)+")", firing)
	e.tl.Mark("decision "+rec.Action+" recorded", rec.Time)
	hook, ok, err := sv.FirstLog(firing, func(l harness.LogLine) bool {
		return l.Msg == "http request" && l.Str("route") == "/v1/alerts" && l.Str("code") == "202"
	})
	if err == nil && ok {
		e.tl.Mark("webhook answered "+hook.Str("code"), hook.Time)
	}
	if rec.Action != "scale_up" {
		return
	}
	call, ok, err := sv.FirstLog(rec.Time, func(l harness.LogLine) bool { return l.Str("action") == "create" })
	if err != nil || !ok {
		return
	}
	e.tl.Mark("provider call (node "+call.Str("node")+" created)", call.Time)
	if !hook.Time.IsZero() {
		e.logf("figures: firing → webhook %s, webhook → provider call %s, firing → provider call %s (goal ≤ group_wait + 1s = %s)",
			hook.Time.Sub(firing).Round(time.Millisecond), call.Time.Sub(hook.Time).Round(time.Millisecond),
			call.Time.Sub(firing).Round(time.Millisecond), groupWait+time.Second)
	}
}

// app is Deployment app in namespace default, with a PodDisruptionBudget.
type app struct {
	replicas int32
	cpu      string // request per pod
	usage    string // cores each pod uses (what the node-exporter stand-in reports)
	// spread asks the scheduler to put pods evenly on nodes (a soft
	// topology spread on hostname: a hard one would leave a drained node's
	// pods Pending, the cordoned node still counting as a domain).
	spread bool
	// maxUnavailable of the PodDisruptionBudget (0 blocks every eviction).
	maxUnavailable int32
	// hold gives every pod a finalizer, so an evicted pod stays
	// Terminating (and a drain waits for it) until releaseHeld.
	hold bool
}

// holdFinalizer keeps evicted pods Terminating for as long as a test wants.
const holdFinalizer = "smartscale.io/e2e-hold"

// deploy creates Deployment app and its PodDisruptionBudget.
func (e *env) deploy(a app) {
	e.t.Helper()
	labels := map[string]string{"app": "demo"}
	spec := corev1.PodSpec{
		NodeSelector: map[string]string{harness.GroupLabel: "workers"},
		Containers: []corev1.Container{{Name: "app", Image: "demoapp:e2e",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(a.cpu)}}}},
		TerminationGracePeriodSeconds: new(int64),
	}
	var finalizers []string
	if a.hold {
		finalizers = []string{holdFinalizer}
	}
	if a.spread {
		spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
		}}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &a.replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{nodeexporter.AnnotationCPUUsage: a.usage}, Finalizers: finalizers},
				Spec:       spec,
			},
		},
	}
	if _, err := e.st.Client().AppsV1().Deployments("default").Create(e.ctx, d, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	mu := intstr.FromInt32(a.maxUnavailable)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &mu, Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	if _, err := e.st.Client().PolicyV1().PodDisruptionBudgets("default").Create(e.ctx, pdb, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// terminating returns the app pods that are Terminating, by node.
func (e *env) terminating() map[string][]string {
	e.t.Helper()
	list, err := e.st.Client().CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{LabelSelector: "app=demo"})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Name)
		}
	}
	return out
}

// releaseHeld removes holdFinalizer from every app pod: the Terminating
// ones go, the others can go when evicted.
func (e *env) releaseHeld() {
	e.t.Helper()
	list, err := e.st.Client().CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{LabelSelector: "app=demo"})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range list.Items {
		if len(p.Finalizers) == 0 {
			continue
		}
		_, err := e.st.Client().CoreV1().Pods("default").Patch(e.ctx, p.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			e.t.Fatal(err)
		}
	}
}

// setMaxUnavailable changes app's PodDisruptionBudget.
func (e *env) setMaxUnavailable(n int32) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"maxUnavailable":%d}}`, n)
	if _, err := e.st.Client().PolicyV1().PodDisruptionBudgets("default").Patch(e.ctx, "app", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// pods counts app's pods by phase (Running, Pending) and per node.
func (e *env) pods() (running, pending int, byNode map[string]int) {
	e.t.Helper()
	list, err := e.st.Client().CoreV1().Pods("default").List(e.ctx, metav1.ListOptions{LabelSelector: "app=demo"})
	if err != nil {
		e.t.Fatal(err)
	}
	byNode = map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodRunning:
			running++
			byNode[p.Spec.NodeName]++
		case corev1.PodPending:
			pending++
		}
	}
	return running, pending, byNode
}

// waitPods waits until app has want Running pods and none Pending.
func (e *env) waitPods(want int, timeout time.Duration) {
	e.t.Helper()
	err := harness.Eventually(e.ctx, timeout, 250*time.Millisecond, fmt.Sprintf("%d app pods Running", want), func(context.Context) (bool, error) {
		running, pending, _ := e.pods()
		return running == want && pending == 0, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// alertState returns Prometheus' state of alert name ("inactive",
// "pending", "firing").
func (e *env) alertState(name string) string {
	e.t.Helper()
	samples, err := e.st.Query(e.ctx, fmt.Sprintf(`ALERTS{alertname=%q}`, name))
	if err != nil {
		e.t.Fatal(err)
	}
	state := "inactive"
	for _, s := range samples {
		if s.Metric["alertstate"] == "firing" {
			return "firing"
		}
		state = s.Metric["alertstate"]
	}
	return state
}

// report logs the timeline.
func (e *env) report(title string) {
	e.t.Helper()
	e.t.Logf("timeline: %s\n%s", title, e.tl.String())
}

// watchFloor samples, until the test ends, the fewest nodes the group had
// and the fewest app pods Running; call the returned function to read them.
func (e *env) watchFloor() func() (minNodes, minRunning int) {
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	minNodes, minRunning := 1<<30, 1<<30
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if n, err := harness.GroupNodes(ctx, e.st.Client(), "workers"); err == nil {
				minNodes = min(minNodes, len(n))
			}
			if list, err := e.st.Client().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=demo"}); err == nil {
				running := 0
				for _, p := range list.Items {
					if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
						running++
					}
				}
				minRunning = min(minRunning, running)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	e.t.Cleanup(cancel)
	return func() (int, int) {
		cancel()
		<-done
		return minNodes, minRunning
	}
}
