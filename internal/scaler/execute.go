package scaler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/failpoint"
	"github.com/smartscale/smartscale/internal/kube"
	"github.com/smartscale/smartscale/internal/notify"
	"github.com/smartscale/smartscale/internal/policy"
	"github.com/smartscale/smartscale/internal/state"
)

// Operation kinds and journal steps. A step is journaled before it runs,
// so the step an unfinished operation shows is the one that may be half
// done.
const (
	kindScaleUp      = "scale_up"
	kindScaleDown    = "scale_down"
	kindInterruption = "interruption"

	// scale_up: launching → waiting_ready → done
	stepLaunching    = "launching"
	stepWaitingReady = "waiting_ready"
	// scale_down: cordoning → draining → terminating → deleting_node → done
	// interruption: draining → deleting_node → done (the instance is AWS's to end)
	stepCordoning    = "cordoning"
	stepDraining     = "draining"
	stepTerminating  = "terminating"
	stepDeletingNode = "deleting_node"

	resultSucceeded  = "succeeded"
	resultPartial    = "partial"
	resultFailed     = "failed"
	resultRolledBack = "rolled_back"

	detailRequest = "request"
	detailRunbook = "runbook"
	detailBefore  = "before"
)

// journal writes the operation for a plan, at its first step.
func (s *Scaler) journal(ctx context.Context, plan policy.Plan, signals []alert.Signal) (state.Operation, error) {
	before := 0
	if snap, err := s.cluster.Snapshot(plan.NodeGroup); err == nil {
		before = countGroupNodes(snap, plan.NodeGroup)
	}
	op := state.Operation{
		ID: newID(), Group: plan.NodeGroup, Owner: s.opts.Owner,
		Detail: map[string]string{detailRunbook: runbook(signals), detailBefore: fmt.Sprint(before)},
	}
	switch plan.Action {
	case policy.Up:
		req := cloud.CreateRequest{Group: plan.NodeGroup, InstanceTypes: plan.ScaleUp.InstanceTypes, ClientToken: op.ID}
		for _, l := range plan.ScaleUp.Launches {
			req.Launches = append(req.Launches, cloud.Launch{Zone: l.Zone, Market: cloud.Market(l.Market), Count: l.Count})
			for range l.Count {
				op.Zones = append(op.Zones, l.Zone)
			}
		}
		b, err := json.Marshal(req)
		if err != nil {
			return op, fmt.Errorf("encode launch request: %w", err)
		}
		op.Kind, op.Step, op.Count = kindScaleUp, stepLaunching, plan.ScaleUp.Count
		op.Detail[detailRequest] = string(b)
	case policy.Down:
		op.Kind, op.Step, op.Node = kindScaleDown, stepCordoning, plan.ScaleDown.Node
		if plan.ScaleDown.InstanceID != "" {
			op.Instances = []string{plan.ScaleDown.InstanceID}
		}
		op.Zones = []string{plan.ScaleDown.Zone}
	default:
		return op, fmt.Errorf("no operation for action %q", plan.Action)
	}
	created, err := s.store.CreateOperation(ctx, op)
	if err != nil {
		return op, fmt.Errorf("journal %s: %w", op.Kind, err)
	}
	return created, nil
}

// start runs op in the background under lease, extending the lease while
// it runs and releasing it at the end, always.
func (s *Scaler) start(lease state.Lease, op state.Operation, plan policy.Plan, signals []alert.Signal) {
	s.wg.Add(1)
	s.setRunning(op.ID, true)
	go func() {
		defer s.wg.Done()
		defer s.setRunning(op.ID, false)
		log := s.log.With("nodegroup", op.Group, "operation", op.ID, "action", op.Kind)
		ctx, cancel := context.WithCancel(s.base)
		defer cancel()
		stop := s.heartbeat(ctx, cancel, lease, log)
		s.run(ctx, op, false, log)
		stop()
		s.release(lease, log)
	}()
}

func (s *Scaler) setRunning(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.running[id] = true
	} else {
		delete(s.running, id)
	}
}

func (s *Scaler) isRunning(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[id]
}

