// Package dynamo is the state.Store on one DynamoDB table, shared by every
// replica. Each decision between replicas is one conditional write; reads
// are strongly consistent. Layout (pk = cluster#<id>):
//
//	lock#<group>                        owner, lock_expiry, version (fencing token)
//	group#<group>                       node_count, last_scale_up_at, last_scale_down_at, version
//	dedupe#<key>                        expires_at
//	op#<id>                             the operation journal
//	decision#<group>#<time>#<id>        one decision, for the per-group history
//	history#<time>#<id>                 the same decision, for the all-groups history
//
// Times are epoch seconds with milliseconds; expires_at (the table's TTL
// attribute) is whole epoch seconds. Every method is bounded by the
// configured timeout as a whole, retries included (the SDK's standard
// retryer handles throttling and 5xx); what still fails is returned marked
// with decision.ErrUnavailable.
package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/internal/check"
)

// API is the part of the DynamoDB client the store uses; *dynamodb.Client
// satisfies it.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// maxRecordBytes keeps a decision item under DynamoDB's 400 KB item limit.
const maxRecordBytes = 350 << 10

// maxKeyBytes bounds a dedupe key inside the 1 KB sort key; longer keys
// are hashed.
const maxKeyBytes = 512

// Store is a state.Store on a DynamoDB table.
type Store struct {
	api     API
	table   string
	pk      string
	timeout time.Duration
	opts    state.Options
}

var _ state.Store = (*Store)(nil)

// New returns a store on table for the cluster clusterID. timeout bounds
// each method call (default 5s when not positive).
func New(api API, table, clusterID string, timeout time.Duration, opts state.Options) *Store {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Store{api: api, table: table, pk: "cluster#" + clusterID, timeout: timeout, opts: opts.WithDefaults()}
}

func (s *Store) now() time.Time { return check.Millis(s.opts.Clock()) }

func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) key(sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(s.pk), attrSK: str(sk)}
}

func conditionFailed(err error) bool {
	var c *types.ConditionalCheckFailedException
	return errors.As(err, &c)
}

// current is the item a failed condition found. DynamoDB returns it with
// the error (ReturnValuesOnConditionCheckFailure); dynalite does not, and
// a missing item is never returned, so those cost one consistent read.
func (s *Store) current(ctx context.Context, sk string, condErr error) (map[string]types.AttributeValue, error) {
	var c *types.ConditionalCheckFailedException
	if errors.As(condErr, &c) && len(c.Item) > 0 {
		return c.Item, nil
	}
	return s.get(ctx, sk)
}

// get reads one item (nil when missing), strongly consistent.
func (s *Store) get(ctx context.Context, sk string) (map[string]types.AttributeValue, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: s.key(sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, state.Unavailable("get "+sk, err)
	}
	return out.Item, nil
}

// update runs one conditional UpdateItem and returns the driver's error
// unclassified, so callers can tell a lost condition from an outage.
func (s *Store) update(ctx context.Context, sk string, upd expression.UpdateBuilder, cond expression.ConditionBuilder, rv types.ReturnValue) (map[string]types.AttributeValue, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, fmt.Errorf("build update of %s: %w", sk, err)
	}
	out, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 s.key(sk),
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        rv,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

// put runs one conditional PutItem, error unclassified.
func (s *Store) put(ctx context.Context, it map[string]types.AttributeValue, cond expression.ConditionBuilder) error {
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("build put condition: %w", err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &s.table,
		Item:                                it,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	return err
}

// Acquire implements state.Store: one UpdateItem conditional on
// attribute_not_exists(pk) OR lock_expiry < :now.
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
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sk := "lock#" + group
	for attempt := 1; ; attempt++ {
		now := s.now()
		expiry := check.Millis(now.Add(ttl))
		upd := expression.Set(expression.Name(attrOwner), expression.Value(str(owner))).
			Set(expression.Name(attrLockExpiry), expression.Value(epoch(expiry))).
			Set(expression.Name(attrGroup), expression.Value(str(group))).
			// The version counts acquisitions: the lease's fencing token.
			Set(expression.Name(attrVersion), expression.Plus(
				expression.IfNotExists(expression.Name(attrVersion), expression.Value(num(0))),
				expression.Value(num(1))))
		cond := expression.Name(attrPK).AttributeNotExists().
			Or(expression.Name(attrLockExpiry).LessThan(expression.Value(epoch(now))))
		old, err := s.update(ctx, sk, upd, cond, types.ReturnValueAllOld)
		if err == nil {
			prev := item{m: old}
			if p := prev.str(attrOwner); p != "" {
				check.LogTakeover(ctx, s.opts.Logger, group, owner, p, prev.time(attrLockExpiry))
			}
			return &lease{s: s, sk: sk, group: group, owner: owner, token: prev.int(attrVersion) + 1, expiry: expiry}, nil
		}
		if !conditionFailed(err) {
			return nil, state.Unavailable("acquire "+sk, err)
		}
		cur, err := s.current(ctx, sk, err)
		if err != nil {
			return nil, err
		}
		it := item{m: cur}
		holder, until := it.str(attrOwner), it.time(attrLockExpiry)
		if (holder != "" && !until.Before(now)) || attempt == 3 {
			return nil, &state.ErrLocked{Group: group, Owner: holder, Expiry: until}
		}
		// Released or expired between the write and the read: try again.
	}
}

