// Package memory is a state.Store held in one process: for `make demo`,
// single-replica runs and other packages' tests. It keeps the same rules
// as the DynamoDB store (the same conformance suite runs on both), but its
// state dies with the process, so it never arbitrates between replicas.
package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/internal/check"
)

// maxDecisions bounds the decision history besides its retention, so a
// long demo cannot grow without bound.
const maxDecisions = 10000

// pruneEvery is how many dedupe inserts pass between sweeps of expired keys.
const pruneEvery = 1024

// Store is a state.Store in memory. The zero value is not usable; call New.
type Store struct {
	opts state.Options

	mu        sync.Mutex
	locks     map[string]lock
	groups    map[string]state.Group
	seen      map[string]int64 // key → expires_at (epoch s)
	inserts   int
	ops       map[string]state.Operation
	decisions []stored // oldest first
}

type lock struct {
	owner  string // "" once released
	expiry time.Time
	token  int64
}

type stored struct {
	group string
	time  time.Time
	id    string
	json  []byte
}

var _ state.Store = (*Store)(nil)

// New returns an empty store.
func New(opts state.Options) *Store {
	return &Store{
		opts:   opts.WithDefaults(),
		locks:  map[string]lock{},
		groups: map[string]state.Group{},
		seen:   map[string]int64{},
		ops:    map[string]state.Operation{},
	}
}

func (s *Store) now() time.Time { return check.Millis(s.opts.Clock()) }

// Acquire implements state.Store.
func (s *Store) Acquire(ctx context.Context, group, owner string, ttl time.Duration) (state.Lease, error) {
	if err := check.Name("node group", group); err != nil {
		return nil, err
	}
	if err := check.Name("owner", owner); err != nil {
		return nil, err
	}
	if err := check.TTL(ttl); err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.locks[group]
	// Held while expiry >= now: the DynamoDB condition takes over only when
	// lock_expiry < :now.
	if cur.owner != "" && !cur.expiry.Before(now) {
		return nil, &state.ErrLocked{Group: group, Owner: cur.owner, Expiry: cur.expiry}
	}
	if cur.owner != "" {
		check.LogTakeover(ctx, s.opts.Logger, group, owner, cur.owner, cur.expiry)
	}
	next := lock{owner: owner, expiry: check.Millis(now.Add(ttl)), token: cur.token + 1}
	s.locks[group] = next
	return &lease{s: s, group: group, owner: owner, token: next.token, expiry: next.expiry}, nil
}

type lease struct {
	s     *Store
	group string
	owner string
	token int64

	mu       sync.Mutex
	expiry   time.Time
	released bool
}

func (l *lease) Group() string { return l.group }
func (l *lease) Owner() string { return l.owner }
func (l *lease) Token() int64  { return l.token }

func (l *lease) Expiry() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expiry
}

// holds reports whether the stored lock is still this lease's; s.mu held.
func (l *lease) holds() (lock, bool) {
	cur := l.s.locks[l.group]
	return cur, cur.owner == l.owner && cur.token == l.token
}

func (l *lease) Extend(_ context.Context, ttl time.Duration) error {
	if err := check.TTL(ttl); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("extend lock %s: %w (released)", l.group, state.ErrLeaseLost)
	}
	now := l.s.now()
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	cur, ok := l.holds()
	if !ok {
		return fmt.Errorf("extend lock %s: %w (now held by %q)", l.group, state.ErrLeaseLost, cur.owner)
	}
	cur.expiry = check.Millis(now.Add(ttl))
	l.s.locks[l.group] = cur
	l.expiry = cur.expiry
	return nil
}

func (l *lease) Release(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	cur, ok := l.holds()
	if !ok {
		return fmt.Errorf("release lock %s: %w (now held by %q)", l.group, state.ErrLeaseLost, cur.owner)
	}
	l.s.locks[l.group] = lock{token: cur.token}
	l.released = true
	return nil
}

