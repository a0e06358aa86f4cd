// Package statetest is the conformance suite every state.Store passes:
// the memory store in its unit tests and the DynamoDB store against a real
// dynalite server. One suite, so both keep the same rules.
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/state"
)

// Opener opens clients of one state: every call is a separate client (a
// simulated replica), and all of them see the same items.
type Opener func(opts state.Options) state.Store

// NewBackend returns an Opener over a fresh, empty state for one test.
type NewBackend func(t *testing.T) Opener

// Epoch is where every fake clock of the suite starts.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a fake clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// LogBuffer collects JSON log lines, safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a JSON logger writing to b.
func (b *LogBuffer) Logger() *slog.Logger { return slog.New(slog.NewJSONHandler(b, nil)) }

// fixture is one fresh state with a fake clock and a captured log.
type fixture struct {
	open  Opener
	clock *Clock
	logs  *LogBuffer
	opts  state.Options
}

func newFixture(t *testing.T, nb NewBackend) *fixture {
	t.Helper()
	f := &fixture{open: nb(t), clock: NewClock(Epoch), logs: &LogBuffer{}}
	f.opts = state.Options{Clock: f.clock.Now, Logger: f.logs.Logger()}
	return f
}

func (f *fixture) store() state.Store { return f.open(f.opts) }

// Run runs the conformance suite against the stores nb opens.
func Run(t *testing.T, nb NewBackend) {
	t.Run("Lock", func(t *testing.T) { testLock(t, nb) })
	t.Run("LockTakeoverIsLogged", func(t *testing.T) { testTakeoverLogged(t, nb) })
	t.Run("LockContention", func(t *testing.T) { testLockContention(t, nb) })
	t.Run("GroupVersion", func(t *testing.T) { testGroupVersion(t, nb) })
	t.Run("Dedupe", func(t *testing.T) { testDedupe(t, nb) })
	t.Run("Journal", func(t *testing.T) { testJournal(t, nb) })
	t.Run("JournalConcurrentAdvance", func(t *testing.T) { testJournalConcurrentAdvance(t, nb) })
	t.Run("Decisions", func(t *testing.T) { testDecisions(t, nb) })
	t.Run("InvalidArguments", func(t *testing.T) { testInvalid(t, nb) })
}

func wantLocked(t *testing.T, err error, owner string, expiry time.Time) {
	t.Helper()
	var locked *state.ErrLocked
	if !errors.As(err, &locked) {
		t.Fatalf("want *state.ErrLocked, got %v", err)
	}
	if locked.Owner != owner || !locked.Expiry.Equal(expiry) {
		t.Fatalf("ErrLocked{Owner: %q, Expiry: %s}, want {%q, %s}", locked.Owner, locked.Expiry, owner, expiry)
	}
}

func wantConflict(t *testing.T, err error) *state.ErrConflict {
	t.Helper()
	var c *state.ErrConflict
	if !errors.As(err, &c) {
		t.Fatalf("want *state.ErrConflict, got %v", err)
	}
	if errors.Is(err, decision.ErrUnavailable) {
		t.Fatalf("a conflict must not be marked unavailable: %v", err)
	}
	return c
}

