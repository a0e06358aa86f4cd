package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/dynamo"
	"github.com/smartscale/smartscale/internal/state/internal/check"
	"github.com/smartscale/smartscale/internal/state/statetest"
)

const table = "smartscale-test"

// startDynalite starts a real dynalite on a free loopback port for this
// test (stopped by PID at cleanup). Its tables persist on disk, so a
// restart in the fault test keeps them.
func startDynalite(t testing.TB) *stack.Stack {
	t.Helper()
	return stack.Start(t, stack.Options{Dynalite: true, DynalitePersist: true})
}

// newClient is one replica's client: its own HTTP connection pool, as a
// separate process would have.
func newClient(endpoint string) *dynamodb.Client {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 64
	})
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:   httpClient,
	})
}

// createTable creates the state table the way `smartscale state init` does.
func createTable(t testing.TB, endpoint string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := dynamo.CreateTable(ctx, newClient(endpoint), table, 20*time.Second)
	if err != nil && !errors.Is(err, dynamo.ErrTTLUnsupported) {
		t.Fatalf("create table: %v", err)
	}
}

var clusters atomic.Int64

// backend isolates each test in its own cluster (pk) of one shared table.
func backend(endpoint string, timeout time.Duration) statetest.NewBackend {
	return func(t *testing.T) statetest.Opener {
		// Unique even on a server that outlives the test process.
		cluster := fmt.Sprintf("%s-%d-%s", strings.ReplaceAll(t.Name(), "/", "-"), clusters.Add(1), check.NewID())
		return func(opts state.Options) state.Store {
			return dynamo.New(newClient(endpoint), table, cluster, timeout, opts)
		}
	}
}

func TestConformance(t *testing.T) {
	endpoint := startDynalite(t).DynamoEndpoint
	createTable(t, endpoint)
	statetest.Run(t, backend(endpoint, 10*time.Second))
}

func TestRace(t *testing.T) {
	endpoint := startDynalite(t).DynamoEndpoint
	createTable(t, endpoint)
	statetest.Race(t, backend(endpoint, 20*time.Second), statetest.RaceConfig{Replicas: 3, Goroutines: 50, Rounds: 20})
}

// TestCreateTable: idempotent, and the table is what the store needs.
func TestCreateTable(t *testing.T) {
	endpoint := startDynalite(t).DynamoEndpoint
	ctx := context.Background()
	client := newClient(endpoint)
	fresh := "fresh-" + check.NewID()
	setup, err := dynamo.CreateTable(ctx, client, fresh, 20*time.Second)
	// dynalite has no UpdateTimeToLive; real DynamoDB enables it.
	if err != nil && !errors.Is(err, dynamo.ErrTTLUnsupported) {
		t.Fatalf("create: %v", err)
	}
	if !setup.Created {
		t.Fatal("first call did not create the table")
	}
	again, err := dynamo.CreateTable(ctx, client, fresh, 20*time.Second)
	if err != nil && !errors.Is(err, dynamo.ErrTTLUnsupported) {
		t.Fatalf("second create: %v", err)
	}
	if again.Created {
		t.Fatal("second call claims to have created the table")
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &fresh})
	if err != nil {
		t.Fatal(err)
	}
	if bm := desc.Table.BillingModeSummary; bm == nil || bm.BillingMode != "PAY_PER_REQUEST" {
		t.Fatalf("billing mode = %+v, want PAY_PER_REQUEST", bm)
	}
	var keys []string
	for _, k := range desc.Table.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName)+"/"+string(k.KeyType))
	}
	if strings.Join(keys, ",") != "pk/HASH,sk/RANGE" {
		t.Fatalf("key schema = %v", keys)
	}
}