type lease struct {
	s     *Store
	sk    string
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

// mine is the condition that the stored lock is still this lease's.
func (l *lease) mine() expression.ConditionBuilder {
	return expression.Name(attrOwner).Equal(expression.Value(str(l.owner))).
		And(expression.Name(attrVersion).Equal(expression.Value(num(l.token))))
}

func (l *lease) Extend(ctx context.Context, ttl time.Duration) error {
	if err := check.TTL(ttl); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("extend lock %s: %w (released)", l.group, state.ErrLeaseLost)
	}
	ctx, cancel := l.s.bound(ctx)
	defer cancel()
	expiry := check.Millis(l.s.now().Add(ttl))
	upd := expression.Set(expression.Name(attrLockExpiry), expression.Value(epoch(expiry)))
	if _, err := l.s.update(ctx, l.sk, upd, l.mine(), types.ReturnValueNone); err != nil {
		if !conditionFailed(err) {
			return state.Unavailable("extend "+l.sk, err)
		}
		return l.lost(ctx, "extend", err)
	}
	l.expiry = expiry
	return nil
}

func (l *lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	ctx, cancel := l.s.bound(ctx)
	defer cancel()
	// The item stays (owner removed, expiry zero) so the version keeps
	// counting and fencing tokens never repeat.
	upd := expression.Remove(expression.Name(attrOwner)).
		Set(expression.Name(attrLockExpiry), expression.Value(num(0)))
	if _, err := l.s.update(ctx, l.sk, upd, l.mine(), types.ReturnValueNone); err != nil {
		if !conditionFailed(err) {
			return state.Unavailable("release "+l.sk, err)
		}
		return l.lost(ctx, "release", err)
	}
	l.released = true
	return nil
}

// lost builds the ErrLeaseLost error, naming the current holder if it can.
func (l *lease) lost(ctx context.Context, op string, condErr error) error {
	cur, err := l.s.current(ctx, l.sk, condErr)
	if err != nil {
		return fmt.Errorf("%s lock %s: %w", op, l.group, state.ErrLeaseLost)
	}
	it := item{m: cur}
	return fmt.Errorf("%s lock %s: %w (now held by %q)", op, l.group, state.ErrLeaseLost, it.str(attrOwner))
}

