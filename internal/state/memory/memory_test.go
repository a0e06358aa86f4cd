package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/memory"
	"github.com/smartscale/smartscale/internal/state/statetest"
)

// backend shares one memory store between the "replicas" of a test: in one
// process that is what replicas of the memory backend would see.
func backend(*testing.T) statetest.Opener {
	var s *memory.Store
	return func(opts state.Options) state.Store {
		if s == nil {
			s = memory.New(opts)
		}
		return s
	}
}

func TestConformance(t *testing.T) { statetest.Run(t, backend) }

func TestRace(t *testing.T) {
	statetest.Race(t, backend, statetest.RaceConfig{Replicas: 3, Goroutines: 50, Rounds: 20})
}

// TestRetention: finished operations and old decisions go, as DynamoDB
// TTL would remove them.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	clock := statetest.NewClock(statetest.Epoch)
	s := memory.New(state.Options{Clock: clock.Now, DecisionRetention: time.Hour, OperationRetention: time.Hour})
	op, err := s.CreateOperation(ctx, state.Operation{Group: "workers", Kind: "scale_up", Step: "launch", Owner: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteOperation(ctx, op.ID, "a", "succeeded"); err != nil {
		t.Fatal(err)
	}
	recordDecision(t, s, "old")
	clock.Advance(2 * time.Hour)
	recordDecision(t, s, "new")
	if _, err := s.CreateOperation(ctx, state.Operation{Group: "workers", Kind: "scale_up", Step: "launch", Owner: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Operation(ctx, op.ID); err == nil {
		t.Fatal("finished operation kept past its retention")
	}
	got, err := s.Decisions(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "new" {
		t.Fatalf("decisions after retention = %+v, want only the new one", got)
	}
}

func recordDecision(t *testing.T, s *memory.Store, id string) {
	t.Helper()
	if err := s.RecordDecision(context.Background(), decision.Record{ID: id, NodeGroup: "workers", Action: "none", Outcome: decision.Ignored}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkAcquireRelease is the in-process baseline of the dynamo
// package's benchmark of the same name.
func BenchmarkAcquireRelease(b *testing.B) {
	s := memory.New(state.Options{})
	ctx := context.Background()
	for b.Loop() {
		l, err := s.Acquire(ctx, "workers", "owner", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
