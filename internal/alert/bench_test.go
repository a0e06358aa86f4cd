package alert_test

import (
	"fmt"
	"testing"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/alert/alerttest"
)

// BenchmarkDecodeContract is the decode + validate + signal mapping part of
// handling a 10-alert notification, without HTTP.
func BenchmarkDecodeContract(b *testing.B) {
	var as []alerttest.Alert
	for i := range 10 {
		as = append(as, alerttest.Alert{Name: fmt.Sprintf("A%d", i), Action: "scale_up", NodeGroup: "workers"})
	}
	body := alerttest.Notification("g", as...)
	known := func(g string) bool { return g == "workers" }
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := alert.Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		if n := alert.Contract(m, known); len(n.Signals) != 10 {
			b.Fatalf("%d signals", len(n.Signals))
		}
	}
}
