// Scenarios: the whole loop on the local stack. Real Prometheus evaluates
// the real rules (for: compressed by forScale) over real kube-state-metrics
// and the node-exporter stand-in; real Alertmanager routes with the real
// alertmanager.yml (smartscale route timers shortened) to `smartscale
// serve` processes (DynamoDB state on dynalite, kwok provider), which
// change a real API server's kwok nodes. Each scenario asserts on the
// cluster and on /v1/decisions and logs its timeline.
package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/load/traffic"
	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/decision"
)

// Pending pods → scale-up: 14 pods of 500m on three 2-CPU nodes (two in
// us-east-1a, one in us-east-1b) leave two Pending; ScaleUpPendingPods
// fires, and SmartScale adds one node, in the emptier zone.
func TestScenarioPendingPodsScaleUp(t *testing.T) {
	e := newEnv(t, envOptions{nodes: map[string]int{"us-east-1a": 2, "us-east-1b": 1}})
	// 250m used of 500m requested: 50% CPU, neither busy nor idle.
	e.deploy(app{replicas: 14, cpu: "500m", usage: "250m", maxUnavailable: 1})
	deployed := time.Now()
	e.tl.Mark("deployment scaled to 14 pods (12 fit)", deployed)

	rec := e.waitDecision("a scale_up accepted for ScaleUpPendingPods", 90*time.Second, func(r decision.Record) bool {
		return r.Action == "scale_up" && r.Outcome == decision.Accepted && strings.Contains(alertNames(r), "ScaleUpPendingPods")
	})
	if rec.Count != 1 {
		t.Errorf("scale_up count = %d, want 1 (urgency normal: 2 pending pods)", rec.Count)
	}
	nodes := e.waitNodes("4 Ready nodes, two per zone", 60*time.Second, func(n []harness.Node) bool {
		z := harness.Zones(n)
		return harness.ReadyCount(n) == 4 && z["us-east-1a"] == 2 && z["us-east-1b"] == 2
	})
	var added harness.Node
	for _, n := range nodes {
		if n.Created.After(deployed.Add(-time.Second)) {
			added = n
		}
	}
	e.markAction(e.serve[0], rec)
	e.tl.Mark("node "+added.Name+" Ready (observed)", e.seen)
	e.waitPods(14, 60*time.Second)
	e.tl.Mark("all 14 pods Running", time.Now())

	e.waitDecision("the scale_up succeeded", 30*time.Second, func(r decision.Record) bool {
		return r.Operation == rec.Operation && r.Outcome == decision.Succeeded
	})
	err := harness.Eventually(e.ctx, 20*time.Second, 200*time.Millisecond, "a Slack notice of the scale-up", func(ctxt context.Context) (bool, error) {
		for _, m := range e.slack.Messages() {
			if strings.Contains(string(m.Raw), "workers") && strings.Contains(strings.ToLower(string(m.Raw)), "scale") {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Error(err)
	}
	e.report("pending pods → scale-up")
}

// Idle → scale-down: four idle nodes (two per zone); ScaleDownIdle fires
// and stays firing; SmartScale removes exactly one node per scale-down
// cooldown (15s), from the fuller zone, draining under the app's PDB, and
// stops at the minimum of 2, one per zone.
func TestScenarioIdleScaleDown(t *testing.T) {
	e := newEnv(t, envOptions{nodes: map[string]int{"us-east-1a": 2, "us-east-1b": 2}})
	e.deploy(app{replicas: 4, cpu: "500m", usage: "0", spread: true, maxUnavailable: 1})
	e.waitPods(4, 60*time.Second)
	floor := e.watchFloor()

	e.waitNodes("the group down to 2 nodes, one per zone", 150*time.Second, func(n []harness.Node) bool {
		z := harness.Zones(n)
		return len(n) == 2 && z["us-east-1a"] == 1 && z["us-east-1b"] == 1
	})
	// Asked again at the minimum, it refuses with a reason.
	e.waitDecision("a scale_down refused at the minimum", 60*time.Second, func(r decision.Record) bool {
		return strings.Contains(alertNames(r), "ScaleDownIdle") && r.Outcome == decision.Ignored && anyReason(r, "at_min")
	})
	e.waitPods(4, 60*time.Second)

	downs := actions(e.decisions(), "scale_down")
	if len(downs) != 2 {
		e.dumpDecisions()
		t.Fatalf("%d scale-downs, want exactly 2 (4 → 2)", len(downs))
	}
	if gap := downs[1].Time.Sub(downs[0].Time); gap < 15*time.Second {
		t.Errorf("second scale-down %s after the first, inside the 15s cooldown", gap)
	}
	for _, d := range downs {
		e.waitDecision("scale-down of "+d.Node+" succeeded", 30*time.Second, func(r decision.Record) bool {
			return r.Operation == d.Operation && r.Outcome == decision.Succeeded
		})
	}
	minNodes, minRunning := floor()
	if minNodes < 2 {
		t.Errorf("the group dropped to %d nodes", minNodes)
	}
	if minRunning < 3 {
		t.Errorf("%d app pods Running at some point: the PDB (maxUnavailable 1 of 4) was not respected", minRunning)
	}
	e.markAction(e.serve[0], downs[0])
	e.tl.Mark("second scale-down decided (cooldown 15s)", downs[1].Time)
	e.tl.Mark("group at 2 nodes (observed)", e.seen)
	e.report("idle → scale-down")
}

// amtool silence pauses scaling: with smartscale_action=scale_down
// silenced, ScaleDownIdle fires in Prometheus but never reaches the
// webhook; once the silence expires, the scale-down happens.
func TestScenarioSilencePausesScaleDown(t *testing.T) {
	e := newEnv(t, envOptions{nodes: map[string]int{"us-east-1a": 2, "us-east-1b": 1}})
	amtool, err := stack.ToolPath("amtool")
	if err != nil {
		t.Fatal(err)
	}
	am := "--alertmanager.url=" + e.st.AlertmanagerURLs[0]
	out, err := exec.CommandContext(e.ctx, amtool, "silence", "add", am, "--author=e2e", "--comment=maintenance window",
		"--duration=10m", "smartscale_action=scale_down").Output()
	if err != nil {
		t.Fatalf("amtool silence add: %v", err)
	}
	id := strings.TrimSpace(string(out))
	e.logf("silenced smartscale_action=scale_down: %s", id)
	// Idle pods: the idle rule needs pods to exist (no data is not idle).
	e.deploy(app{replicas: 3, cpu: "500m", usage: "0", maxUnavailable: 1})

	err = harness.Eventually(e.ctx, 90*time.Second, 500*time.Millisecond, "ScaleDownIdle firing in Prometheus", func(context.Context) (bool, error) {
		return e.alertState("ScaleDownIdle") == "firing", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	firing := time.Now()
	e.tl.Mark("ScaleDownIdle firing (silenced)", firing)
	// Long enough for group_wait and several repeats to have delivered it.
	quiet := groupWait + 3*repeatInterval
	deadline := time.Now().Add(quiet)
	for time.Now().Before(deadline) {
		if n := len(e.nodes()); n != 3 {
			t.Fatalf("the group changed to %d nodes while scale-downs were silenced", n)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, r := range e.decisions() {
		if r.Action == "scale_down" {
			t.Fatalf("the webhook got a scale_down while it was silenced: %+v", r)
		}
	}
	e.logf("no scale-down for %s while silenced", quiet)

	if out, err := exec.CommandContext(e.ctx, amtool, "silence", "expire", am, id).CombinedOutput(); err != nil {
		t.Fatalf("amtool silence expire: %v\n%s", err, out)
	}
	expired := time.Now()
	e.tl.Mark("silence expired", expired)
	rec := e.waitDecision("a scale_down after the silence expired", 60*time.Second, func(r decision.Record) bool {
		return r.Action == "scale_down" && r.Outcome == decision.Accepted
	})
	e.tl.Mark("scale_down accepted", rec.Time)
	e.waitNodes("2 nodes after the silence", 60*time.Second, func(n []harness.Node) bool { return len(n) == 2 })
	e.tl.Mark("node removed (observed)", e.seen)
	e.report("silence pauses scale-down")
}

// HA duplicates: two clustered Alertmanagers, each configured with both
// SmartScale replicas (so every notification reaches each replica, the
// harshest duplicate case), one shared DynamoDB table: pending pods lead
// to exactly one scale-up in the cooldown window.
func TestScenarioHADuplicates(t *testing.T) {
	e := newEnv(t, envOptions{replicas: 2, alertmanagers: 2, nodes: map[string]int{"us-east-1a": 1, "us-east-1b": 1}})
	e.deploy(app{replicas: 10, cpu: "500m", usage: "250m", maxUnavailable: 1})
	rec := e.waitDecision("a scale_up accepted", 90*time.Second, func(r decision.Record) bool {
		return r.Action == "scale_up" && r.Outcome == decision.Accepted
	})
	e.waitNodes("3 Ready nodes", 60*time.Second, func(n []harness.Node) bool { return harness.ReadyCount(n) == 3 })
	nodesReady := e.seen
	e.waitPods(10, 60*time.Second)
	// Let every copy, retry and repeat arrive: the rest of the 20s cooldown.
	time.Sleep(time.Until(rec.Time.Add(20 * time.Second)))

	if n := len(e.nodes()); n != 3 {
		t.Errorf("%d nodes, want 3: one scale-up of one node", n)
	}
	ups := actions(e.decisions(), "scale_up")
	if len(ups) != 1 {
		e.dumpDecisions()
		t.Fatalf("%d scale-ups accepted, want exactly 1", len(ups))
	}
	deliveries := 0
	for _, sv := range e.serve {
		lines, err := sv.Logs()
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, l := range lines {
			if l.Msg == "http request" && l.Str("route") == "/v1/alerts" {
				got++
			}
		}
		if got == 0 {
			t.Errorf("%s received no notification: the duplicate case was not exercised", sv.URL)
		}
		deliveries += got
	}
	e.logf("%d deliveries to 2 replicas from 2 alertmanagers, 1 action", deliveries)
	held := map[string]int{}
	for _, r := range e.decisions() {
		if strings.Contains(alertNames(r), "ScaleUp") && r.Outcome != decision.Accepted && len(r.Reasons) > 0 {
			held[strings.FieldsFunc(r.Reasons[0], func(c rune) bool { return c == ':' || c == ' ' })[0]]++
		}
	}
	e.logf("scale-up notifications not acted on, by reason: %v", held)
	e.markAction(e.serve[0], ups[0])
	e.tl.Mark("3 nodes Ready (observed)", nodesReady)
	e.report("HA duplicates")
}

// Crash mid-drain: SmartScale is SIGKILLed while it drains a node (the
// evicted pods are held Terminating by a finalizer, so the drain waits on
// them); the pods are then let go (the finalizer removed from every pod
// there is) and SmartScale restarted; the reconciler
// adopts the journaled operation and finishes it. No node stays cordoned,
// every pod runs.
func TestScenarioCrashMidDrain(t *testing.T) {
	e := newEnv(t, envOptions{nodes: map[string]int{"us-east-1a": 2, "us-east-1b": 1}})
	// The PDB allows every eviction: what holds the drain is the finalizer
	// (the idle scenario covers the PDB).
	e.deploy(app{replicas: 6, cpu: "500m", usage: "0", spread: true, maxUnavailable: 6, hold: true})
	e.waitPods(6, 60*time.Second)

	var victim string
	err := harness.Eventually(e.ctx, 120*time.Second, 100*time.Millisecond, "a node cordoned by SmartScale with an evicted pod on it", func(context.Context) (bool, error) {
		held := e.terminating()
		for _, n := range e.nodes() {
			if n.OurCordon && len(held[n.Name]) > 0 {
				victim = n.Name
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		e.dumpDecisions()
		t.Fatal(err)
	}
	e.tl.Mark("node "+victim+" cordoned, draining", time.Now())
	sv := e.serve[0]
	if err := sv.Kill(); err != nil {
		t.Fatal(err)
	}
	e.tl.Mark("smartscale SIGKILLed mid-drain", time.Now())
	if n := e.nodes(); len(n) != 3 {
		t.Fatalf("%d nodes right after the crash, want 3", len(n))
	}
	e.releaseHeld()
	sv.Start(t)
	e.tl.Mark("smartscale restarted", time.Now())

	e.waitNodes(victim+" drained and removed, nothing cordoned", 90*time.Second, func(n []harness.Node) bool {
		for _, node := range n {
			if node.Cordoned || node.Name == victim {
				return false
			}
		}
		return len(n) == 2
	})
	e.tl.Mark(victim+" removed (observed)", e.seen)
	rec := e.waitDecision("the scale-down operation succeeded", 30*time.Second, func(r decision.Record) bool {
		return r.Action == "scale_down" && r.Outcome == decision.Succeeded && r.Node == victim
	})
	e.tl.Mark("scale-down recorded succeeded", rec.Time)
	e.releaseHeld()
	e.waitPods(6, 60*time.Second)
	adopted, ok, err := sv.FirstLog(time.Time{}, func(l harness.LogLine) bool { return l.Msg == "adopted an unfinished operation" })
	if err != nil || !ok {
		t.Errorf("the restarted replica never logged adopting the operation (%v)", err)
	}
	e.tl.Mark("operation adopted by the new process", adopted.Time)
	e.report("crash mid-drain")
}

// DynamoDB outage: with dynalite down, the firing scale-up is answered
// 503 and nothing changes; Alertmanager retries; once dynalite is back
// (same table, persisted), a retry is accepted and the node comes.
func TestScenarioDynamoDBOutage(t *testing.T) {
	e := newEnv(t, envOptions{dynalitePersist: true, nodes: map[string]int{"us-east-1a": 1, "us-east-1b": 1}})
	sv := e.serve[0]
	if err := e.st.StopDynalite(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	e.tl.Mark("dynalite stopped", down)
	e.deploy(app{replicas: 10, cpu: "500m", usage: "250m", maxUnavailable: 1})

	var refusals []time.Time
	err := harness.Eventually(e.ctx, 90*time.Second, 250*time.Millisecond, "two 503 answers to Alertmanager", func(context.Context) (bool, error) {
		lines, err := sv.Logs()
		refusals = refusals[:0]
		for _, l := range lines {
			if l.Msg == "http request" && l.Str("route") == "/v1/alerts" && l.Str("code") == "503" {
				refusals = append(refusals, l.Time)
			}
		}
		return len(refusals) >= 2, err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.tl.Mark("webhook answered 503 (state store down)", refusals[0])
	e.tl.Mark("Alertmanager retried: 503 again", refusals[1])
	if n := e.nodes(); len(n) != 2 {
		t.Fatalf("%d nodes during the outage, want 2 (no action)", len(n))
	}
	if err := e.st.StartDynalite(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.tl.Mark("dynalite started again", time.Now())
	rec := e.waitDecision("a scale_up accepted after the outage", 60*time.Second, func(r decision.Record) bool {
		return r.Action == "scale_up" && r.Outcome == decision.Accepted
	})
	e.waitNodes("3 Ready nodes", 60*time.Second, func(n []harness.Node) bool { return harness.ReadyCount(n) == 3 })
	e.tl.Mark("node Ready (observed)", e.seen)
	e.markAction(sv, rec)
	e.waitPods(10, 60*time.Second)
	e.logf("%d notifications answered 503 during the outage", len(refusals))
	e.report("DynamoDB outage")
}

// Spot interruption: an EC2 Spot Instance Interruption Warning (the real
// EventBridge document) arrives on the SQS queue serve polls; the node is
// fast-drained and removed well within the two minutes, and, since the
// pods need its capacity, a replacement (on-demand preferred) launches.
func TestScenarioSpotInterruption(t *testing.T) {
	queue := harness.NewSQSQueue(t)
	e := newEnv(t, envOptions{
		nodes: map[string]int{"us-east-1a": 1, "us-east-1b": 1},
		serveEnv: []string{"AWS_ENDPOINT_URL_SQS=" + queue.Endpoint, "AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
			"AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"},
		queueURL: queue.URL,
	})
	e.launch(cloud.Spot, map[string]int{"us-east-1b": 1})
	var lost harness.Node
	for _, n := range e.nodes() {
		if n.Market == string(cloud.Spot) {
			lost = n
		}
	}
	spot := lost.Name
	// 5 CPUs of requests on 6: the two nodes left after the spot one
	// goes cannot hold them all.
	e.deploy(app{replicas: 10, cpu: "500m", usage: "250m", spread: false, maxUnavailable: 1})
	e.waitPods(10, 60*time.Second)

	doc, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "internal", "interruption", "testdata", "spot-interruption-warning.json"))
	if err != nil {
		t.Fatal(err)
	}
	event := strings.ReplaceAll(string(doc), "i-0f3e2d1c0b9a80002", spot)
	event = strings.ReplaceAll(event, "2026-03-02T10:41:07Z", time.Now().UTC().Format(time.RFC3339))
	queue.Send(event)
	sent := time.Now()
	e.tl.Mark("interruption warning for "+spot+" queued", sent)

	e.waitNodes(spot+" gone and a replacement Ready", 90*time.Second, func(n []harness.Node) bool {
		gone := true
		for _, node := range n {
			if node.Name == spot {
				gone = false
			}
		}
		return gone && len(n) == 3 && harness.ReadyCount(n) == 3
	})
	e.tl.Mark("node removed, replacement Ready (observed)", e.seen)
	if took := e.seen.Sub(sent); took > 90*time.Second {
		t.Errorf("interruption handled in %s, want within the 90s fast drain", took)
	}
	var replacement harness.Node
	for _, n := range e.nodes() {
		if n.Created.After(sent.Add(-time.Second)) {
			replacement = n
		}
	}
	if replacement.Name == "" {
		t.Fatal("no replacement node")
	}
	if replacement.Market != string(cloud.OnDemand) && replacement.Type == lost.Type {
		t.Errorf("replacement %s is %s %s like the reclaimed node: want on-demand or another instance type", replacement.Name, replacement.Market, replacement.Type)
	}
	e.logf("replacement %s: %s %s in %s (lost: %s %s)", replacement.Name, replacement.Market, replacement.Type, replacement.Zone, lost.Market, lost.Type)
	e.waitPods(10, 60*time.Second)
	if err := harness.Eventually(e.ctx, 20*time.Second, 200*time.Millisecond, "the SQS message deleted", func(context.Context) (bool, error) {
		return len(queue.Deleted()) == 1, nil
	}); err != nil {
		t.Error(err)
	}
	rec := e.waitDecision("the interruption recorded", 10*time.Second, func(r decision.Record) bool {
		return r.Action == "interruption" && r.Node == spot
	})
	e.tl.Mark("interruption decision recorded", rec.Time)
	e.dumpDecisions()
	e.report("spot interruption")
}

func anyReason(r decision.Record, code string) bool {
	for _, s := range r.Reasons {
		if strings.HasPrefix(s, code) {
			return true
		}
	}
	return false
}

// Custom metric: the demo app (a real process Prometheus scrapes) answers
// in 2.5s (injected latency) under steady traffic from the load generator;
// its p95 goes above 2s, ScaleUpLatency fires, and SmartScale adds two
// nodes, the latency alert's high urgency.
func TestScenarioCustomMetricLatency(t *testing.T) {
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := newEnv(t, envOptions{
		nodes:  map[string]int{"us-east-1a": 1, "us-east-1b": 1},
		scrape: []stack.ScrapeTarget{{JobName: "demoapp", Targets: []string{addr}}},
	})
	stack.StartTestProcess(t, stack.ProcessConfig{Name: "demoapp", Path: demoApp,
		Args: []string{"--listen", addr, "--latency", "2500ms"}, LogPath: filepath.Join(t.TempDir(), "demoapp.log")})
	// Idle pods keep the group's node metrics defined (no data is not idle).
	e.deploy(app{replicas: 2, cpu: "500m", usage: "500m", maxUnavailable: 1})

	ctx, stopLoad := context.WithCancel(e.ctx)
	loadDone := make(chan error, 1)
	go func() {
		_, err := traffic.Run(ctx, traffic.Profile{Name: "steady", Phases: []traffic.Phase{
			{Name: traffic.PhaseHold, Duration: 3 * time.Minute, From: 10, To: 10},
		}}, "http://"+addr+"/", traffic.Options{Timeout: 10 * time.Second})
		loadDone <- err
	}()
	defer func() {
		stopLoad()
		<-loadDone
	}()
	e.tl.Mark("traffic at 10/s, 2.5s injected latency", time.Now())

	rec := e.waitDecision("a scale_up for ScaleUpLatency", 90*time.Second, func(r decision.Record) bool {
		return r.Action == "scale_up" && r.Outcome == decision.Accepted && strings.Contains(alertNames(r), "ScaleUpLatency")
	})
	for _, s := range rec.Signals {
		if s.AlertName == "ScaleUpLatency" && s.Urgency != "high" {
			t.Errorf("ScaleUpLatency urgency %q, want high", s.Urgency)
		}
	}
	if rec.Count != 2 {
		t.Errorf("scale_up count %d, want 2 (scaleUpStep.high)", rec.Count)
	}
	e.waitNodes("4 Ready nodes", 60*time.Second, func(n []harness.Node) bool { return harness.ReadyCount(n) == 4 })
	e.markAction(e.serve[0], rec)
	e.tl.Mark("nodes Ready (observed)", e.seen)
	p95, err := e.st.Query(e.ctx, `job:http_request_duration_seconds:p95_rate5m{job="demoapp"}`)
	if err != nil || len(p95) != 1 {
		t.Fatalf("p95 of the demo app: %v %v", err, p95)
	}
	e.logf("demo app p95 latency %.2fs", p95[0].Value)
	e.report("custom metric (p95 latency)")
}
