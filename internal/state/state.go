// Package state is what SmartScale replicas share: the per-nodegroup lock,
// the group record that holds cooldown times, dedupe keys, the operation
// journal and the recent decisions.
//
// Conditional writes are the only arbiter between replicas: nothing here is
// trusted from memory across calls. Two implementations satisfy Store:
// state/dynamo (one DynamoDB table, ARCHITECTURE.md "DynamoDB state")
// and state/memory (one process: `make demo` and other packages' tests).
// state/statetest holds the conformance suite both pass.
//
// Errors: a lost race is a typed error (*ErrLocked, *ErrConflict, or one
// wrapping ErrLeaseLost / ErrNotFound); every other failure of the backing
// store is wrapped and marked with decision.ErrUnavailable, so the webhook
// answers 503 and Alertmanager retries. Nothing is acted on without the lock.
package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/smartscale/smartscale/internal/decision"
)

// Store is the shared state one scaler needs. Every method is safe for
// concurrent use, by goroutines and by replicas sharing the backend.
type Store interface {
	// Acquire takes the group's lock for owner until now+ttl. A lock held by
	// anyone (owner included: it is not reentrant) and not yet expired
	// answers *ErrLocked; an expired one is taken over and the takeover is
	// logged as a stale-lock cleanup.
	Acquire(ctx context.Context, group, owner string, ttl time.Duration) (Lease, error)

	// Group reads the group record; a group never written has Version 0.
	Group(ctx context.Context, group string) (Group, error)
	// PutGroup writes g if the stored version is still g.Version (0: not
	// yet stored) and returns it with its new version. A concurrent write
	// in between answers *ErrConflict.
	PutGroup(ctx context.Context, g Group) (Group, error)

	// SeenBefore records key for ttl and reports whether it was already
	// recorded and unexpired: the first caller gets false, every later one
	// true until the ttl passes. One conditional write.
	SeenBefore(ctx context.Context, key string, ttl time.Duration) (bool, error)

	// CreateOperation journals a new operation (ID generated when empty;
	// Started, Updated and Version set by the store). An existing ID
	// answers *ErrConflict.
	CreateOperation(ctx context.Context, op Operation) (Operation, error)
	// AdvanceOperation applies t if the operation is unfinished, at step
	// t.From and owned by t.Owner; otherwise *ErrConflict (or ErrNotFound).
	// Of two replicas advancing the same step, exactly one wins.
	AdvanceOperation(ctx context.Context, t Transition) (Operation, error)
	// CompleteOperation marks the operation finished with result
	// ("succeeded", "failed", "rolled_back", …) if owner still owns it and
	// it is unfinished; otherwise *ErrConflict (or ErrNotFound). Finished
	// operations are kept for Options.OperationRetention.
	CompleteOperation(ctx context.Context, id, owner, result string) (Operation, error)
	// Operation reads one operation; ErrNotFound when there is none.
	Operation(ctx context.Context, id string) (Operation, error)
	// UnfinishedOperations lists the group's unfinished operations (every
	// group's when group is ""), oldest first.
	UnfinishedOperations(ctx context.Context, group string) ([]Operation, error)

	// RecordDecision keeps r for Options.DecisionRetention. An empty ID or
	// zero Time is filled in (random ID, the store's clock).
	RecordDecision(ctx context.Context, r decision.Record) error
	// Decisions returns up to limit decisions of group (every group's when
	// group is ""), newest first.
	Decisions(ctx context.Context, group string, limit int) ([]decision.Record, error)
}

// Lease is a held lock. Its methods are safe for concurrent use (a
// heartbeat goroutine may Extend while the owner works).
type Lease interface {
	Group() string
	Owner() string
	// Token increases with every acquisition of the group's lock, so it can
	// fence writes made under an older lease.
	Token() int64
	// Expiry is when the lease lapses unless extended.
	Expiry() time.Time
	// Extend moves the expiry to now+ttl (the heartbeat of a long drain),
	// conditional on this lease still holding the lock; a lease someone
	// else took over answers an error wrapping ErrLeaseLost.
	Extend(ctx context.Context, ttl time.Duration) error
	// Release frees the lock, conditional on this lease still holding it.
	// Releasing a lock someone else took over is an error wrapping
	// ErrLeaseLost, never a silent success. Releasing twice is a no-op.
	Release(ctx context.Context) error
}

