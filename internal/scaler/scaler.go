// Package scaler turns Alertmanager notifications into exactly one safe
// action per node group: it takes the group's lock, reads the recorded state
// and the cluster, asks the policy for a plan, journals the operation and
// answers at once; the action then runs in the background under the lease
// (a heartbeat extends it) and every step is journaled before it runs, so a
// replica that restarts — or another one — finishes or rolls it back.
//
// The scaler owns no outside system: it declares the small interfaces it
// needs of the state store (Store), the cluster (Cluster), the cloud
// (Provider) and the notice sender (Notifier).
package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/kube"
	"github.com/smartscale/smartscale/internal/notify"
	"github.com/smartscale/smartscale/internal/policy"
	"github.com/smartscale/smartscale/internal/state"

	"github.com/prometheus/client_golang/prometheus"
)

// Store is the shared state the scaler needs; state.Store implementations
// (DynamoDB, memory) satisfy it.
type Store interface {
	Acquire(ctx context.Context, group, owner string, ttl time.Duration) (state.Lease, error)
	Group(ctx context.Context, group string) (state.Group, error)
	PutGroup(ctx context.Context, g state.Group) (state.Group, error)
	SeenBefore(ctx context.Context, key string, ttl time.Duration) (bool, error)
	CreateOperation(ctx context.Context, op state.Operation) (state.Operation, error)
	AdvanceOperation(ctx context.Context, t state.Transition) (state.Operation, error)
	CompleteOperation(ctx context.Context, id, owner, result string) (state.Operation, error)
	UnfinishedOperations(ctx context.Context, group string) ([]state.Operation, error)
	RecordDecision(ctx context.Context, r decision.Record) error
	Decisions(ctx context.Context, group string, limit int) ([]decision.Record, error)
}

// Cluster is what the scaler asks of Kubernetes; *kube.Cluster satisfies it.
type Cluster interface {
	HasSynced() bool
	Snapshot(group string) (policy.Snapshot, error)
	WaitForReady(ctx context.Context, id string, timeout time.Duration) (policy.Node, error)
	Cordon(ctx context.Context, node string) (bool, error)
	Uncordon(ctx context.Context, node string) (bool, error)
	Drain(ctx context.Context, node string, opts kube.DrainOptions) error
	Resume(ctx context.Context, node string, opts kube.ResumeOptions) (kube.ResumeResult, error)
	DeleteNode(ctx context.Context, node string) error
	Event(node, eventtype, reason, messageFmt string, args ...any)
}

// Provider creates and removes instances; cloud/aws and cloud/kwok satisfy it.
type Provider interface {
	Create(ctx context.Context, req cloud.CreateRequest) (cloud.CreateResult, error)
	Terminate(ctx context.Context, group string, instanceIDs []string) error
	List(ctx context.Context, group string) ([]cloud.Instance, error)
}

// Notifier sends action notices without blocking; *notify.Fanout satisfies it.
type Notifier interface {
	Send(ctx context.Context, n notify.Notice)
}

// Options configure a Scaler.
type Options struct {
	ClusterID string
	Groups    []config.NodeGroup
	DryRun    bool
	// Owner names this replica in locks and the journal; default
	// hostname-pid-random, so a restarted process never mistakes its
	// predecessor's operations for its own.
	Owner string
	// LockTTL is how long a lease lasts without a heartbeat (default 60s);
	// the heartbeat extends it every LockTTL/3 while an action runs.
	LockTTL time.Duration
	// DedupeTTL is how long a notification that led to an action is
	// remembered (default 4m: HA copies and retries come within seconds,
	// while Alertmanager's repeat_interval of 5m must get through so a
	// condition that persists past the cooldown acts again).
	DedupeTTL time.Duration
	// LockWait is how long a notification waits for a lock held while no
	// operation is journaled (a reconcile round, a concurrent decision)
	// before answering in_progress_elsewhere (default 2s).
	LockWait time.Duration
	// ReconcileInterval is the reconciler's period (default 30s).
	ReconcileInterval time.Duration
	Pricing           config.Pricing
	DashboardURL      string
	Clock             func() time.Time
	Logger            *slog.Logger
	Registry          prometheus.Registerer
}

