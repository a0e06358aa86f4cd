package scaler_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/notify"
	"github.com/smartscale/smartscale/internal/policy"
	"github.com/smartscale/smartscale/internal/scaler"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/memory"
)

type harness struct {
	clock *fakeClock
	world *fakeWorld
	store *memory.Store
	s     *scaler.Scaler
	group config.NodeGroup
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	h := &harness{clock: clock, world: newWorld(clock), group: config.DefaultNodeGroup("workers")}
	h.store = memory.New(state.Options{Clock: clock.Now, Logger: slog.New(slog.DiscardHandler)})
	// Two nodes per zone, old enough to remove.
	h.world.addNode("a1", "us-east-1a", policy.OnDemand, time.Hour)
	h.world.addNode("a2", "us-east-1a", policy.Spot, time.Hour)
	h.world.addNode("b1", "us-east-1b", policy.OnDemand, time.Hour)
	h.world.addNode("b2", "us-east-1b", policy.Spot, time.Hour)
	h.s = h.newScaler(t, "replica-1")
	return h
}

func (h *harness) newScaler(t *testing.T, owner string) *scaler.Scaler {
	t.Helper()
	s, err := scaler.New(h.store, h.world, h.world, h.world, scaler.Options{
		ClusterID: "test", Groups: []config.NodeGroup{h.group}, Owner: owner, Clock: h.clock.Now,
		LockTTL: time.Minute, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func notification(action alert.Action, urgency alert.Urgency, startsAt time.Time) alert.Notification {
	return alert.Notification{
		Receiver: "smartscale", GroupKey: "{}:{alertname=\"X\"}", Status: "firing",
		Signals: []alert.Signal{{NodeGroup: "workers", Action: action, Urgency: urgency, AlertName: "X",
			Fingerprint: "f1", StartsAt: startsAt, Status: "firing",
			Annotations: alert.Annotations{RunbookURL: "https://runbooks.example.com/x"}}},
	}
}

func reasons(recs []decision.Record) string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Reasons...)
	}
	return strings.Join(out, "; ")
}

