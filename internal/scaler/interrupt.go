package scaler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/interruption"
	"github.com/smartscale/smartscale/internal/policy"
	"github.com/smartscale/smartscale/internal/state"
)

// ErrNotOurs: an interruption is about an instance that is no node of any
// configured group; there is nothing to do.
var ErrNotOurs = errors.New("instance is not a node of a configured group")

// Interrupt handles a spot interruption warning (or a rebalance
// recommendation) for an instance: it fast-drains the instance's node
// (90 s, grace periods cut to fit) and, when the group would drop below
// what it needs, launches a replacement at the same time, preferring
// on-demand or another instance type. Interruptions skip the cooldowns but
// not the lock: Interrupt waits for it until the deadline's margin.
//
// It returns once both operations are journaled (the poller may then delete
// the message); they run in the background.
func (s *Scaler) Interrupt(ctx context.Context, instanceID, kind string, deadline time.Time) error {
	group, node, err := s.findInstance(instanceID)
	if err != nil {
		return err
	}
	log := s.log.With("nodegroup", group, "node", node.Name, "instance", instanceID, "action", kindInterruption)
	log.Warn("spot interruption: draining the node", "kind", kind, "deadline", deadline)

	// Wait for the lock while the warning leaves time to drain.
	lockBy := deadline.Add(-30 * time.Second)
	var lease state.Lease
	for {
		lease, err = s.store.Acquire(ctx, group, s.opts.Owner, s.opts.LockTTL)
		var locked *state.ErrLocked
		if err == nil {
			break
		}
		if !errors.As(err, &locked) {
			return fmt.Errorf("acquire lock for interruption: %w", err)
		}
		s.metrics.lockContention.WithLabelValues(group).Inc()
		if !s.now().Before(lockBy) {
			s.metrics.interruptions.WithLabelValues(group, kind, "lock_timeout").Inc()
			return fmt.Errorf("lock of %s held by %s until the interruption deadline: %w", group, locked.Owner, decision.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	handedOver := false
	defer func() {
		if !handedOver {
			s.release(lease, log)
		}
	}()

	in, err := s.input(ctx, group, nil)
	if err != nil {
		return err
	}
	replacement := policy.Replacement(in, node.Name)
	drain, err := s.store.CreateOperation(ctx, state.Operation{
		ID: newID(), Group: group, Kind: kindInterruption, Step: stepDraining, Owner: s.opts.Owner,
		Node: node.Name, Instances: []string{instanceID}, Zones: []string{node.Zone},
		Detail: map[string]string{"kind": kind, "deadline": deadline.UTC().Format(time.RFC3339), detailBefore: fmt.Sprint(countGroupNodes(in.Snapshot, group))},
	})
	if err != nil {
		return fmt.Errorf("journal interruption: %w", err)
	}
	ops := []state.Operation{drain}
	if replacement.Action == policy.Up {
		up, err := s.journal(ctx, replacement, nil)
		if err != nil {
			log.Error("replacement not journaled; the reconciler's minimum check will launch one", "reason", err.Error())
		} else {
			ops = append(ops, up)
		}
	}
	rec := decision.Record{ID: newID(), Time: s.now(), NodeGroup: group, Action: kindInterruption, Outcome: decision.Accepted,
		Node: node.Name, Operation: drain.ID, Reasons: append([]string{"spot_interruption: " + kind + " for " + instanceID}, replacement.Strings()...)}
	s.finishDecision(ctx, &rec)
	s.metrics.interruptions.WithLabelValues(group, kind, "accepted").Inc()

	handedOver = true
	s.wg.Add(1)
	for _, op := range ops {
		s.setRunning(op.ID, true)
	}
	go func() {
		defer s.wg.Done()
		rctx, cancel := context.WithCancel(s.base)
		defer cancel()
		stop := s.heartbeat(rctx, cancel, lease, log)
		var wg sync.WaitGroup
		for _, op := range ops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer s.setRunning(op.ID, false)
				s.run(rctx, op, false, log.With("operation", op.ID, "action", op.Kind))
			}()
		}
		wg.Wait()
		stop()
		s.release(lease, log)
	}()
	return nil
}

// findInstance returns the group and node of an instance.
func (s *Scaler) findInstance(instanceID string) (string, policy.Node, error) {
	if !s.cluster.HasSynced() {
		return "", policy.Node{}, fmt.Errorf("cluster cache not synced yet: %w", decision.ErrUnavailable)
	}
	for _, g := range s.opts.Groups {
		snap, err := s.cluster.Snapshot(g.Name)
		if err != nil {
			return "", policy.Node{}, fmt.Errorf("snapshot: %w: %w", err, decision.ErrUnavailable)
		}
		for _, n := range snap.Nodes {
			if n.NodeGroup == g.Name && n.InstanceID == instanceID {
				return g.Name, n, nil
			}
		}
	}
	return "", policy.Node{}, fmt.Errorf("%s: %w", instanceID, ErrNotOurs)
}

// HandleInterruption is the poller's handler (interruption.Handler). A spot
// warning or a rebalance recommendation (the earlier, best-effort sign: it
// buys time to drain) starts Interrupt; a state change (the instance is
// stopping or gone) has the reconciler settle the group. An event seen
// before (SQS delivers at least once) and an instance that is no node of
// ours are accepted with nothing to do.
func (s *Scaler) HandleInterruption(ctx context.Context, in interruption.Interruption) error {
	log := s.log.With("instance", in.InstanceID, "nodegroup", in.Group, "action", kindInterruption, "reason", string(in.Kind))
	switch in.Kind {
	case interruption.StateChange:
		if in.Group == "" {
			return nil
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.Reconcile(s.base, in.Group); err != nil {
				log.Warn("reconcile after a state change failed; the next round retries", "reason", err.Error())
			}
		}()
		return nil
	default:
		deadline := in.Deadline
		if deadline.IsZero() {
			deadline = s.now().Add(interruption.SpotWarning)
		}
		err := s.Interrupt(ctx, in.InstanceID, string(in.Kind), deadline)
		if errors.Is(err, ErrNotOurs) {
			log.Info("interruption for an instance with no node of ours; nothing to do")
			return nil
		}
		return err
	}
}
