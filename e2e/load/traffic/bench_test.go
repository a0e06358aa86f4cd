package traffic_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/smartscale/smartscale/e2e/load/traffic"
)

// BenchmarkRunOverhead measures what the load generator costs per request:
// one op is one request sent at 2000 requests/s to a handler that does
// nothing, so cpu-ns/op is vegeta's and this package's CPU (plus net/http's
// serving side, which any target adds) and ns/op is the pacing interval.
// achieved-rps below 2000 means the generator could not keep up.
func BenchmarkRunOverhead(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	}))
	defer srv.Close()
	const rate = 2000
	p := traffic.Profile{Name: "bench", Phases: []traffic.Phase{{
		Name: "hold", Duration: time.Duration(b.N) * time.Second / rate, From: rate, To: rate,
	}}}
	before := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	rep, err := traffic.Run(b.Context(), p, srv.URL+"/", traffic.Options{})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if rep.Total.Requests == 0 || rep.Total.Success != 1 {
		b.Fatalf("%d requests, success %v", rep.Total.Requests, rep.Total.Success)
	}
	b.ReportMetric(float64(cpuTime(b)-before)/float64(rep.Total.Requests), "cpu-ns/op")
	b.ReportMetric(rep.Total.Rate, "achieved-rps")
	b.ReportMetric(float64(rep.Total.P99.Microseconds()), "p99-µs")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