// heartbeat extends the lease every LockTTL/3. Losing the lease (another
// replica took it over after it expired) cancels the action: the other
// replica now owns the group and adopts the journaled operation.
func (s *Scaler) heartbeat(ctx context.Context, cancel context.CancelFunc, lease state.Lease, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.opts.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				err := lease.Extend(ctx, s.opts.LockTTL)
				if errors.Is(err, state.ErrLeaseLost) {
					log.Error("lease lost during the action: stopping it; its journal entry is left for the new owner", "reason", err.Error())
					cancel()
					return
				}
				if err != nil {
					log.Warn("lease heartbeat failed; retrying", "reason", err.Error())
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// run drives op from its journaled step to the end. resumed is true when a
// replica picks up an operation it did not start (after a crash).
func (s *Scaler) run(ctx context.Context, op state.Operation, resumed bool, log *slog.Logger) {
	s.metrics.inFlight.WithLabelValues(op.Group).Inc()
	defer s.metrics.inFlight.WithLabelValues(op.Group).Dec()
	if resumed {
		log.Info("resuming operation", "step", op.Step, "node", op.Node, "instance", strings.Join(op.Instances, ","))
	}
	started := s.now()
	var out outcome
	switch op.Kind {
	case kindScaleUp:
		out = s.runScaleUp(ctx, op, log)
	case kindScaleDown, kindInterruption:
		out = s.runRemoval(ctx, op, resumed, log)
	default:
		out = outcome{op: op, result: resultFailed, err: fmt.Errorf("unknown operation kind %q", op.Kind)}
	}
	// A step cut short by shutdown or a lost lease is not a failure: the
	// operation stays journaled at its step for the next owner.
	if out.result == "" || (ctx.Err() != nil && out.result != resultSucceeded) {
		log.Warn("operation interrupted; left journaled for recovery", "step", out.op.Step)
		return
	}
	s.complete(ctx, out, started, log)
}

// outcome is how an operation ended.
type outcome struct {
	op      state.Operation
	result  string
	err     error
	reasons []string
	nodes   []notify.Node
}

func (s *Scaler) complete(ctx context.Context, out outcome, started time.Time, log *slog.Logger) {
	op := out.op
	// Completing must not be lost to a cancelled action context.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if _, err := s.store.CompleteOperation(cctx, op.ID, op.Owner, out.result); err != nil {
		log.Error("operation not marked complete; the reconciler will settle it", "reason", err.Error(), "result", out.result)
	}
	elapsed := s.now().Sub(started)
	s.metrics.scaleDuration.WithLabelValues(op.Kind, out.result).Observe(elapsed.Seconds())
	s.metrics.decisions.WithLabelValues(op.Group, op.Kind, out.result).Inc()

	after := 0
	if snap, err := s.cluster.Snapshot(op.Group); err == nil {
		after = countGroupNodes(snap, op.Group)
		s.updateNodeMetrics(op.Group, snap)
		if g, err := s.store.Group(cctx, op.Group); err == nil {
			g.Name, g.NodeCount = op.Group, after
			if _, err := s.store.PutGroup(cctx, g); err != nil {
				log.Warn("node count not recorded", "reason", err.Error())
			}
		}
	}
	rec := decisionFor(op, out, s.now(), s.opts.DryRun)
	if err := s.store.RecordDecision(cctx, rec); err != nil {
		log.Warn("outcome not recorded", "reason", err.Error())
	}
	level := slog.LevelInfo
	if out.result != resultSucceeded {
		level = slog.LevelWarn
	}
	errText := ""
	if out.err != nil {
		errText = out.err.Error()
	}
	log.Log(cctx, level, "operation finished", "result", out.result, "node", op.Node,
		"instance", strings.Join(op.Instances, ","), "reason", out.reasons, "error", errText, "duration", elapsed.String())
	before := 0
	fmt.Sscan(op.Detail[detailBefore], &before)
	s.notifier.Send(cctx, notify.Notice{
		Time: s.now(), Cluster: s.opts.ClusterID, NodeGroup: op.Group, Action: op.Kind, Outcome: out.result,
		Before: before, After: after, Nodes: out.nodes, Reasons: out.reasons, Error: errText, Duration: elapsed,
		RunbookURL: op.Detail[detailRunbook], DashboardURL: s.opts.DashboardURL,
		Recommendation: notify.Recommend(out.result, out.reasons),
	})
}

func decisionFor(op state.Operation, out outcome, now time.Time, dryRun bool) decision.Record {
	outcome := decision.Succeeded
	if out.result != resultSucceeded {
		outcome = decision.Failed
	}
	reasons := append([]string{out.result}, out.reasons...)
	if out.err != nil {
		reasons = append(reasons, "error: "+out.err.Error())
	}
	return decision.Record{ID: newID(), Time: now, NodeGroup: op.Group, Action: op.Kind, Outcome: outcome,
		Count: len(out.nodes), Node: op.Node, Reasons: reasons, DryRun: dryRun, Operation: op.ID}
}

// advance journals the next step before it runs.
func (s *Scaler) advance(ctx context.Context, op state.Operation, to string, instances []string, detail map[string]string) (state.Operation, error) {
	next, err := s.store.AdvanceOperation(ctx, state.Transition{
		ID: op.ID, Owner: op.Owner, From: op.Step, To: to, Instances: instances, Detail: detail,
	})
	if err != nil {
		return op, fmt.Errorf("journal step %s: %w", to, err)
	}
	return next, nil
}

func (s *Scaler) runScaleUp(ctx context.Context, op state.Operation, log *slog.Logger) outcome {
	g := s.groups[op.Group]
	if op.Step == stepLaunching {
		var req cloud.CreateRequest
		if err := json.Unmarshal([]byte(op.Detail[detailRequest]), &req); err != nil {
			return outcome{op: op, result: resultFailed, err: fmt.Errorf("journaled launch request: %w", err)}
		}
		// The client token is the operation id: a resumed launch returns
		// what the first attempt launched instead of launching again.
		req.ClientToken = op.ID
		failpoint.Hit(ctx, op.Kind, stepLaunching, failpoint.Before)
		res, err := s.provider.Create(ctx, req)
		launched := res.All()
		reasons := launchReasons(res)
		if len(launched) == 0 {
			if ctx.Err() != nil {
				return outcome{op: op}
			}
			return outcome{op: op, result: resultFailed, err: err, reasons: append(reasons, "launch_failed")}
		}
		if err != nil {
			log.Warn("launch partly failed", "reason", err.Error(), "launched", len(launched), "requested", res.Requested)
		}
		ids := make([]string, len(launched))
		for i, in := range launched {
			ids[i] = in.ID
		}
		failpoint.Hit(ctx, op.Kind, stepLaunching, failpoint.After)
		next, aerr := s.advance(ctx, op, stepWaitingReady, ids, nil)
		if aerr != nil {
			// The instances exist but the journal does not say so: terminate
			// them rather than leave orphans no record points at.
			log.Error("could not journal launched instances; terminating them", "reason", aerr.Error(), "instance", strings.Join(ids, ","))
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if terr := s.provider.Terminate(tctx, op.Group, ids); terr != nil {
				log.Error("terminate unjournaled instances failed; the reconciler's orphan sweep will retry", "reason", terr.Error())
			}
			return outcome{op: op, result: resultFailed, err: aerr}
		}
		op = next
	}
	if op.Step != stepWaitingReady {
		return outcome{op: op, result: resultFailed, err: fmt.Errorf("scale_up at unknown step %q", op.Step)}
	}
	failpoint.Hit(ctx, op.Kind, stepWaitingReady, failpoint.Before)

	remaining := g.NodeReadyTimeout.D() - s.now().Sub(op.Updated)
	type waited struct {
		id   string
		node policy.Node
		err  error
	}
	results := make([]waited, len(op.Instances))
	var wg sync.WaitGroup
	for i, id := range op.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.cluster.WaitForReady(ctx, id, max(remaining, time.Second))
			results[i] = waited{id: id, node: n, err: err}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return outcome{op: op}
	}
	out := outcome{op: op}
	var failed []string
	for _, r := range results {
		var rte *kube.ReadyTimeoutError
		switch {
		case r.err == nil:
			out.nodes = append(out.nodes, notify.Node{Name: r.node.Name, InstanceID: r.id, Zone: r.node.Zone,
				Market: string(r.node.Market), InstanceType: r.node.InstanceType})
			s.cluster.Event(r.node.Name, corev1.EventTypeNormal, kube.ReasonScaleUp, "SmartScale added node %s (%s %s %s) to group %s",
				r.node.Name, r.node.Zone, r.node.Market, r.node.InstanceType, op.Group)
		case errors.As(r.err, &rte):
			failed = append(failed, r.id)
			out.reasons = append(out.reasons, "node_ready_timeout: "+rte.Error())
			if rte.Node != "" {
				s.deleteNodeQuietly(ctx, rte.Node, log)
			}
		default:
			failed = append(failed, r.id)
			out.reasons = append(out.reasons, "wait_ready_failed: "+r.err.Error())
		}
	}
	if len(failed) > 0 {
		if err := s.provider.Terminate(ctx, op.Group, failed); err != nil {
			out.err = fmt.Errorf("terminate instances that never became Ready: %w", err)
		}
	}
	failpoint.Hit(ctx, op.Kind, stepWaitingReady, failpoint.After)
	switch {
	case len(failed) == 0:
		out.result = resultSucceeded
	case len(out.nodes) > 0:
		out.result = resultPartial
	default:
		out.result = resultFailed
	}
	return out
}

