package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/kube"
	"github.com/smartscale/smartscale/internal/policy"
	"github.com/smartscale/smartscale/internal/state"
)

// RunReconciler reconciles every node group each ReconcileInterval until
// ctx ends.
func (s *Scaler) RunReconciler(ctx context.Context) {
	t := time.NewTicker(s.opts.ReconcileInterval)
	defer t.Stop()
	for {
		for _, g := range s.opts.Groups {
			if err := s.Reconcile(ctx, g.Name); err != nil && ctx.Err() == nil {
				s.metrics.reconciles.WithLabelValues(g.Name, "failed").Inc()
				s.log.Warn("reconcile failed", "nodegroup", g.Name, "reason", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile brings one group back to a sound state, under the same lock as
// the webhook (a group whose lock is held is skipped this round):
//   - unfinished operations of replicas that are gone are adopted and
//     finished or rolled back;
//   - nodes SmartScale cordoned that no operation is about are uncordoned;
//   - instances of the group with no node after the ready timeout are
//     terminated, and NotReady nodes of the group with no instance deleted;
//   - a group below minNodes or with an empty zone is scaled up, with no
//     alert needed.
func (s *Scaler) Reconcile(ctx context.Context, group string) error {
	log := s.log.With("nodegroup", group, "action", "reconcile")
	lease, err := s.store.Acquire(ctx, group, s.opts.Owner, s.opts.LockTTL)
	var locked *state.ErrLocked
	if errors.As(err, &locked) {
		return nil // an action or another replica's reconcile is under way
	}
	if err != nil {
		return fmt.Errorf("acquire lock: %w", err)
	}
	handedOver := false
	defer func() {
		if !handedOver {
			s.release(lease, log)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := s.heartbeat(ctx, cancel, lease, log)
	defer stop()

	if err := s.resumeOrphanedOperations(ctx, group, log); err != nil {
		return err
	}
	if !s.cluster.HasSynced() {
		return nil
	}
	snap, err := s.cluster.Snapshot(group)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	s.updateNodeMetrics(group, snap)
	ops, err := s.store.UnfinishedOperations(ctx, group)
	if err != nil {
		return fmt.Errorf("list operations: %w", err)
	}
	s.uncordonForgotten(ctx, group, snap, ops, log)
	if err := s.sweepOrphans(ctx, group, snap, ops, log); err != nil {
		log.Warn("orphan sweep failed", "reason", err.Error())
	}
	if len(ops) > 0 {
		return nil
	}

	in, err := s.input(ctx, group, nil)
	if err != nil {
		return err
	}
	plan := policy.EnforceMinimum(in)
	if plan.Action != policy.Up {
		return nil
	}
	s.metrics.reconciles.WithLabelValues(group, "enforced_minimum").Inc()
	rec := decision.Record{ID: newID(), Time: s.now(), NodeGroup: group, Action: string(plan.Action),
		Reasons: plan.Strings(), DryRun: s.opts.DryRun}
	if s.opts.DryRun {
		rec.Outcome = decision.DryRun
		s.finishDecision(ctx, &rec)
		return nil
	}
	if err := s.recordActionTime(ctx, group, plan.Action, s.now()); err != nil {
		return err
	}
	op, err := s.journal(ctx, plan, nil)
	if err != nil {
		return err
	}
	rec.Outcome, rec.Operation, rec.Count = decision.Accepted, op.ID, plan.ScaleUp.Count
	s.finishDecision(ctx, &rec)
	stop()
	handedOver = true
	s.start(lease, op, plan, nil)
	return nil
}

// resumeOrphanedOperations adopts and finishes every unfinished operation
// of the group that this process is not running. Holding the lock means
// its owner's lease lapsed: that replica died or lost the group.
func (s *Scaler) resumeOrphanedOperations(ctx context.Context, group string, log *slog.Logger) error {
	ops, err := s.store.UnfinishedOperations(ctx, group)
	if err != nil {
		return fmt.Errorf("list operations: %w", err)
	}
	for _, op := range ops {
		if s.isRunning(op.ID) {
			continue
		}
		adopted, err := s.store.AdvanceOperation(ctx, state.Transition{
			ID: op.ID, Owner: op.Owner, From: op.Step, To: op.Step, NewOwner: s.opts.Owner,
		})
		var conflict *state.ErrConflict
		if errors.As(err, &conflict) {
			continue // someone else adopted or advanced it first
		}
		if err != nil {
			return fmt.Errorf("adopt operation %s: %w", op.ID, err)
		}
		// Adopting rewrites Updated, but the step's clock started when the
		// step was journaled: a resumed drain or ready wait gets what is
		// left of its timeout, not a fresh one (and a drain past its
		// timeout is rolled back, not finished).
		adopted.Updated = op.Updated
		s.metrics.reconciles.WithLabelValues(group, "adopted").Inc()
		log.Info("adopted an unfinished operation", "operation", op.ID, "kind", op.Kind, "step", op.Step,
			"previous_owner", op.Owner, "node", op.Node)
		s.setRunning(op.ID, true)
		s.run(ctx, adopted, true, log.With("operation", op.ID))
		s.setRunning(op.ID, false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// uncordonForgotten puts back in service every node SmartScale cordoned
// that no unfinished operation is about (an operation that ended without
// its rollback). Nodes a person cordoned are never touched.
func (s *Scaler) uncordonForgotten(ctx context.Context, group string, snap policy.Snapshot, ops []state.Operation, log *slog.Logger) {
	for _, n := range snap.Nodes {
		if n.NodeGroup != group || n.Annotations[kube.AnnotationCordonedBy] != kube.CordonedBy {
			continue
		}
		if slices.ContainsFunc(ops, func(op state.Operation) bool { return op.Node == n.Name }) {
			continue
		}
		if _, err := s.cluster.Uncordon(ctx, n.Name); err != nil {
			log.Warn("uncordon failed", "node", n.Name, "reason", err.Error())
			continue
		}
		s.metrics.reconciles.WithLabelValues(group, "uncordoned").Inc()
		log.Info("uncordoned a node SmartScale had cordoned with no operation left about it", "node", n.Name)
	}
}

// sweepOrphans terminates the group's instances that never got a node
// within the ready timeout, and deletes NotReady nodes of the group whose
// instance is gone. Instances an unfinished operation names are left to it.
func (s *Scaler) sweepOrphans(ctx context.Context, group string, snap policy.Snapshot, ops []state.Operation, log *slog.Logger) error {
	instances, err := s.provider.List(ctx, group)
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	g := s.groups[group]
	inOps := map[string]bool{}
	for _, op := range ops {
		for _, id := range op.Instances {
			inOps[id] = true
		}
	}
	nodeByInstance := map[string]policy.Node{}
	for _, n := range snap.Nodes {
		if n.InstanceID != "" {
			nodeByInstance[n.InstanceID] = n
		}
	}
	var orphans []string
	for _, in := range instances {
		_, hasNode := nodeByInstance[in.ID]
		alive := in.State == cloud.Pending || in.State == cloud.Running
		if hasNode || !alive || inOps[in.ID] || s.now().Sub(in.LaunchTime) < g.NodeReadyTimeout.D() {
			continue
		}
		orphans = append(orphans, in.ID)
	}
	if len(orphans) > 0 {
		log.Warn("terminating instances that never joined the cluster", "instance", fmt.Sprint(orphans))
		if err := s.provider.Terminate(ctx, group, orphans); err != nil {
			return fmt.Errorf("terminate orphans: %w", err)
		}
		s.metrics.reconciles.WithLabelValues(group, "orphan_terminated").Add(float64(len(orphans)))
	}
	known := map[string]bool{}
	for _, in := range instances {
		if in.State != cloud.Terminated {
			known[in.ID] = true
		}
	}
	for _, n := range snap.Nodes {
		if n.NodeGroup != group || n.Ready || n.InstanceID == "" || known[n.InstanceID] {
			continue
		}
		log.Warn("deleting a NotReady node whose instance is gone", "node", n.Name, "instance", n.InstanceID)
		if err := s.cluster.DeleteNode(ctx, n.Name); err != nil {
			log.Warn("delete node failed", "node", n.Name, "reason", err.Error())
			continue
		}
		s.metrics.reconciles.WithLabelValues(group, "orphan_node_deleted").Inc()
	}
	return nil
}