// Group implements state.Store.
func (s *Store) Group(_ context.Context, group string) (state.Group, error) {
	if err := check.Name("node group", group); err != nil {
		return state.Group{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[group]
	if !ok {
		return state.Group{Name: group}, nil
	}
	return g, nil
}

// PutGroup implements state.Store.
func (s *Store) PutGroup(_ context.Context, g state.Group) (state.Group, error) {
	if err := check.Name("node group", g.Name); err != nil {
		return state.Group{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.groups[g.Name]
	if cur.Version != g.Version {
		return state.Group{}, &state.ErrConflict{Item: "group#" + g.Name, Expected: check.Version(g.Version), Actual: check.Version(cur.Version)}
	}
	g.LastScaleUpAt = check.Millis(g.LastScaleUpAt)
	g.LastScaleDownAt = check.Millis(g.LastScaleDownAt)
	g.Version++
	s.groups[g.Name] = g
	return g, nil
}

// SeenBefore implements state.Store.
func (s *Store) SeenBefore(_ context.Context, key string, ttl time.Duration) (bool, error) {
	if err := check.Key(key); err != nil {
		return false, err
	}
	if err := check.TTL(ttl); err != nil {
		return false, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.seen[key]; ok && !expired(exp, now) {
		return true, nil
	}
	s.seen[key] = check.ExpiresAt(now.Add(ttl))
	if s.inserts++; s.inserts%pruneEvery == 0 {
		maps.DeleteFunc(s.seen, func(_ string, exp int64) bool { return expired(exp, now) })
	}
	return false, nil
}

// expired mirrors the DynamoDB condition expires_at < :now, with :now in
// milliseconds.
func expired(expiresAt int64, now time.Time) bool {
	return expiresAt*1000 < now.UnixMilli()
}

// CreateOperation implements state.Store.
func (s *Store) CreateOperation(_ context.Context, op state.Operation) (state.Operation, error) {
	if err := check.Operation(op); err != nil {
		return state.Operation{}, err
	}
	if op.ID == "" {
		op.ID = check.NewID()
	}
	now := s.now()
	op.Started, op.Updated, op.Finished, op.Result, op.Version = now, now, time.Time{}, "", 1
	op = clean(op)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.ops[op.ID]; ok {
		return state.Operation{}, &state.ErrConflict{Item: "op#" + op.ID, Expected: "missing", Actual: check.Describe(cur)}
	}
	// Finished operations past their retention go, as DynamoDB TTL would.
	maps.DeleteFunc(s.ops, func(_ string, o state.Operation) bool {
		return o.Done() && now.Sub(o.Finished) > s.opts.OperationRetention
	})
	s.ops[op.ID] = op
	return clean(op), nil
}

// AdvanceOperation implements state.Store.
func (s *Store) AdvanceOperation(_ context.Context, t state.Transition) (state.Operation, error) {
	if err := check.Transition(t); err != nil {
		return state.Operation{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[t.ID]
	if !ok {
		return state.Operation{}, fmt.Errorf("advance operation %s: %w", t.ID, state.ErrNotFound)
	}
	if op.Done() || op.Step != t.From || op.Owner != t.Owner {
		return state.Operation{}, &state.ErrConflict{Item: "op#" + t.ID, Expected: check.Want(t.Owner, t.From), Actual: check.Describe(op)}
	}
	op = clean(op) // a copy: readers hold the old slices and map
	op.Step = t.To
	if t.NewOwner != "" {
		op.Owner = t.NewOwner
	}
	if t.Node != "" {
		op.Node = t.Node
	}
	if len(t.Instances) > 0 {
		op.Instances = slices.Clone(t.Instances)
	}
	if len(t.Detail) > 0 {
		if op.Detail == nil {
			op.Detail = map[string]string{}
		}
		maps.Copy(op.Detail, t.Detail)
	}
	op.Updated = now
	op.Version++
	s.ops[op.ID] = op
	return clean(op), nil
}

// CompleteOperation implements state.Store.
func (s *Store) CompleteOperation(_ context.Context, id, owner, result string) (state.Operation, error) {
	if err := check.Name("operation id", id); err != nil {
		return state.Operation{}, err
	}
	if err := check.Name("owner", owner); err != nil {
		return state.Operation{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[id]
	if !ok {
		return state.Operation{}, fmt.Errorf("complete operation %s: %w", id, state.ErrNotFound)
	}
	if op.Done() || op.Owner != owner {
		return state.Operation{}, &state.ErrConflict{Item: "op#" + id, Expected: check.Want(owner, ""), Actual: check.Describe(op)}
	}
	op = clean(op)
	op.Finished, op.Updated, op.Result = now, now, result
	op.Version++
	s.ops[id] = op
	return clean(op), nil
}

// Operation implements state.Store.
func (s *Store) Operation(_ context.Context, id string) (state.Operation, error) {
	if err := check.Name("operation id", id); err != nil {
		return state.Operation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[id]
	if !ok {
		return state.Operation{}, fmt.Errorf("operation %s: %w", id, state.ErrNotFound)
	}
	return clean(op), nil
}

// UnfinishedOperations implements state.Store.
func (s *Store) UnfinishedOperations(_ context.Context, group string) ([]state.Operation, error) {
	if group != "" {
		if err := check.Name("node group", group); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	var out []state.Operation
	for _, op := range s.ops {
		if !op.Done() && (group == "" || op.Group == group) {
			out = append(out, clean(op))
		}
	}
	s.mu.Unlock()
	check.SortOperations(out)
	return out, nil
}

// clean copies op's slices and map and drops empty ones, as a DynamoDB
// round trip does, so callers never share memory with the store.
func clean(op state.Operation) state.Operation {
	op.Instances = nilIfEmpty(slices.Clone(op.Instances))
	op.Zones = nilIfEmpty(slices.Clone(op.Zones))
	if len(op.Detail) == 0 {
		op.Detail = nil
	} else {
		op.Detail = maps.Clone(op.Detail)
	}
	return op
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// RecordDecision implements state.Store.
func (s *Store) RecordDecision(_ context.Context, r decision.Record) error {
	r, err := check.Decision(r, s.opts.Clock())
	if err != nil {
		return err
	}
	// Kept as JSON, like the DynamoDB item: readers get a deep copy.
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode decision %s: %w", r.ID, err)
	}
	now := s.opts.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := stored{group: r.NodeGroup, time: r.Time, id: r.ID, json: b}
	i := sort.Search(len(s.decisions), func(i int) bool { return !older(s.decisions[i], d) })
	s.decisions = slices.Insert(s.decisions, i, d)
	// Drop what DynamoDB TTL would have removed, and bound the history.
	cut := sort.Search(len(s.decisions), func(i int) bool {
		return now.Sub(s.decisions[i].time) <= s.opts.DecisionRetention
	})
	cut = max(cut, len(s.decisions)-maxDecisions)
	s.decisions = slices.Delete(s.decisions, 0, cut)
	return nil
}

// older orders decisions as their DynamoDB sort keys do: time, then ID.
func older(a, b stored) bool {
	if !a.time.Equal(b.time) {
		return a.time.Before(b.time)
	}
	return a.id < b.id
}

// Decisions implements state.Store.
func (s *Store) Decisions(_ context.Context, group string, limit int) ([]decision.Record, error) {
	if group != "" {
		if err := check.Name("node group", group); err != nil {
			return nil, err
		}
	}
	if err := check.Limit(limit); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var raw [][]byte
	for i := len(s.decisions) - 1; i >= 0 && len(raw) < limit; i-- {
		if group == "" || s.decisions[i].group == group {
			raw = append(raw, s.decisions[i].json)
		}
	}
	s.mu.Unlock()
	out := make([]decision.Record, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("decode decision: %w", err)
		}
	}
	return out, nil
}