func TestScaleUpEndToEnd(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	recs, err := h.s.Handle(ctx, notification(alert.ScaleUp, alert.High, h.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Outcome != decision.Accepted || recs[0].Count != 2 || recs[0].Operation == "" {
		t.Fatalf("decision %+v, want accepted scale-up of 2 with an operation", recs)
	}
	h.s.Wait()
	if n := h.world.nodeCount(); n != 6 {
		t.Errorf("%d nodes after scale-up, want 6", n)
	}
	calls := h.world.callList()
	if !slices.ContainsFunc(calls, func(c string) bool { return c == "Create 2 token="+recs[0].Operation }) {
		t.Errorf("calls %v: want one Create of 2 with the operation id as client token", calls)
	}
	ops, _ := h.store.UnfinishedOperations(ctx, "workers")
	if len(ops) != 0 {
		t.Errorf("unfinished operations left: %+v", ops)
	}
	g, _ := h.store.Group(ctx, "workers")
	if !g.LastScaleUpAt.Equal(h.clock.Now()) || g.NodeCount != 6 {
		t.Errorf("group record %+v", g)
	}
	if len(h.world.notices) != 1 || h.world.notices[0].Outcome != "succeeded" || h.world.notices[0].After != 6 ||
		h.world.notices[0].Before != 4 || h.world.notices[0].RunbookURL == "" {
		t.Errorf("notices %+v", h.world.notices)
	}
	// The lock is free again.
	lease, err := h.store.Acquire(ctx, "workers", "probe", time.Second)
	if err != nil {
		t.Fatalf("lock still held after the action: %v", err)
	}
	_ = lease.Release(ctx)

	// The same notification again (Alertmanager's repeat, another replica's
	// copy): within the cooldown → no action, and the reason says so.
	h.clock.Advance(30 * time.Second)
	recs, err = h.s.Handle(ctx, notification(alert.ScaleUp, alert.High, h.clock.Now().Add(-30*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Outcome != decision.Ignored || !strings.Contains(reasons(recs), "cooldown_active") {
		t.Errorf("second notification: %+v, want ignored with cooldown_active", recs)
	}
	h.s.Wait()
	if n := h.world.nodeCount(); n != 6 {
		t.Errorf("%d nodes after the duplicate, want 6", n)
	}
	list, _ := h.s.Decisions(ctx, "workers", 10)
	if len(list) < 3 {
		t.Errorf("decision history %d records, want the accepted, the outcome and the ignored", len(list))
	}
}

func TestDuplicateDeliveryAfterCooldownIsDeduplicated(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.group.Cooldowns.ScaleUp = config.Duration(time.Second)
	s := h.newScaler(t, "replica-1b")
	n := notification(alert.ScaleUp, alert.Normal, h.clock.Now())
	if _, err := s.Handle(ctx, n); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	// A late copy of the very same notification (same alerts, same
	// startsAt) after the cooldown but within the dedupe window.
	h.clock.Advance(2 * time.Minute)
	recs, err := h.newScaler(t, "replica-2").Handle(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Outcome != decision.Ignored || !strings.HasPrefix(recs[0].Reasons[0], "duplicate") {
		t.Errorf("late copy: %+v, want ignored as duplicate", recs)
	}
	// Alertmanager's repeat after the dedupe window acts again: the
	// condition outlived the cooldown.
	h.clock.Advance(3 * time.Minute)
	recs, err = h.newScaler(t, "replica-3").Handle(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Outcome != decision.Accepted {
		t.Errorf("repeat after the window: %+v, want accepted", recs)
	}
}

func TestScaleDownDrainsAndRemovesOneNode(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.world.addPod("web-1", "a2", 100, "ReplicaSet")
	recs, err := h.s.Handle(ctx, notification(alert.ScaleDown, alert.Normal, h.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Outcome != decision.Accepted || recs[0].Node == "" {
		t.Fatalf("decision %+v (%s)", recs, reasons(recs))
	}
	h.s.Wait()
	node := recs[0].Node
	want := []string{"Cordon " + node, "Drain " + node, "Terminate [i-" + node + "]", "DeleteNode " + node}
	calls := h.world.callList()
	if !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v (in that order: nothing terminated before drained)", calls, want)
	}
	if h.world.nodeCount() != 3 {
		t.Errorf("%d nodes, want 3", h.world.nodeCount())
	}
}

func TestFailedDrainUncordonsAndRecords(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.world.blockDrain = true
	recs, err := h.s.Handle(ctx, notification(alert.ScaleDown, alert.Normal, h.clock.Now()))
	if err != nil || recs[0].Outcome != decision.Accepted {
		t.Fatalf("%v %+v", err, recs)
	}
	h.s.Wait()
	calls := h.world.callList()
	if slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Terminate") }) {
		t.Errorf("terminated after a failed drain: %v", calls)
	}
	snap, _ := h.world.Snapshot("workers")
	for _, n := range snap.Nodes {
		if n.Unschedulable {
			t.Errorf("node %s left cordoned", n.Name)
		}
	}
	if len(h.world.notices) != 1 || h.world.notices[0].Outcome != "failed" || !strings.Contains(h.world.notices[0].Recommendation, "uncordoned") {
		t.Errorf("notice %+v", h.world.notices)
	}
}

func TestLockHeldElsewhere(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	lease, err := h.store.Acquire(ctx, "workers", "replica-2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)
	recs, err := h.s.Handle(ctx, notification(alert.ScaleUp, alert.Normal, h.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Outcome != decision.Ignored || !strings.Contains(reasons(recs), "in_progress_elsewhere") {
		t.Errorf("%+v, want ignored in_progress_elsewhere", recs)
	}
}

// A lock held briefly with nothing journaled (a reconcile round) is waited
// for: the notification acts instead of being answered "in progress
// elsewhere", which Alertmanager would not retry.
func TestShortLockHoldIsWaitedFor(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	lease, err := h.store.Acquire(ctx, "workers", "replica-1-reconciler", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(300 * time.Millisecond)
		_ = lease.Release(ctx)
	}()
	recs, err := h.s.Handle(ctx, notification(alert.ScaleUp, alert.Normal, h.clock.Now()))
	<-released
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Outcome != decision.Accepted || recs[0].Action != "scale_up" {
		t.Errorf("%+v, want the scale-up accepted once the short hold ended", recs)
	}
}

// failingStore stands for DynamoDB not answering.
type failingStore struct{ *memory.Store }

func (failingStore) Acquire(context.Context, string, string, time.Duration) (state.Lease, error) {
	return nil, state.Unavailable("acquire", errors.New("connection refused"))
}

func TestStoreDownIsUnavailable(t *testing.T) {
	h := newHarness(t)
	s, err := scaler.New(failingStore{h.store}, h.world, h.world, h.world, scaler.Options{
		Groups: []config.NodeGroup{h.group}, Clock: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Handle(context.Background(), notification(alert.ScaleUp, alert.Normal, h.clock.Now()))
	if !errors.Is(err, decision.ErrUnavailable) {
		t.Errorf("error %v, want one wrapping decision.ErrUnavailable (→ 503)", err)
	}
	if len(h.world.callList()) != 0 {
		t.Errorf("acted without the lock: %v", h.world.callList())
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	h := newHarness(t)
	s, err := scaler.New(h.store, h.world, h.world, h.world, scaler.Options{
		Groups: []config.NodeGroup{h.group}, Clock: h.clock.Now, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Handle(context.Background(), notification(alert.ScaleUp, alert.High, h.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if recs[0].Outcome != decision.DryRun || !recs[0].DryRun || recs[0].Action != "scale_up" {
		t.Errorf("%+v", recs)
	}
	if calls := h.world.callList(); len(calls) != 0 {
		t.Errorf("dry run called %v", calls)
	}
}

// TestCrashAtEveryStep stops a replica while it runs each step, as a crash
// would (its context ends, nothing completes), lets its lease lapse and
// has a fresh replica's reconciler finish or roll back.
func TestCrashAtEveryStep(t *testing.T) {
	for _, tt := range []struct {
		action alert.Action
		hang   string
		check  func(t *testing.T, h *harness)
	}{
		{alert.ScaleUp, "Create", func(t *testing.T, h *harness) {
			if h.world.nodeCount() != 5 {
				t.Errorf("%d nodes, want 5: the resumed launch must not launch twice", h.world.nodeCount())
			}
		}},
		{alert.ScaleUp, "WaitForReady", func(t *testing.T, h *harness) {
			if h.world.nodeCount() != 5 {
				t.Errorf("%d nodes, want 5", h.world.nodeCount())
			}
		}},
		{alert.ScaleDown, "Cordon", func(t *testing.T, h *harness) {
			if h.world.nodeCount() != 4 {
				t.Errorf("%d nodes, want 4 (rolled back)", h.world.nodeCount())
			}
		}},
		{alert.ScaleDown, "Drain", func(t *testing.T, h *harness) {
			calls := h.world.callList()
			i := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Resume") })
			j := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Terminate") })
			if i < 0 || (j >= 0 && j < i) {
				t.Errorf("calls %v: the drain must be resumed before any terminate", calls)
			}
		}},
	} {
		t.Run(fmt.Sprintf("%s at %s", tt.action, tt.hang), func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			h.world.hang = tt.hang
			if _, err := h.s.Handle(ctx, notification(tt.action, alert.Normal, h.clock.Now())); err != nil {
				t.Fatal(err)
			}
			<-h.world.hanging
			h.s.Close() // the crash: the step never returns, nothing is completed
			h.world.hang = ""
			ops, _ := h.store.UnfinishedOperations(ctx, "workers")
			if len(ops) != 1 {
				t.Fatalf("%d unfinished operations after the crash, want 1", len(ops))
			}
			h.clock.Advance(2 * time.Minute) // the dead replica's lease lapses
			fresh := h.newScaler(t, "replica-2")
			if err := fresh.Reconcile(ctx, "workers"); err != nil {
				t.Fatal(err)
			}
			fresh.Wait()
			ops, _ = h.store.UnfinishedOperations(ctx, "workers")
			if len(ops) != 0 {
				t.Errorf("operations still unfinished after recovery: %+v", ops)
			}
			snap, _ := h.world.Snapshot("workers")
			for _, n := range snap.Nodes {
				if n.Unschedulable {
					t.Errorf("node %s left cordoned", n.Name)
				}
			}
			tt.check(t, h)
		})
	}
}

func TestReconcilerEnforcesMinimum(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for _, n := range []string{"a2", "b1", "b2"} {
		_ = h.world.DeleteNode(ctx, n)
	}
	if err := h.s.Reconcile(ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	h.s.Wait()
	snap, _ := h.world.Snapshot("workers")
	zones := map[string]int{}
	for _, n := range snap.Nodes {
		zones[n.Zone]++
	}
	if len(snap.Nodes) < 2 || zones["us-east-1b"] == 0 {
		t.Errorf("after reconcile: %d nodes %v, want ≥ 2 with one in us-east-1b", len(snap.Nodes), zones)
	}
}

func TestReconcilerUncordonsForgottenNodes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.world.Cordon(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	// A node a person cordoned stays cordoned.
	h.world.nodes["b1"].Unschedulable = true
	if err := h.s.Reconcile(ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	snap, _ := h.world.Snapshot("workers")
	for _, n := range snap.Nodes {
		if n.Name == "a1" && n.Unschedulable {
			t.Error("a1, cordoned by SmartScale with no operation, left cordoned")
		}
		if n.Name == "b1" && !n.Unschedulable {
			t.Error("b1, cordoned by a person, was uncordoned")
		}
	}
}

func TestInterruptFastDrainsAndReplaces(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// Leave a2 (spot) alone in us-east-1a: losing it empties the zone, so
	// it must be replaced.
	_ = h.world.DeleteNode(ctx, "b2")
	_ = h.world.DeleteNode(ctx, "a1")
	h.world.addPod("web-1", "a2", 100, "ReplicaSet")
	if err := h.s.Interrupt(ctx, "i-a2", "spot_interruption", h.clock.Now().Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	h.s.Wait()
	calls := h.world.callList()
	if !slices.Contains(calls, "Drain a2") || !slices.Contains(calls, "DeleteNode a2") {
		t.Errorf("calls %v: want a drain of a2 and its node deleted", calls)
	}
	if slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Terminate") }) {
		t.Errorf("calls %v: an interrupted instance is AWS's to terminate", calls)
	}
	if !slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Create 1") }) {
		t.Errorf("calls %v: want one replacement launched", calls)
	}
	snap, _ := h.world.Snapshot("workers")
	for _, n := range snap.Nodes {
		if strings.HasPrefix(n.Name, "new-") && n.Zone != "us-east-1a" {
			t.Errorf("replacement %s in %s, want the interrupted node's zone", n.Name, n.Zone)
		}
	}
	if err := h.s.Interrupt(ctx, "i-unknown", "spot_interruption", h.clock.Now().Add(2*time.Minute)); !errors.Is(err, scaler.ErrNotOurs) {
		t.Errorf("unknown instance: %v, want ErrNotOurs", err)
	}
}

// TestResumedDrainPastItsTimeoutIsRolledBack: the replica that adopts a
// drain counts its timeout from when the drain was journaled, not from the
// adoption: past it, the node goes back into service and nothing is
// terminated.
func TestResumedDrainPastItsTimeoutIsRolledBack(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.world.hang = "Drain"
	if _, err := h.s.Handle(ctx, notification(alert.ScaleDown, alert.Normal, h.clock.Now())); err != nil {
		t.Fatal(err)
	}
	<-h.world.hanging
	h.s.Close()
	h.world.hang = ""
	h.clock.Advance(h.group.DrainTimeout.D() + time.Minute)
	fresh := h.newScaler(t, "replica-2")
	if err := fresh.Reconcile(ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	fresh.Wait()
	calls := h.world.callList()
	if !slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Resume") && strings.HasSuffix(c, "finish=false") }) ||
		slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Terminate") }) {
		t.Errorf("calls %v: want the drain rolled back and nothing terminated", calls)
	}
	if h.world.nodeCount() != 4 {
		t.Errorf("%d nodes, want 4", h.world.nodeCount())
	}
	snap, _ := h.world.Snapshot("workers")
	for _, n := range snap.Nodes {
		if n.Unschedulable {
			t.Errorf("node %s left cordoned", n.Name)
		}
	}
}

// TestCrashBeforeAnInterruptionDrain: an interruption is journaled at
// draining (there is no cordon step), so a replica that dies before the
// drain's cordon leaves the node uncordoned. The replica that adopts it
// must drain it anyway — the instance is going away — not take the
// missing cordon for a person's and give up.
func TestCrashBeforeAnInterruptionDrain(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.world.addPod("web-1", "a2", 100, "ReplicaSet")
	h.world.hang = "Drain" // the fake's Drain hangs before it cordons
	if err := h.s.Interrupt(ctx, "i-a2", "spot_interruption", h.clock.Now().Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	<-h.world.hanging
	h.s.Close()
	h.world.hang = ""
	h.clock.Advance(2 * time.Minute) // the lease lapses, and with it the drain's time
	fresh := h.newScaler(t, "replica-2")
	if err := fresh.Reconcile(ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	fresh.Wait()
	calls := h.world.callList()
	i := slices.Index(calls, "Resume a2 finish=true")
	j := slices.Index(calls[i+1:], "Drain a2")
	if i < 0 || j < 0 || !slices.Contains(calls, "DeleteNode a2") {
		t.Errorf("calls %v: want the interrupted node's drain resumed to the end and its node deleted", calls)
	}
	if ops, _ := h.store.UnfinishedOperations(ctx, "workers"); len(ops) != 0 {
		t.Errorf("operations still unfinished: %+v", ops)
	}
	recs, _ := h.store.Decisions(ctx, "workers", 20)
	if !slices.ContainsFunc(recs, func(r decision.Record) bool {
		return r.Action == "interruption" && r.Outcome == decision.Succeeded
	}) {
		t.Errorf("no succeeded interruption recorded: %s", reasons(recs))
	}
}

// hangingSlack stands for a Slack that accepts connections and never answers.
type hangingSlack struct{}

func (hangingSlack) Name() string { return "slack" }
func (hangingSlack) Notify(ctx context.Context, _ notify.Notice) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestSlackOutageNeitherFailsNorDelaysTheAction(t *testing.T) {
	h := newHarness(t)
	fan := notify.NewFanout(prometheus.NewRegistry(), slog.New(slog.DiscardHandler), 30*time.Second, hangingSlack{})
	s, err := scaler.New(h.store, h.world, h.world, fan, scaler.Options{
		Groups: []config.NodeGroup{h.group}, Clock: h.clock.Now, Owner: "slack-down"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	recs, err := s.Handle(context.Background(), notification(alert.ScaleUp, alert.Normal, h.clock.Now()))
	if err != nil || recs[0].Outcome != decision.Accepted {
		t.Fatalf("%v %+v", err, recs)
	}
	s.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the action took %s with Slack hanging; notices must not hold it", d)
	}
	if h.world.nodeCount() != 5 {
		t.Errorf("%d nodes, want 5: the action must complete", h.world.nodeCount())
	}
	ops, _ := h.store.UnfinishedOperations(context.Background(), "workers")
	list, _ := s.Decisions(context.Background(), "workers", 5)
	// The fake clock stands still, so both records share a time: look for
	// the outcome rather than rely on their order.
	succeeded := slices.ContainsFunc(list, func(r decision.Record) bool { return r.Outcome == decision.Succeeded })
	if len(ops) != 0 || !succeeded {
		t.Errorf("operation not completed as succeeded: ops %+v decisions %+v", ops, list)
	}
}
