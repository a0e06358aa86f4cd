package stack_test

import (
	"context"
	"testing"
	"time"

	"github.com/smartscale/smartscale/e2e/stack"
)

// BenchmarkStartAll measures whole-stack start to all-ready (every
// component, two kwok nodes Ready). Goal: under 30 s on 2 cores.
//
//	go test -run '^$' -bench BenchmarkStartAll -benchtime 3x ./e2e/stack
func BenchmarkStartAll(b *testing.B) {
	opts := stack.All()
	opts.KwokNodes = []stack.NodeSpec{{Name: "worker-a", Zone: "us-east-1a"}, {Name: "worker-b", Zone: "us-east-1b"}}
	opts.Logf = func(string, ...any) {}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		start := time.Now()
		s, err := stack.Launch(ctx, opts, b.TempDir())
		elapsed := time.Since(start)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		total += elapsed
		b.StopTimer()
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/start")
}