// Scaler is the running product.
type Scaler struct {
	store    Store
	cluster  Cluster
	provider Provider
	notifier Notifier
	opts     Options
	groups   map[string]config.NodeGroup
	log      *slog.Logger
	now      func() time.Time
	metrics  *metrics

	// running holds the operations this process executes right now, so the
	// reconciler never adopts one of them.
	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
	// base is the context actions run in: they outlive the request that
	// started them, and end with Close.
	base   context.Context
	cancel context.CancelFunc
}

// New wires a Scaler.
func New(store Store, cluster Cluster, provider Provider, notifier Notifier, opts Options) (*Scaler, error) {
	if len(opts.Groups) == 0 {
		return nil, errors.New("scaler: no node groups")
	}
	if opts.Owner == "" {
		host, _ := os.Hostname()
		opts.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:6])
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = 60 * time.Second
	}
	if opts.DedupeTTL <= 0 {
		opts.DedupeTTL = 4 * time.Minute
	}
	if opts.LockWait <= 0 {
		opts.LockWait = 2 * time.Second
	}
	if opts.ReconcileInterval <= 0 {
		opts.ReconcileInterval = 30 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Scaler{
		store: store, cluster: cluster, provider: provider, notifier: notifier, opts: opts,
		groups: map[string]config.NodeGroup{}, log: opts.Logger.With("owner", opts.Owner), now: opts.Clock,
		running: map[string]bool{},
	}
	for _, g := range opts.Groups {
		s.groups[g.Name] = g
	}
	s.metrics = newMetrics(opts.Registry, opts.Groups)
	s.base, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Owner is this replica's name in locks and the journal.
func (s *Scaler) Owner() string { return s.opts.Owner }

// Wait blocks until every action started so far has ended.
func (s *Scaler) Wait() { s.wg.Wait() }

// Close stops running actions at their next step (they stay journaled, for
// the next replica to finish) and waits for them.
func (s *Scaler) Close() {
	s.cancel()
	s.wg.Wait()
}

// Decisions lists recent decisions from the state store.
func (s *Scaler) Decisions(ctx context.Context, group string, limit int) ([]decision.Record, error) {
	return s.store.Decisions(ctx, group, limit)
}

// Handle decides, for every node group the notification's signals name,
// whether and how to act, and starts the action. It answers before the
// action ends. An error wraps decision.ErrUnavailable when a retry can
// succeed (state store or cluster not answering): nothing was acted on.
func (s *Scaler) Handle(ctx context.Context, n alert.Notification) ([]decision.Record, error) {
	var out []decision.Record
	for _, ig := range n.Ignored {
		// Contract violations mean a rule is wrong: keep them visible in
		// /v1/decisions. Resolved and people-only alerts are only counted.
		if ig.Reason == alert.ReasonResolved || ig.Reason == alert.ReasonNoAction {
			continue
		}
		rec := decision.Record{ID: newID(), Time: s.now(), NodeGroup: ig.NodeGroup, Action: "none",
			Outcome: decision.Ignored, DryRun: s.opts.DryRun, GroupKey: n.GroupKey,
			Reasons: []string{fmt.Sprintf("%s: alert %s: %s", ig.Reason, ig.AlertName, ig.Detail)}}
		s.finishDecision(ctx, &rec)
		out = append(out, rec)
	}
	for _, group := range n.Groups() {
		var signals []alert.Signal
		for _, sig := range n.Signals {
			if sig.NodeGroup == group {
				signals = append(signals, sig)
			}
		}
		rec, err := s.handleGroup(ctx, n, group, signals)
		if err != nil {
			return out, fmt.Errorf("node group %s: %w", group, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// lockPoll is how often acquire tries again while it waits.
const lockPoll = 100 * time.Millisecond

// acquire takes the group's lock for a notification. A lock held while no
// operation is journaled is a short hold — a reconcile round, or another
// copy of a notification being decided — so it waits for it, up to
// LockWait, rather than answer "in progress elsewhere" about work that is
// not in progress: Alertmanager does not retry a 2xx, and the signal
// would wait for the next repeat_interval. A lock held for a journaled
// operation is answered at once. The wait is wall time (a test's fake
// clock does not move while it polls).
func (s *Scaler) acquire(ctx context.Context, group string) (state.Lease, error) {
	deadline := time.Now().Add(s.opts.LockWait)
	for {
		lease, err := s.store.Acquire(ctx, group, s.opts.Owner, s.opts.LockTTL)
		var locked *state.ErrLocked
		if !errors.As(err, &locked) || !time.Now().Before(deadline) {
			return lease, err
		}
		if ops, oerr := s.store.UnfinishedOperations(ctx, group); oerr != nil || len(ops) > 0 {
			return lease, err
		}
		select {
		case <-ctx.Done():
			return lease, err
		case <-time.After(lockPoll):
		}
	}
}

func (s *Scaler) handleGroup(ctx context.Context, n alert.Notification, group string, signals []alert.Signal) (decision.Record, error) {
	now := s.now()
	rec := decision.Record{ID: newID(), Time: now, NodeGroup: group, Action: string(policy.None),
		DryRun: s.opts.DryRun, Signals: signals, GroupKey: n.GroupKey}
	log := s.log.With("nodegroup", group)

	lease, err := s.acquire(ctx, group)
	var locked *state.ErrLocked
	if errors.As(err, &locked) {
		s.metrics.lockContention.WithLabelValues(group).Inc()
		rec.Outcome = decision.Ignored
		rec.Reasons = []string{fmt.Sprintf("in_progress_elsewhere: lock held by %s until %s", locked.Owner, locked.Expiry.UTC().Format(time.RFC3339))}
		s.finishDecision(ctx, &rec)
		return rec, nil
	}
	if err != nil {
		return rec, fmt.Errorf("acquire lock: %w", err)
	}
	handedOver := false
	defer func() {
		if !handedOver {
			s.release(lease, log)
		}
	}()

	in, err := s.input(ctx, group, signals)
	if err != nil {
		return rec, err
	}
	plan := policy.Decide(in)
	rec.Action, rec.Reasons = string(plan.Action), plan.Strings()
	if plan.Action == policy.None {
		rec.Outcome = decision.Ignored
		s.finishDecision(ctx, &rec)
		return rec, nil
	}

	// Only a notification that leads to an action is remembered, so a
	// retry after a failure (503) is never mistaken for a duplicate. (A
	// failure between this write and the journal entry below leaves the
	// key: that notification then acts again only at Alertmanager's next
	// repeat, after DedupeTTL — a delay, never a second action.)
	seen, err := s.store.SeenBefore(ctx, "notification#"+group+"#"+n.DedupeKey(), s.opts.DedupeTTL)
	if err != nil {
		return rec, fmt.Errorf("dedupe: %w", err)
	}
	if seen {
		rec.Action, rec.Outcome = string(policy.None), decision.Ignored
		rec.Reasons = append([]string{"duplicate: this notification already led to an action"}, rec.Reasons...)
		s.finishDecision(ctx, &rec)
		return rec, nil
	}

	if err := s.recordActionTime(ctx, group, plan.Action, now); err != nil {
		return rec, err
	}
	if s.opts.DryRun {
		rec.Outcome = decision.DryRun
		s.finishDecision(ctx, &rec)
		return rec, nil
	}
	op, err := s.journal(ctx, plan, signals)
	if err != nil {
		return rec, err
	}
	rec.Outcome, rec.Operation, rec.Count, rec.Node = decision.Accepted, op.ID, countOf(plan), nodeOf(plan)
	s.finishDecision(ctx, &rec)
	handedOver = true
	s.start(lease, op, plan, signals)
	return rec, nil
}

// input gathers what policy.Decide needs. The cluster must have synced:
// deciding on an empty cache would scale a full cluster up.
func (s *Scaler) input(ctx context.Context, group string, signals []alert.Signal) (policy.Input, error) {
	g := s.groups[group]
	rec, err := s.store.Group(ctx, group)
	if err != nil {
		return policy.Input{}, fmt.Errorf("read group record: %w", err)
	}
	ops, err := s.store.UnfinishedOperations(ctx, group)
	if err != nil {
		return policy.Input{}, fmt.Errorf("list operations: %w", err)
	}
	if !s.cluster.HasSynced() {
		return policy.Input{}, fmt.Errorf("cluster cache not synced yet: %w", decision.ErrUnavailable)
	}
	snap, err := s.cluster.Snapshot(group)
	if err != nil {
		return policy.Input{}, fmt.Errorf("cluster snapshot: %w: %w", err, decision.ErrUnavailable)
	}
	gs := policy.GroupState{LastScaleUpAt: rec.LastScaleUpAt, LastScaleDownAt: rec.LastScaleDownAt}
	registered := map[string]bool{}
	for _, n := range snap.Nodes {
		registered[n.InstanceID] = true
	}
	for _, op := range ops {
		count, zones := pending(op, registered)
		gs.InFlight = append(gs.InFlight, policy.Operation{ID: op.ID, Kind: op.Kind, Node: op.Node, Count: count, Zones: zones})
	}
	return policy.Input{Signals: signals, Snapshot: snap, Group: g, State: gs, Now: s.now(), Capacity: capacityOf(g.InstanceTypes)}, nil
}

// pending is how many of a scale-up's nodes have not joined the cluster
// yet, and their zones: the policy counts them toward the total, and must
// not count twice the ones already in the snapshot.
func pending(op state.Operation, registered map[string]bool) (int, []string) {
	if op.Kind != kindScaleUp {
		return 0, nil
	}
	if op.Step == stepLaunching || len(op.Instances) == 0 {
		return op.Count, op.Zones
	}
	n := 0
	for _, id := range op.Instances {
		if !registered[id] {
			n++
		}
	}
	// Which zones the missing ones are in is not journaled per instance;
	// the first n zones of the plan are a close, stable estimate.
	return n, op.Zones[:min(n, len(op.Zones))]
}

// allocatable of a new node of the instance types SmartScale launches by
// default, for sizing pending pods when the group has no node of the type
// to read it from: EC2's vCPUs and memory less K3s's system reservations.
var allocatable = map[string]policy.Resources{
	"t3.small":   {MilliCPU: 2000, Memory: 1900 << 20, Pods: 110},
	"t3a.small":  {MilliCPU: 2000, Memory: 1900 << 20, Pods: 110},
	"t3.medium":  {MilliCPU: 2000, Memory: 3800 << 20, Pods: 110},
	"t3a.medium": {MilliCPU: 2000, Memory: 3800 << 20, Pods: 110},
	"t3.large":   {MilliCPU: 2000, Memory: 7700 << 20, Pods: 110},
}

func capacityOf(types []string) map[string]policy.Resources {
	out := map[string]policy.Resources{}
	for _, t := range types {
		if r, ok := allocatable[t]; ok {
			out[t] = r
		}
	}
	return out
}

// recordActionTime starts the cooldown at the decision, before anything
// runs: a crash mid-action must not reopen the window.
func (s *Scaler) recordActionTime(ctx context.Context, group string, action policy.Action, now time.Time) error {
	g, err := s.store.Group(ctx, group)
	if err != nil {
		return fmt.Errorf("read group record: %w", err)
	}
	g.Name = group
	if action == policy.Up {
		g.LastScaleUpAt = now
	} else {
		g.LastScaleDownAt = now
	}
	if _, err := s.store.PutGroup(ctx, g); err != nil {
		return fmt.Errorf("record %s time: %w", action, err)
	}
	return nil
}

// finishDecision counts, logs and records a decision. Its log line is
// built from the record alone (not the caller's logger, which may carry
// action or node already), so every key appears once.
func (s *Scaler) finishDecision(ctx context.Context, rec *decision.Record) {
	s.metrics.decisions.WithLabelValues(rec.NodeGroup, rec.Action, string(rec.Outcome)).Inc()
	log := s.log.With("nodegroup", rec.NodeGroup)
	log.Info("decision", "action", rec.Action, "outcome", string(rec.Outcome), "count", rec.Count, "node", rec.Node,
		"operation", rec.Operation, "reason", rec.Reasons, "dry_run", rec.DryRun)
	if err := s.store.RecordDecision(ctx, *rec); err != nil {
		// The decision stands (the lock and cooldown are written); only its
		// history entry is missing.
		log.Warn("decision not recorded", "reason", err.Error())
	}
}

func (s *Scaler) release(lease state.Lease, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lease.Release(ctx); err != nil {
		log.Warn("lock release failed; it expires on its own", "reason", err.Error(), "expiry", lease.Expiry())
	}
}

func countOf(p policy.Plan) int {
	if p.ScaleUp != nil {
		return p.ScaleUp.Count
	}
	if p.ScaleDown != nil {
		return 1
	}
	return 0
}

func nodeOf(p policy.Plan) string {
	if p.ScaleDown != nil {
		return p.ScaleDown.Node
	}
	return ""
}

// runbook returns the first runbook_url of the signals.
func runbook(signals []alert.Signal) string {
	i := slices.IndexFunc(signals, func(s alert.Signal) bool { return s.Annotations.RunbookURL != "" })
	if i < 0 {
		return ""
	}
	return signals[i].Annotations.RunbookURL
}