func launchReasons(res cloud.CreateResult) []string {
	var out []string
	for _, e := range res.Errors {
		code := "launch_error"
		if e.Capacity() {
			code = "capacity"
		}
		out = append(out, code+": "+e.Error())
	}
	if len(res.Fallback) > 0 {
		out = append(out, fmt.Sprintf("on_demand_fallback: %d instances launched on-demand for a spot shortfall", len(res.Fallback)))
	}
	if res.Shortfall() > 0 {
		out = append(out, fmt.Sprintf("shortfall: %d of %d instances not launched", res.Shortfall(), res.Requested))
	}
	return out
}

func (s *Scaler) deleteNodeQuietly(ctx context.Context, node string, log *slog.Logger) {
	if err := s.cluster.DeleteNode(ctx, node); err != nil {
		log.Warn("delete node object failed", "node", node, "reason", err.Error())
	}
}

// runRemoval drives a scale-down or an interruption: cordon, drain, then
// (scale-down only) terminate, then delete the Node. The instance is never
// terminated before its drain succeeded.
func (s *Scaler) runRemoval(ctx context.Context, op state.Operation, resumed bool, log *slog.Logger) outcome {
	g := s.groups[op.Group]
	log = log.With("node", op.Node)
	out := outcome{op: op, nodes: []notify.Node{{Name: op.Node, InstanceID: strings.Join(op.Instances, ",")}}}
	drainTimeout := g.DrainTimeout.D()
	drainOpts := kube.DrainOptions{Timeout: drainTimeout}
	if op.Kind == kindInterruption {
		drainOpts = kube.FastDrainOptions()
		drainTimeout = drainOpts.Timeout
	}
	var err error
	if op.Step == stepCordoning && resumed {
		// Whether the cordon happened is unknown, and the plan that chose
		// this node is stale: put the node back rather than go on.
		return s.rollBack(ctx, out, errors.New("resumed before the drain began"), log)
	}
	if op.Step == stepCordoning {
		failpoint.Hit(ctx, op.Kind, stepCordoning, failpoint.Before)
		ours, cerr := s.cluster.Cordon(ctx, op.Node)
		if cerr != nil {
			return s.rollBack(ctx, out, fmt.Errorf("cordon: %w", cerr), log)
		}
		if !ours {
			out.result, out.reasons = resultRolledBack, []string{"not_ours: the node was cordoned by someone else; left as it is"}
			return out
		}
		failpoint.Hit(ctx, op.Kind, stepCordoning, failpoint.After)
		if op, err = s.advance(ctx, op, stepDraining, nil, nil); err != nil {
			return s.rollBack(ctx, out, err, log)
		}
		out.op = op
		resumed = false // a drain that starts now is not a resumed one
	}
	if op.Step == stepDraining {
		failpoint.Hit(ctx, op.Kind, stepDraining, failpoint.Before)
		drainStart := s.now()
		s.cluster.Event(op.Node, corev1.EventTypeNormal, kube.ReasonScaleDown, "SmartScale is removing node %s from group %s (%s)", op.Node, op.Group, op.Kind)
		if resumed {
			left := drainTimeout - s.now().Sub(op.Updated)
			drainOpts.Timeout = max(left, time.Second)
			// An interrupted instance goes away whatever happens: its drain
			// is finished, never rolled back into service.
			interrupted := op.Kind == kindInterruption
			res, rerr := s.cluster.Resume(ctx, op.Node, kube.ResumeOptions{Finish: left > 0 || interrupted, Drain: drainOpts})
			if rerr != nil {
				return s.failRemoval(ctx, out, fmt.Errorf("resume drain: %w", rerr))
			}
			switch {
			case res == kube.ResumeNotOurs && interrupted:
				// An interruption's journal starts at draining, with no
				// cordon step before it: not cordoned by us means the crash
				// came before the drain's cordon (or a person cordoned it).
				// Drain it now; the pods must leave before AWS ends it.
				if derr := s.cluster.Drain(ctx, op.Node, drainOpts); derr != nil {
					if ctx.Err() != nil {
						return outcome{op: op}
					}
					return s.failRemoval(ctx, out, derr)
				}
			case res == kube.ResumeUncordoned, res == kube.ResumeNotOurs:
				out.result, out.reasons = resultRolledBack, []string{"drain_rolled_back: resumed after a restart (" + string(res) + ")"}
				return out
			}
		} else if derr := s.cluster.Drain(ctx, op.Node, drainOpts); derr != nil {
			if ctx.Err() != nil {
				return outcome{op: op}
			}
			// Drain has uncordoned the node and recorded a DrainFailed Event.
			return s.failRemoval(ctx, out, derr)
		}
		s.metrics.drainDuration.WithLabelValues(op.Kind).Observe(s.now().Sub(drainStart).Seconds())
		failpoint.Hit(ctx, op.Kind, stepDraining, failpoint.After)
		next := stepTerminating
		if op.Kind == kindInterruption {
			next = stepDeletingNode // AWS ends the instance; we only clean up
		}
		if op, err = s.advance(ctx, op, next, nil, nil); err != nil {
			return s.failRemoval(ctx, out, err)
		}
		out.op = op
	}
	if op.Step == stepTerminating {
		failpoint.Hit(ctx, op.Kind, stepTerminating, failpoint.Before)
		if len(op.Instances) > 0 {
			if terr := s.provider.Terminate(ctx, op.Group, op.Instances); terr != nil {
				// The node is drained and cordoned; terminate again on resume.
				return outcome{op: op, result: resultFailed, err: fmt.Errorf("terminate: %w", terr),
					reasons: []string{"terminate_failed: node left cordoned and drained for the reconciler to finish"}, nodes: out.nodes}
			}
		}
		failpoint.Hit(ctx, op.Kind, stepTerminating, failpoint.After)
		if op, err = s.advance(ctx, op, stepDeletingNode, nil, nil); err != nil {
			return s.failRemoval(ctx, out, err)
		}
		out.op = op
	}
	if op.Step == stepDeletingNode {
		failpoint.Hit(ctx, op.Kind, stepDeletingNode, failpoint.Before)
		if derr := s.cluster.DeleteNode(ctx, op.Node); derr != nil {
			out.result, out.err = resultFailed, fmt.Errorf("delete node: %w", derr)
			return out
		}
		failpoint.Hit(ctx, op.Kind, stepDeletingNode, failpoint.After)
		out.result = resultSucceeded
		return out
	}
	return outcome{op: op, result: resultFailed, err: fmt.Errorf("%s at unknown step %q", op.Kind, op.Step)}
}

// failRemoval ends a removal whose drain did not finish: the node is back
// in service (Drain uncordons on failure; make sure of it).
func (s *Scaler) failRemoval(ctx context.Context, out outcome, err error) outcome {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, uerr := s.cluster.Uncordon(uctx, out.op.Node); uerr != nil {
		err = errors.Join(err, fmt.Errorf("uncordon: %w", uerr))
	}
	out.result, out.err = resultFailed, err
	out.reasons = append(out.reasons, "drain_failed: "+err.Error())
	return out
}

func (s *Scaler) rollBack(ctx context.Context, out outcome, err error, log *slog.Logger) outcome {
	log.Warn("rolling back removal", "reason", err.Error())
	out = s.failRemoval(ctx, out, err)
	out.result = resultRolledBack
	return out
}

func countGroupNodes(snap policy.Snapshot, group string) int {
	n := 0
	for _, node := range snap.Nodes {
		if node.NodeGroup == group {
			n++
		}
	}
	return n
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