// Group is the group record: what the cooldowns are computed from.
type Group struct {
	Name            string
	NodeCount       int
	LastScaleUpAt   time.Time
	LastScaleDownAt time.Time
	// Version is the optimistic-concurrency version; 0 for a group never
	// written. PutGroup is conditional on it.
	Version int64
}

// Operation is one multi-step operation (provision, drain) in the journal.
type Operation struct {
	ID    string
	Group string
	Kind  string // scale_up, scale_down, interruption
	Step  string // the step about to run (journaled before it runs)
	Owner string // the replica driving it
	Node  string
	// Instances are the cloud instances the operation created or removes.
	Instances []string
	Count     int      // nodes being provisioned (scale_up)
	Zones     []string // zones of the nodes being provisioned
	// Detail carries step data the scaler needs to resume (request IDs…).
	Detail   map[string]string
	Started  time.Time
	Updated  time.Time
	Finished time.Time // zero while unfinished
	Result   string    // set by CompleteOperation
	Version  int64
}

// Done reports whether the operation is finished.
func (o Operation) Done() bool { return !o.Finished.IsZero() }

// Transition advances one operation by one step.
type Transition struct {
	ID    string
	Owner string // must be the stored owner
	From  string // must be the stored step
	To    string // the new step (may equal From for a pure hand-over)
	// NewOwner, when set, hands the operation over (the reconciler adopting
	// the operation of a replica that died).
	NewOwner string
	// Node and Instances replace the stored values when non-empty; Detail
	// keys are merged into the stored ones.
	Node      string
	Instances []string
	Detail    map[string]string
}

// Options tune a store; the zero value is usable.
type Options struct {
	// Clock is read for every expiry; tests inject a fake one.
	Clock func() time.Time
	// Logger receives stale-lock takeovers.
	Logger *slog.Logger
	// DecisionRetention is how long decisions are kept (default 7 days).
	DecisionRetention time.Duration
	// OperationRetention is how long finished operations are kept (default 7 days).
	OperationRetention time.Duration
}

// WithDefaults fills every unset option.
func (o Options) WithDefaults() Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DecisionRetention <= 0 {
		o.DecisionRetention = 7 * 24 * time.Hour
	}
	if o.OperationRetention <= 0 {
		o.OperationRetention = 7 * 24 * time.Hour
	}
	return o
}

// ErrLocked answers Acquire while another lease holds the lock.
type ErrLocked struct {
	Group  string
	Owner  string
	Expiry time.Time
}

func (e *ErrLocked) Error() string {
	return fmt.Sprintf("lock %s held by %s until %s", e.Group, e.Owner, e.Expiry.UTC().Format(time.RFC3339Nano))
}

// ErrConflict answers a conditional write that lost: the item changed
// since it was read (another replica wrote it first).
type ErrConflict struct {
	Item     string // e.g. "group#workers", "op#<id>"
	Expected string // what the write was conditional on
	Actual   string // what the store held afterwards ("missing" if nothing)
}

func (e *ErrConflict) Error() string {
	return fmt.Sprintf("conflict on %s: expected %s, found %s", e.Item, e.Expected, e.Actual)
}

// ErrLeaseLost answers Extend and Release of a lease whose lock is no
// longer this lease's (taken over after it expired).
var ErrLeaseLost = errors.New("lease lost")

// ErrNotFound answers a read or transition of an operation that does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalid marks a call with an unusable argument (empty owner, a group
// name with '#', a non-positive ttl). It is a bug in the caller, not an outage.
var ErrInvalid = errors.New("invalid argument")

// Unavailable wraps err from the backing store so that errors.Is(err,
// decision.ErrUnavailable) holds and the cause stays inspectable.
func Unavailable(op string, err error) error {
	return fmt.Errorf("state %s: %w: %w", op, decision.ErrUnavailable, err)
}