// Group implements state.Store.
func (s *Store) Group(ctx context.Context, group string) (state.Group, error) {
	if err := check.Name("node group", group); err != nil {
		return state.Group{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	m, err := s.get(ctx, "group#"+group)
	if err != nil {
		return state.Group{}, err
	}
	it := item{m: m}
	g := state.Group{
		Name:            group,
		NodeCount:       int(it.int(attrNodeCount)),
		LastScaleUpAt:   it.time(attrLastUp),
		LastScaleDownAt: it.time(attrLastDown),
		Version:         it.int(attrVersion),
	}
	return g, it.err
}

// PutGroup implements state.Store: a PutItem conditional on the version read.
func (s *Store) PutGroup(ctx context.Context, g state.Group) (state.Group, error) {
	if err := check.Name("node group", g.Name); err != nil {
		return state.Group{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sk := "group#" + g.Name
	g.LastScaleUpAt, g.LastScaleDownAt = check.Millis(g.LastScaleUpAt), check.Millis(g.LastScaleDownAt)
	it := s.key(sk)
	it[attrGroup] = str(g.Name)
	it[attrNodeCount] = num(int64(g.NodeCount))
	it[attrVersion] = num(g.Version + 1)
	if !g.LastScaleUpAt.IsZero() {
		it[attrLastUp] = epoch(g.LastScaleUpAt)
	}
	if !g.LastScaleDownAt.IsZero() {
		it[attrLastDown] = epoch(g.LastScaleDownAt)
	}
	cond := expression.Name(attrPK).AttributeNotExists()
	if g.Version != 0 {
		cond = expression.Name(attrVersion).Equal(expression.Value(num(g.Version)))
	}
	err := s.put(ctx, it, cond)
	if err == nil {
		g.Version++
		return g, nil
	}
	if !conditionFailed(err) {
		return state.Group{}, state.Unavailable("put "+sk, err)
	}
	cur, err := s.current(ctx, sk, err)
	if err != nil {
		return state.Group{}, err
	}
	found := item{m: cur}
	return state.Group{}, &state.ErrConflict{Item: sk, Expected: check.Version(g.Version), Actual: check.Version(found.int(attrVersion))}
}

// SeenBefore implements state.Store: one PutItem conditional on the key
// being absent or expired (TTL deletion lags, so expiry is checked here).
func (s *Store) SeenBefore(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := check.Key(key); err != nil {
		return false, err
	}
	if err := check.TTL(ttl); err != nil {
		return false, err
	}
	if len(key) > maxKeyBytes {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now()
	it := s.key("dedupe#" + key)
	it[attrExpiresAt] = num(check.ExpiresAt(now.Add(ttl)))
	cond := expression.Name(attrPK).AttributeNotExists().
		Or(expression.Name(attrExpiresAt).LessThan(expression.Value(epoch(now))))
	err := s.put(ctx, it, cond)
	switch {
	case err == nil:
		return false, nil
	case conditionFailed(err):
		return true, nil
	default:
		return false, state.Unavailable("put dedupe#"+key, err)
	}
}

// CreateOperation implements state.Store.
func (s *Store) CreateOperation(ctx context.Context, op state.Operation) (state.Operation, error) {
	if err := check.Operation(op); err != nil {
		return state.Operation{}, err
	}
	if op.ID == "" {
		op.ID = check.NewID()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now()
	op.Started, op.Updated, op.Finished, op.Result, op.Version = now, now, time.Time{}, "", 1
	sk := "op#" + op.ID
	it := s.key(sk)
	it[attrID] = str(op.ID)
	it[attrGroup] = str(op.Group)
	it[attrKind] = str(op.Kind)
	it[attrStep] = str(op.Step)
	it[attrOwner] = str(op.Owner)
	if op.Node != "" {
		it[attrNode] = str(op.Node)
	}
	if len(op.Instances) > 0 {
		it[attrInstances] = strList(op.Instances)
	}
	if op.Count != 0 {
		it[attrCount] = num(int64(op.Count))
	}
	if len(op.Zones) > 0 {
		it[attrZones] = strList(op.Zones)
	}
	// Always present, so a transition can SET detail.<key>.
	it[attrDetail] = strMap(op.Detail)
	it[attrStarted] = epoch(now)
	it[attrUpdated] = epoch(now)
	it[attrVersion] = num(1)
	err := s.put(ctx, it, expression.Name(attrPK).AttributeNotExists())
	if err == nil {
		return decodeOp(it)
	}
	if !conditionFailed(err) {
		return state.Operation{}, state.Unavailable("put "+sk, err)
	}
	cur, err := s.current(ctx, sk, err)
	if err != nil {
		return state.Operation{}, err
	}
	have, err := decodeOp(cur)
	if err != nil {
		return state.Operation{}, err
	}
	return state.Operation{}, &state.ErrConflict{Item: sk, Expected: "missing", Actual: check.Describe(have)}
}

// AdvanceOperation implements state.Store: one UpdateItem conditional on
// the operation being unfinished, at t.From and owned by t.Owner.
func (s *Store) AdvanceOperation(ctx context.Context, t state.Transition) (state.Operation, error) {
	if err := check.Transition(t); err != nil {
		return state.Operation{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sk := "op#" + t.ID
	upd := expression.Set(expression.Name(attrStep), expression.Value(str(t.To))).
		Set(expression.Name(attrUpdated), expression.Value(epoch(s.now()))).
		Set(expression.Name(attrVersion), expression.Name(attrVersion).Plus(expression.Value(num(1))))
	if t.NewOwner != "" {
		upd = upd.Set(expression.Name(attrOwner), expression.Value(str(t.NewOwner)))
	}
	if t.Node != "" {
		upd = upd.Set(expression.Name(attrNode), expression.Value(str(t.Node)))
	}
	if len(t.Instances) > 0 {
		upd = upd.Set(expression.Name(attrInstances), expression.Value(strList(t.Instances)))
	}
	for k, v := range t.Detail {
		// NameNoDotSplit: a detail key may contain dots.
		upd = upd.Set(expression.Name(attrDetail).AppendName(expression.NameNoDotSplit(k)), expression.Value(str(v)))
	}
	cond := expression.Name(attrPK).AttributeExists().
		And(expression.Name(attrStep).Equal(expression.Value(str(t.From)))).
		And(expression.Name(attrOwner).Equal(expression.Value(str(t.Owner)))).
		And(expression.Name(attrFinished).AttributeNotExists())
	m, err := s.update(ctx, sk, upd, cond, types.ReturnValueAllNew)
	if err == nil {
		return decodeOp(m)
	}
	if !conditionFailed(err) {
		return state.Operation{}, state.Unavailable("advance "+sk, err)
	}
	return state.Operation{}, s.opConflict(ctx, "advance", t.ID, check.Want(t.Owner, t.From), err)
}

// CompleteOperation implements state.Store.
func (s *Store) CompleteOperation(ctx context.Context, id, owner, result string) (state.Operation, error) {
	if err := check.Name("operation id", id); err != nil {
		return state.Operation{}, err
	}
	if err := check.Name("owner", owner); err != nil {
		return state.Operation{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sk := "op#" + id
	now := s.now()
	upd := expression.Set(expression.Name(attrFinished), expression.Value(epoch(now))).
		Set(expression.Name(attrUpdated), expression.Value(epoch(now))).
		Set(expression.Name(attrResult), expression.Value(str(result))).
		Set(expression.Name(attrExpiresAt), expression.Value(num(check.ExpiresAt(now.Add(s.opts.OperationRetention))))).
		Set(expression.Name(attrVersion), expression.Name(attrVersion).Plus(expression.Value(num(1))))
	cond := expression.Name(attrPK).AttributeExists().
		And(expression.Name(attrOwner).Equal(expression.Value(str(owner)))).
		And(expression.Name(attrFinished).AttributeNotExists())
	m, err := s.update(ctx, sk, upd, cond, types.ReturnValueAllNew)
	if err == nil {
		return decodeOp(m)
	}
	if !conditionFailed(err) {
		return state.Operation{}, state.Unavailable("complete "+sk, err)
	}
	return state.Operation{}, s.opConflict(ctx, "complete", id, check.Want(owner, ""), err)
}

// opConflict explains a failed journal condition: ErrNotFound or *ErrConflict.
func (s *Store) opConflict(ctx context.Context, verb, id, want string, condErr error) error {
	cur, err := s.current(ctx, "op#"+id, condErr)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("%s operation %s: %w", verb, id, state.ErrNotFound)
	}
	have, err := decodeOp(cur)
	if err != nil {
		return err
	}
	return &state.ErrConflict{Item: "op#" + id, Expected: want, Actual: check.Describe(have)}
}

// Operation implements state.Store.
func (s *Store) Operation(ctx context.Context, id string) (state.Operation, error) {
	if err := check.Name("operation id", id); err != nil {
		return state.Operation{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	m, err := s.get(ctx, "op#"+id)
	if err != nil {
		return state.Operation{}, err
	}
	if m == nil {
		return state.Operation{}, fmt.Errorf("operation %s: %w", id, state.ErrNotFound)
	}
	return decodeOp(m)
}

// UnfinishedOperations implements state.Store: one Query over op#,
// filtered to the unfinished ones (finished ones wait for TTL).
func (s *Store) UnfinishedOperations(ctx context.Context, group string) ([]state.Operation, error) {
	filter := expression.Name(attrFinished).AttributeNotExists()
	if group != "" {
		if err := check.Name("node group", group); err != nil {
			return nil, err
		}
		filter = filter.And(expression.Name(attrGroup).Equal(expression.Value(str(group))))
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	keyCond := expression.Key(attrPK).Equal(expression.Value(str(s.pk))).
		And(expression.KeyBeginsWith(expression.Key(attrSK), "op#"))
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).WithFilter(filter).Build()
	if err != nil {
		return nil, fmt.Errorf("build journal query: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    expr.KeyCondition(),
		FilterExpression:          expr.Filter(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ConsistentRead:            aws.Bool(true),
	}
	var ops []state.Operation
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, state.Unavailable("query op#", err)
		}
		for _, m := range out.Items {
			op, err := decodeOp(m)
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	check.SortOperations(ops)
	return ops, nil
}

func decodeOp(m map[string]types.AttributeValue) (state.Operation, error) {
	it := item{m: m}
	op := state.Operation{
		ID:        it.str(attrID),
		Group:     it.str(attrGroup),
		Kind:      it.str(attrKind),
		Step:      it.str(attrStep),
		Owner:     it.str(attrOwner),
		Node:      it.str(attrNode),
		Instances: it.list(attrInstances),
		Count:     int(it.int(attrCount)),
		Zones:     it.list(attrZones),
		Detail:    it.strMap(attrDetail),
		Started:   it.time(attrStarted),
		Updated:   it.time(attrUpdated),
		Finished:  it.time(attrFinished),
		Result:    it.str(attrResult),
		Version:   it.int(attrVersion),
	}
	return op, it.err
}

// timeKey formats a decision time so that sort keys order chronologically.
func timeKey(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// RecordDecision implements state.Store: two items in one BatchWriteItem,
// one under the group's prefix and one under the all-groups prefix, so
// either history is one Query, newest first.
func (s *Store) RecordDecision(ctx context.Context, r decision.Record) error {
	r, err := check.Decision(r, s.opts.Clock())
	if err != nil {
		return err
	}
	b, err := s.encode(ctx, r)
	if err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ts := timeKey(r.Time)
	exp := num(check.ExpiresAt(s.opts.Clock().Add(s.opts.DecisionRetention)))
	var puts []types.WriteRequest
	for _, sk := range []string{"decision#" + r.NodeGroup + "#" + ts + "#" + r.ID, "history#" + ts + "#" + r.ID} {
		it := s.key(sk)
		it[attrGroup] = str(r.NodeGroup)
		it[attrRecord] = str(string(b))
		it[attrExpiresAt] = exp
		puts = append(puts, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
	}
	pending := map[string][]types.WriteRequest{s.table: puts}
	for backoff := 20 * time.Millisecond; len(pending[s.table]) > 0; backoff *= 2 {
		out, err := s.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return state.Unavailable("record decision "+r.ID, err)
		}
		pending = out.UnprocessedItems
		if len(pending[s.table]) == 0 {
			return nil
		}
		// Throttled items come back unprocessed: back off, as the SDK would.
		select {
		case <-ctx.Done():
			return state.Unavailable("record decision "+r.ID, ctx.Err())
		case <-time.After(backoff):
		}
	}
	return nil
}

// encode marshals r, dropping signals from a record too large for one
// item (a notification with thousands of alerts) rather than losing it.
func (s *Store) encode(ctx context.Context, r decision.Record) ([]byte, error) {
	total := len(r.Signals)
	for {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode decision %s: %w", r.ID, err)
		}
		if len(b) <= maxRecordBytes {
			if len(r.Signals) < total {
				s.opts.Logger.WarnContext(ctx, "decision signals truncated to fit one item",
					"nodegroup", r.NodeGroup, "decision", r.ID,
					"signals", total, "kept", len(r.Signals))
			}
			return b, nil
		}
		if len(r.Signals) == 0 {
			return nil, fmt.Errorf("%w: decision %s is %d bytes, over the %d-byte item budget", state.ErrInvalid, r.ID, len(b), maxRecordBytes)
		}
		r.Signals = r.Signals[:len(r.Signals)/2]
	}
}

// Decisions implements state.Store: one Query, newest first.
func (s *Store) Decisions(ctx context.Context, group string, limit int) ([]decision.Record, error) {
	prefix := "history#"
	if group != "" {
		if err := check.Name("node group", group); err != nil {
			return nil, err
		}
		prefix = "decision#" + group + "#"
	}
	if err := check.Limit(limit); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	keyCond := expression.Key(attrPK).Equal(expression.Value(str(s.pk))).
		And(expression.KeyBeginsWith(expression.Key(attrSK), prefix))
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).
		WithProjection(expression.NamesList(expression.Name(attrRecord))).Build()
	if err != nil {
		return nil, fmt.Errorf("build decisions query: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    expr.KeyCondition(),
		ProjectionExpression:      expr.Projection(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ScanIndexForward:          aws.Bool(false),
	}
	var out []decision.Record
	for len(out) < limit {
		in.Limit = aws.Int32(int32(min(limit-len(out), 1000)))
		page, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, state.Unavailable("query "+prefix, err)
		}
		for _, m := range page.Items {
			it := item{m: m}
			raw := it.str(attrRecord)
			if it.err != nil {
				return nil, it.err
			}
			var r decision.Record
			if err := json.Unmarshal([]byte(raw), &r); err != nil {
				return nil, fmt.Errorf("decode decision: %w", err)
			}
			out = append(out, r)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, nil
}