func testLock(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	s1, s2 := f.store(), f.store()
	const ttl = 30 * time.Second
	start := f.clock.Now()

	a, err := s1.Acquire(ctx, "workers", "a", ttl)
	if err != nil {
		t.Fatalf("acquire free lock: %v", err)
	}
	if a.Group() != "workers" || a.Owner() != "a" || !a.Expiry().Equal(start.Add(ttl)) {
		t.Fatalf("lease = %s/%s until %s, want workers/a until %s", a.Group(), a.Owner(), a.Expiry(), start.Add(ttl))
	}
	firstToken := a.Token()

	// Contend: another replica, and the owner itself (not reentrant).
	_, err = s2.Acquire(ctx, "workers", "b", ttl)
	wantLocked(t, err, "a", start.Add(ttl))
	_, err = s1.Acquire(ctx, "workers", "a", ttl)
	wantLocked(t, err, "a", start.Add(ttl))

	// Another group is another lock.
	other, err := s2.Acquire(ctx, "gpu", "b", ttl)
	if err != nil {
		t.Fatalf("acquire another group's lock: %v", err)
	}

	// At the expiry instant the lock still holds; just after it, it is stale.
	f.clock.Advance(ttl)
	_, err = s2.Acquire(ctx, "workers", "b", ttl)
	wantLocked(t, err, "a", start.Add(ttl))
	f.clock.Advance(time.Millisecond)
	b, err := s2.Acquire(ctx, "workers", "b", ttl)
	if err != nil {
		t.Fatalf("take over expired lock: %v", err)
	}
	if b.Token() <= firstToken {
		t.Fatalf("token after takeover = %d, want > %d", b.Token(), firstToken)
	}

	// The old lease lost it: extending and releasing are errors.
	if err := a.Extend(ctx, ttl); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("extend of a taken-over lease: want ErrLeaseLost, got %v", err)
	}
	if err := a.Release(ctx); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("release by the wrong owner: want ErrLeaseLost, got %v", err)
	}
	// …and did not release b's lock.
	_, err = s1.Acquire(ctx, "workers", "c", ttl)
	wantLocked(t, err, "b", f.clock.Now().Add(ttl))

	// Extend (heartbeat): the lock outlives its first expiry.
	f.clock.Advance(20 * time.Second)
	if err := b.Extend(ctx, ttl); err != nil {
		t.Fatalf("extend: %v", err)
	}
	extended := f.clock.Now().Add(ttl)
	if !b.Expiry().Equal(extended) {
		t.Fatalf("expiry after extend = %s, want %s", b.Expiry(), extended)
	}
	f.clock.Advance(15 * time.Second) // past the first expiry, within the extended one
	_, err = s1.Acquire(ctx, "workers", "c", ttl)
	wantLocked(t, err, "b", extended)

	// Release frees it at once; a second release is a no-op, an extend is not.
	if err := b.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if err := b.Extend(ctx, ttl); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("extend after release: want ErrLeaseLost, got %v", err)
	}
	c, err := s1.Acquire(ctx, "workers", "c", ttl)
	if err != nil {
		t.Fatalf("acquire released lock: %v", err)
	}
	if c.Token() <= b.Token() {
		t.Fatalf("token after release = %d, want > %d", c.Token(), b.Token())
	}
	if err := c.Release(ctx); err != nil {
		t.Fatalf("release c: %v", err)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatalf("release other group: %v", err)
	}
}