// TestOpen: the client built from configuration reaches a local endpoint
// without any AWS credentials in the environment.
func TestOpen(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	endpoint := startDynalite(t).DynamoEndpoint
	createTable(t, endpoint)
	ctx := context.Background()
	s, err := dynamo.Open(ctx, config.DynamoDB{Table: table, Region: "eu-west-1", Endpoint: endpoint, Timeout: config.Duration(5 * time.Second)}, "open-"+check.NewID(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if seen, err := s.SeenBefore(ctx, "k", time.Minute); err != nil || seen {
		t.Fatalf("SeenBefore = %v, %v", seen, err)
	}
}

// TestFault: with dynalite stopped, calls fail within the configured
// timeout, marked unavailable; once it is back they succeed.
func TestFault(t *testing.T) {
	d := startDynalite(t)
	createTable(t, d.DynamoEndpoint)
	const timeout = time.Second
	s := dynamo.New(newClient(d.DynamoEndpoint), table, "fault", timeout, state.Options{})
	ctx := context.Background()
	lease, err := s.Acquire(ctx, "workers", "a", time.Minute)
	if err != nil {
		t.Fatalf("acquire while up: %v", err)
	}

	if err := d.StopDynalite(); err != nil {
		t.Fatalf("stop dynalite: %v", err)
	}
	calls := map[string]func() error{
		"acquire": func() error { _, err := s.Acquire(ctx, "gpu", "a", time.Minute); return err },
		"extend":  func() error { return lease.Extend(ctx, time.Minute) },
		"group":   func() error { _, err := s.Group(ctx, "workers"); return err },
		"put":     func() error { _, err := s.PutGroup(ctx, state.Group{Name: "workers"}); return err },
		"seen":    func() error { _, err := s.SeenBefore(ctx, "k", time.Minute); return err },
		"journal": func() error { _, err := s.UnfinishedOperations(ctx, ""); return err },
		"decide":  func() error { return s.RecordDecision(ctx, decision.Record{NodeGroup: "workers"}) },
		"history": func() error { _, err := s.Decisions(ctx, "", 10); return err },
		"create": func() error {
			_, err := s.CreateOperation(ctx, state.Operation{Group: "workers", Kind: "scale_up", Step: "launch", Owner: "a"})
			return err
		},
		"advance": func() error {
			_, err := s.AdvanceOperation(ctx, state.Transition{ID: "x", Owner: "a", From: "a", To: "b"})
			return err
		},
		"complete": func() error { _, err := s.CompleteOperation(ctx, "x", "a", "failed"); return err },
		"release":  func() error { return lease.Release(ctx) },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if !errors.Is(err, decision.ErrUnavailable) {
			t.Errorf("%s while down: want an error marked decision.ErrUnavailable, got %v", name, err)
		}
		// The bound is the configured timeout; scheduling slack on a busy
		// 2-core machine under -race is the margin.
		if took > timeout+500*time.Millisecond {
			t.Errorf("%s while down took %s, want at most the %s timeout", name, took, timeout)
		}
		t.Logf("%s while down: %s: %v", name, took.Round(time.Millisecond), err)
	}

	if err := d.StartDynalite(ctx); err != nil {
		t.Fatalf("restart dynalite: %v", err)
	}
	// The connection pool held dead connections; the first calls may still
	// fail, so retry briefly. a's lease survived (the data persisted and its
	// release failed while down): releasing it now works, then b gets it.
	retry := func(what string, call func() error) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := call()
			if err == nil {
				return
			}
			if !errors.Is(err, decision.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("%s after restart: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	retry("release", func() error { return lease.Release(ctx) })
	retry("acquire", func() error {
		l, err := s.Acquire(ctx, "workers", "b", time.Minute)
		if err != nil {
			return err
		}
		return l.Release(ctx)
	})
}

// BenchmarkAcquireRelease measures one lock round trip (a conditional
// UpdateItem to take it and one to release it) against local dynalite.
func BenchmarkAcquireRelease(b *testing.B) {
	d := startDynalite(b)
	createTable(b, d.DynamoEndpoint)
	s := dynamo.New(newClient(d.DynamoEndpoint), table, "bench", 5*time.Second, state.Options{})
	ctx := context.Background()
	var durations []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		l, err := s.Acquire(ctx, "workers", fmt.Sprintf("owner-%d", i), time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	reportPercentiles(b, durations)
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	pct := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
