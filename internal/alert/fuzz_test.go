package alert_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smartscale/smartscale/internal/alert"
)

// FuzzDecode feeds arbitrary bodies to the decoder and the label contract.
// Properties: no panic; an error is always a *DecodeError naming a field;
// a decoded message accounts for every alert (signal or ignored, never
// lost); every signal obeys the contract; decoding is deterministic.
// The seed corpus is testdata/*.json plus testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	known := func(g string) bool { return g == "workers" || g == "batch" }
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := alert.Decode(body)
		if err != nil {
			var de *alert.DecodeError
			if !errors.As(err, &de) || de.Field == "" {
				t.Fatalf("error %v is not a *DecodeError naming a field", err)
			}
			return
		}
		if m.Version != alert.Version {
			t.Fatalf("accepted version %q", m.Version)
		}
		n := alert.Contract(m, known)
		if len(n.Signals)+len(n.Ignored) != len(m.Alerts) {
			t.Fatalf("%d signals + %d ignored != %d alerts", len(n.Signals), len(n.Ignored), len(m.Alerts))
		}
		for _, s := range n.Signals {
			if s.Action != alert.ScaleUp && s.Action != alert.ScaleDown {
				t.Fatalf("signal with action %q", s.Action)
			}
			if s.Urgency != alert.Normal && s.Urgency != alert.High {
				t.Fatalf("signal with urgency %q", s.Urgency)
			}
			if !known(s.NodeGroup) || s.Status != "firing" || s.Fingerprint == "" {
				t.Fatalf("signal breaks the contract: %+v", s)
			}
		}
		again, err := alert.Decode(body)
		if err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
		a, _ := json.Marshal(alert.Contract(again, known))
		b, _ := json.Marshal(n)
		if string(a) != string(b) {
			t.Fatalf("decode is not deterministic")
		}
		if alert.Contract(again, known).DedupeKey() != n.DedupeKey() {
			t.Fatalf("dedupe key is not deterministic")
		}
	})
}