func testTakeoverLogged(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	s := f.store()
	a, err := s.Acquire(ctx, "workers", "crashed-replica", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A released lock is not stale: taking it logs nothing.
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := s.Acquire(ctx, "workers", "crashed-replica", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.logs.String(), "stale_lock_cleanup") {
		t.Fatalf("taking a released lock logged a stale-lock cleanup: %s", f.logs)
	}
	_ = b // never released: its replica "crashed"
	f.clock.Advance(2 * time.Second)
	if _, err := s.Acquire(ctx, "workers", "survivor", time.Minute); err != nil {
		t.Fatalf("take over: %v", err)
	}
	logs := f.logs.String()
	for _, want := range []string{`"action":"stale_lock_cleanup"`, `"nodegroup":"workers"`, `"previous_owner":"crashed-replica"`, `"owner":"survivor"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("takeover log lacks %s: %s", want, logs)
		}
	}
}

// testLockContention: many goroutines on several clients, one winner.
func testLockContention(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	stores := []state.Store{f.store(), f.store(), f.store()}
	var wins, locked atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			_, err := stores[i%len(stores)].Acquire(ctx, "workers", fmt.Sprintf("owner-%d", i), time.Minute)
			var l *state.ErrLocked
			switch {
			case err == nil:
				wins.Add(1)
			case errors.As(err, &l):
				locked.Add(1)
			default:
				t.Errorf("acquire: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || locked.Load() != 29 {
		t.Fatalf("wins=%d locked=%d, want 1 and 29", wins.Load(), locked.Load())
	}
}

func testGroupVersion(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	s1, s2 := f.store(), f.store()

	g, err := s1.Group(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	if g != (state.Group{Name: "workers"}) {
		t.Fatalf("unwritten group = %+v, want only its name", g)
	}

	up := f.clock.Now().Add(123456789 * time.Nanosecond) // kept to the millisecond
	g.NodeCount, g.LastScaleUpAt = 3, up
	g1, err := s1.PutGroup(ctx, g)
	if err != nil {
		t.Fatalf("first write: %v", err)
	}
	want := state.Group{Name: "workers", NodeCount: 3, LastScaleUpAt: up.Truncate(time.Millisecond), Version: 1}
	if g1 != want {
		t.Fatalf("PutGroup = %+v, want %+v", g1, want)
	}
	read, err := s2.Group(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	if !read.LastScaleUpAt.Equal(want.LastScaleUpAt) || read.NodeCount != 3 || read.Version != 1 || !read.LastScaleDownAt.IsZero() {
		t.Fatalf("read back %+v, want %+v", read, want)
	}

	// A second "first write" conflicts.
	c := wantConflict(t, func() error { _, err := s2.PutGroup(ctx, g); return err }())
	if c.Item != "group#workers" {
		t.Fatalf("conflict item = %q", c.Item)
	}

	// Two replicas read version 1; the first write wins, the second conflicts.
	r1, _ := s1.Group(ctx, "workers")
	r2, _ := s2.Group(ctx, "workers")
	r1.LastScaleDownAt = f.clock.Now()
	r1.NodeCount = 2
	if _, err := s1.PutGroup(ctx, r1); err != nil {
		t.Fatalf("write from version 1: %v", err)
	}
	r2.NodeCount = 4
	wantConflict(t, func() error { _, err := s2.PutGroup(ctx, r2); return err }())
	final, err := s2.Group(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	if final.Version != 2 || final.NodeCount != 2 || !final.LastScaleDownAt.Equal(f.clock.Now()) {
		t.Fatalf("after the race: %+v, want version 2, 2 nodes", final)
	}
}

func testDedupe(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	s1, s2 := f.store(), f.store()
	const ttl = 10 * time.Minute
	key := "notification:deadbeef:2026-03-01T11:58:00Z"

	seen := func(s state.Store, k string) bool {
		t.Helper()
		ok, err := s.SeenBefore(ctx, k, ttl)
		if err != nil {
			t.Fatalf("SeenBefore(%q): %v", k, err)
		}
		return ok
	}
	if seen(s1, key) {
		t.Fatal("first delivery reported as seen")
	}
	if !seen(s1, key) || !seen(s2, key) {
		t.Fatal("second delivery (same or other replica) not reported as seen")
	}
	if seen(s2, key+"-other") {
		t.Fatal("another key reported as seen")
	}
	f.clock.Advance(ttl - time.Second)
	if !seen(s2, key) {
		t.Fatal("key forgotten before its ttl")
	}
	// A repeat inside the ttl does not extend it.
	f.clock.Advance(2 * time.Second)
	if seen(s2, key) {
		t.Fatal("key still seen after its ttl")
	}
	if !seen(s1, key) {
		t.Fatal("key recorded again after its ttl is not seen")
	}
	long := strings.Repeat("k", 2000)
	if seen(s1, long) || !seen(s2, long) {
		t.Fatal("a 2000-byte key is not deduplicated")
	}
}

func testJournal(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	s1, s2 := f.store(), f.store()
	start := f.clock.Now()

	op, err := s1.CreateOperation(ctx, state.Operation{
		ID: "op-1", Group: "workers", Kind: "scale_up", Step: "launch", Owner: "replica-a",
		Count: 2, Zones: []string{"us-east-1a", "us-east-1b"},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if op.Version != 1 || !op.Started.Equal(start) || !op.Updated.Equal(start) || op.Done() {
		t.Fatalf("created %+v", op)
	}
	read, err := s2.Operation(ctx, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	if read.ID != "op-1" || read.Group != "workers" || read.Kind != "scale_up" || read.Step != "launch" ||
		read.Owner != "replica-a" || read.Count != 2 || !slices.Equal(read.Zones, []string{"us-east-1a", "us-east-1b"}) ||
		read.Version != 1 || !read.Started.Equal(start) || read.Detail != nil || read.Instances != nil {
		t.Fatalf("read back %+v", read)
	}
	if _, err := s2.CreateOperation(ctx, state.Operation{ID: "op-1", Group: "workers", Kind: "scale_up", Step: "launch", Owner: "replica-b"}); err == nil {
		t.Fatal("duplicate operation id accepted")
	} else {
		wantConflict(t, err)
	}
	gen, err := s2.CreateOperation(ctx, state.Operation{Group: "gpu", Kind: "scale_down", Step: "cordon", Owner: "replica-b", Node: "n-1"})
	if err != nil {
		t.Fatalf("create with generated id: %v", err)
	}
	if gen.ID == "" {
		t.Fatal("no id generated")
	}
	if _, err := s1.Operation(ctx, "missing"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("read of a missing op: want ErrNotFound, got %v", err)
	}

	f.clock.Advance(time.Second)
	all, err := s1.UnfinishedOperations(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("unfinished = %+v, want 2", all)
	}
	workers, err := s1.UnfinishedOperations(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	if len(workers) != 1 || workers[0].ID != "op-1" {
		t.Fatalf("unfinished of workers = %+v", workers)
	}

	// Advance: wrong owner, wrong step and missing op are refused.
	step := state.Transition{ID: "op-1", Owner: "replica-a", From: "launch", To: "wait_ready",
		Instances: []string{"i-1", "i-2"}, Detail: map[string]string{"fleet": "fleet-1", "a.b": "dotted"}}
	bad := step
	bad.Owner = "replica-b"
	wantConflict(t, func() error { _, err := s2.AdvanceOperation(ctx, bad); return err }())
	bad = step
	bad.From = "wait_ready"
	c := wantConflict(t, func() error { _, err := s2.AdvanceOperation(ctx, bad); return err }())
	if c.Item != "op#op-1" || !strings.Contains(c.Actual, `"launch"`) {
		t.Fatalf("conflict = %+v", c)
	}
	bad = step
	bad.ID = "missing"
	if _, err := s1.AdvanceOperation(ctx, bad); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("advance of a missing op: want ErrNotFound, got %v", err)
	}

	adv, err := s2.AdvanceOperation(ctx, step)
	if err != nil {
		t.Fatalf("advance: %v", err)
	}
	if adv.Step != "wait_ready" || adv.Version != 2 || !adv.Updated.Equal(f.clock.Now()) || !adv.Started.Equal(start) ||
		!slices.Equal(adv.Instances, []string{"i-1", "i-2"}) || adv.Detail["fleet"] != "fleet-1" || adv.Detail["a.b"] != "dotted" {
		t.Fatalf("advanced %+v", adv)
	}
	// The same step again (a retry, or a second replica) is refused.
	wantConflict(t, func() error { _, err := s1.AdvanceOperation(ctx, step); return err }())

	// Detail keys merge; a hand-over changes the owner.
	hand := state.Transition{ID: "op-1", Owner: "replica-a", From: "wait_ready", To: "wait_ready",
		NewOwner: "reconciler-b", Detail: map[string]string{"ready": "i-1"}}
	adv, err = s1.AdvanceOperation(ctx, hand)
	if err != nil {
		t.Fatalf("hand over: %v", err)
	}
	if adv.Owner != "reconciler-b" || adv.Detail["fleet"] != "fleet-1" || adv.Detail["ready"] != "i-1" || adv.Version != 3 {
		t.Fatalf("handed over %+v", adv)
	}

	// Complete: only by the owner, only once.
	wantConflict(t, func() error { _, err := s1.CompleteOperation(ctx, "op-1", "replica-a", "succeeded"); return err }())
	f.clock.Advance(time.Second)
	done, err := s2.CompleteOperation(ctx, "op-1", "reconciler-b", "succeeded")
	if err != nil {
		t.Fatalf("complete: %v", err)
	}
	if !done.Done() || done.Result != "succeeded" || !done.Finished.Equal(f.clock.Now()) || done.Version != 4 {
		t.Fatalf("completed %+v", done)
	}
	wantConflict(t, func() error { _, err := s1.CompleteOperation(ctx, "op-1", "reconciler-b", "failed"); return err }())
	wantConflict(t, func() error {
		_, err := s1.AdvanceOperation(ctx, state.Transition{ID: "op-1", Owner: "reconciler-b", From: "wait_ready", To: "x"})
		return err
	}())
	if _, err := s1.CompleteOperation(ctx, "missing", "a", "failed"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("complete of a missing op: want ErrNotFound, got %v", err)
	}
	kept, err := s1.Operation(ctx, "op-1")
	if err != nil || kept.Result != "succeeded" {
		t.Fatalf("finished op read back %+v, %v", kept, err)
	}
	left, err := s1.UnfinishedOperations(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != gen.ID || left[0].Node != "n-1" {
		t.Fatalf("unfinished after completion = %+v", left)
	}
}

// testJournalConcurrentAdvance: replicas racing on the same operation.
func testJournalConcurrentAdvance(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	stores := []state.Store{f.store(), f.store(), f.store()}
	if _, err := stores[0].CreateOperation(ctx, state.Operation{ID: "op-race", Group: "workers", Kind: "scale_down", Step: "drain", Owner: "a"}); err != nil {
		t.Fatal(err)
	}
	race := func(name string, try func(i int) error) {
		t.Helper()
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				err := try(i)
				var c *state.ErrConflict
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &c):
					conflicts.Add(1)
				default:
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 19 {
			t.Fatalf("%s: wins=%d conflicts=%d, want 1 and 19", name, wins.Load(), conflicts.Load())
		}
	}
	// The owner's retries (same owner, same step) on several clients.
	race("same step", func(i int) error {
		_, err := stores[i%3].AdvanceOperation(ctx, state.Transition{ID: "op-race", Owner: "a", From: "drain", To: "terminate"})
		return err
	})
	// Reconcilers adopting the operation of a dead owner.
	race("takeover", func(i int) error {
		_, err := stores[i%3].AdvanceOperation(ctx, state.Transition{ID: "op-race", Owner: "a", From: "terminate", To: "terminate", NewOwner: fmt.Sprintf("reconciler-%d", i)})
		return err
	})
	op, err := stores[1].Operation(ctx, "op-race")
	if err != nil {
		t.Fatal(err)
	}
	if op.Step != "terminate" || !strings.HasPrefix(op.Owner, "reconciler-") || op.Version != 3 {
		t.Fatalf("after the races: %+v", op)
	}
	race("complete", func(i int) error {
		_, err := stores[i%3].CompleteOperation(ctx, "op-race", op.Owner, "succeeded")
		return err
	})
}

func testDecisions(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	s1, s2 := f.store(), f.store()
	var written []decision.Record
	for i := range 7 {
		group := "workers"
		if i%3 == 2 {
			group = "gpu"
		}
		r := decision.Record{
			ID:        fmt.Sprintf("d%d", i),
			Time:      Epoch.Add(time.Duration(i) * time.Second).Add(time.Duration(i) * time.Microsecond),
			NodeGroup: group, Action: "scale_up", Outcome: decision.Ignored, Count: i,
			Reasons: []string{fmt.Sprintf("cooldown: %d", i)},
			Signals: []alert.Signal{{NodeGroup: group, Action: alert.ScaleUp, Urgency: alert.Normal, AlertName: "ScaleUpCPU", Fingerprint: "fp", StartsAt: Epoch, Status: "firing"}},
		}
		if err := []state.Store{s1, s2}[i%2].RecordDecision(ctx, r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		written = append(written, r)
	}
	ids := func(rs []decision.Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	got, err := s1.Decisions(ctx, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d6", "d5", "d4"}; !slices.Equal(ids(got), want) {
		t.Fatalf("last 3 = %v, want %v", ids(got), want)
	}
	if r := got[0]; !r.Time.Equal(written[6].Time) || r.Reasons[0] != "cooldown: 6" || r.Count != 6 ||
		len(r.Signals) != 1 || r.Signals[0].AlertName != "ScaleUpCPU" || !r.Signals[0].StartsAt.Equal(Epoch) {
		t.Fatalf("round trip: %+v", r)
	}
	got, err = s2.Decisions(ctx, "gpu", 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d5", "d2"}; !slices.Equal(ids(got), want) {
		t.Fatalf("gpu decisions = %v, want %v", ids(got), want)
	}
	got, err = s2.Decisions(ctx, "workers", 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"d6", "d4", "d3", "d1", "d0"}; !slices.Equal(ids(got), want) {
		t.Fatalf("workers decisions = %v, want %v", ids(got), want)
	}
	got, err = s2.Decisions(ctx, "none", 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("decisions of a group without any = %v, %v", got, err)
	}

	// ID and time are filled in.
	f.clock.Advance(time.Hour)
	if err := s1.RecordDecision(ctx, decision.Record{NodeGroup: "workers", Action: "none", Outcome: decision.Ignored, Reasons: []string{"no signal"}}); err != nil {
		t.Fatal(err)
	}
	got, err = s2.Decisions(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID == "" || !got[0].Time.Equal(f.clock.Now()) || got[0].Reasons[0] != "no signal" {
		t.Fatalf("filled-in decision = %+v", got)
	}
}

func testInvalid(t *testing.T, nb NewBackend) {
	ctx := context.Background()
	f := newFixture(t, nb)
	s := f.store()
	calls := map[string]func() error{
		"acquire empty owner": func() error { _, err := s.Acquire(ctx, "workers", "", time.Minute); return err },
		"acquire zero ttl":    func() error { _, err := s.Acquire(ctx, "workers", "a", 0); return err },
		"acquire bad group":   func() error { _, err := s.Acquire(ctx, "a#b", "a", time.Minute); return err },
		"group empty":         func() error { _, err := s.Group(ctx, ""); return err },
		"put group bad":       func() error { _, err := s.PutGroup(ctx, state.Group{Name: "x#"}); return err },
		"seen empty key":      func() error { _, err := s.SeenBefore(ctx, "", time.Minute); return err },
		"seen zero ttl":       func() error { _, err := s.SeenBefore(ctx, "k", 0); return err },
		"create no owner": func() error {
			_, err := s.CreateOperation(ctx, state.Operation{Group: "workers", Kind: "scale_up", Step: "launch"})
			return err
		},
		"advance no from": func() error {
			_, err := s.AdvanceOperation(ctx, state.Transition{ID: "x", Owner: "a", To: "b"})
			return err
		},
		"decision no group": func() error { return s.RecordDecision(ctx, decision.Record{}) },
		"decisions limit 0": func() error { _, err := s.Decisions(ctx, "", 0); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, state.ErrInvalid) || errors.Is(err, decision.ErrUnavailable) {
			t.Errorf("%s: want ErrInvalid (not unavailable), got %v", name, err)
		}
	}
}

// RaceConfig sizes Race.
type RaceConfig struct {
	Replicas   int // separate clients
	Goroutines int // per replica
	Rounds     int
}

// Race is the acceptance race: in every round, Goroutines × Replicas
// contenders deliver the same notification, then try to take the group's
// lock and record a scale-up in the same cooldown window. Exactly one
// delivery is new and exactly one scale-up is recorded, every round.
func Race(t *testing.T, nb NewBackend, cfg RaceConfig) {
	ctx := context.Background()
	f := newFixture(t, nb)
	f.opts.Logger = slog.New(slog.DiscardHandler)
	stores := make([]state.Store, cfg.Replicas)
	for i := range stores {
		stores[i] = f.store()
	}
	const cooldown = 5 * time.Minute
	for round := range cfg.Rounds {
		var fresh, wins, locked, cooled atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for r, s := range stores {
			for g := range cfg.Goroutines {
				owner := fmt.Sprintf("replica-%d/worker-%d/round-%d", r, g, round)
				wg.Go(func() {
					<-start
					seen, err := s.SeenBefore(ctx, fmt.Sprintf("notification-%d", round), time.Hour)
					if err != nil {
						t.Errorf("%s: dedupe: %v", owner, err)
						return
					}
					if !seen {
						fresh.Add(1)
					}
					switch won, err := scaleUp(ctx, s, f.clock.Now(), owner, cooldown); {
					case err == nil && won:
						wins.Add(1)
					case err == nil:
						cooled.Add(1)
					case errors.As(err, new(*state.ErrLocked)):
						locked.Add(1)
					default:
						t.Errorf("%s: %v", owner, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		if fresh.Load() != 1 || wins.Load() != 1 {
			t.Fatalf("round %d: %d new deliveries and %d scale-ups (locked out %d, in cooldown %d), want exactly 1 and 1",
				round, fresh.Load(), wins.Load(), locked.Load(), cooled.Load())
		}
		f.clock.Advance(cooldown + time.Second)
	}
	g, err := stores[0].Group(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	if g.NodeCount != cfg.Rounds || g.Version != int64(cfg.Rounds) {
		t.Fatalf("after %d rounds: %+v, want %d scale-ups recorded", cfg.Rounds, g, cfg.Rounds)
	}
}

// scaleUp is the scaler's critical section: lock, re-read, check the
// cooldown, record, release.
func scaleUp(ctx context.Context, s state.Store, now time.Time, owner string, cooldown time.Duration) (won bool, err error) {
	lease, err := s.Acquire(ctx, "workers", owner, time.Minute)
	if err != nil {
		return false, err
	}
	defer func() {
		if rerr := lease.Release(ctx); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release: %w", rerr))
		}
	}()
	g, err := s.Group(ctx, "workers")
	if err != nil {
		return false, err
	}
	if !g.LastScaleUpAt.IsZero() && now.Sub(g.LastScaleUpAt) < cooldown {
		return false, nil
	}
	g.LastScaleUpAt = now
	g.NodeCount++
	if _, err := s.PutGroup(ctx, g); err != nil {
		return false, err
	}
	return true, nil
}
