package alert_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/alert/alerttest"
)

func readPayload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func onlyWorkers(g string) bool { return g == "workers" }

func TestDecodeRealPayloads(t *testing.T) {
	tests := []struct {
		file      string
		status    string
		truncated uint64
		signals   []Signal // compared on group, action, urgency, alertname, fingerprint
		ignored   map[string]string
	}{
		{
			file: "firing.json", status: "firing",
			signals: []Signal{{NodeGroup: "workers", Action: ScaleUp, Urgency: Normal, AlertName: "SmartScaleClusterCPUHigh", Fingerprint: "a3f9c1d2e4b5f601"}},
		},
		{
			file: "resolved.json", status: "resolved",
			ignored: map[string]string{"0d8e1a77c6f1b2e3": ReasonResolved},
		},
		{
			file: "several.json", status: "firing",
			signals: []Signal{
				{NodeGroup: "workers", Action: ScaleUp, Urgency: High, AlertName: "SmartScalePodsPending", Fingerprint: "1111111111111111"},
				{NodeGroup: "workers", Action: ScaleDown, Urgency: Normal, AlertName: "SmartScaleIdle", Fingerprint: "2222222222222222"},
			},
			ignored: map[string]string{
				"3333333333333333": ReasonResolved,
				"4444444444444444": ReasonNoAction,
				"5555555555555555": ReasonUnknownAction,
				"6666666666666666": ReasonUnknownNodeGroup,
				"7777777777777777": ReasonUnknownUrgency,
			},
		},
		{
			file: "truncated.json", status: "firing", truncated: 12,
			signals: []Signal{{NodeGroup: "workers", Action: ScaleUp, Urgency: Normal, AlertName: "SmartScaleMemoryHigh", Fingerprint: "8888888888888888"}},
		},
		{
			file: "newer-fields.json", status: "firing",
			signals: []Signal{{NodeGroup: "workers", Action: ScaleDown, Urgency: Normal, AlertName: "SmartScaleIdle", Fingerprint: "9999999999999999"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := Decode(readPayload(t, tt.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if m.Status != tt.status || m.TruncatedAlerts != tt.truncated || m.Version != "4" {
				t.Errorf("status=%q truncated=%d version=%q, want %q %d 4", m.Status, m.TruncatedAlerts, m.Version, tt.status, tt.truncated)
			}
			n := Contract(m, onlyWorkers)
			if len(n.Signals)+len(n.Ignored) != len(m.Alerts) {
				t.Errorf("%d signals + %d ignored != %d alerts", len(n.Signals), len(n.Ignored), len(m.Alerts))
			}
			if len(n.Signals) != len(tt.signals) {
				t.Fatalf("got %d signals %+v, want %d", len(n.Signals), n.Signals, len(tt.signals))
			}
			for i, want := range tt.signals {
				got := n.Signals[i]
				if got.NodeGroup != want.NodeGroup || got.Action != want.Action || got.Urgency != want.Urgency ||
					got.AlertName != want.AlertName || got.Fingerprint != want.Fingerprint || got.Status != "firing" || got.StartsAt.IsZero() {
					t.Errorf("signal %d = %+v, want %+v", i, got, want)
				}
			}
			if len(n.Ignored) != len(tt.ignored) {
				t.Fatalf("got %d ignored %+v, want %d", len(n.Ignored), n.Ignored, len(tt.ignored))
			}
			for _, ig := range n.Ignored {
				if want := tt.ignored[ig.Fingerprint]; ig.Reason != want {
					t.Errorf("alert %s ignored for %q, want %q", ig.Fingerprint, ig.Reason, want)
				}
				if ig.Detail == "" {
					t.Errorf("alert %s ignored without detail", ig.Fingerprint)
				}
			}
		})
	}
}

func TestSignalCarriesAnnotationsAndTime(t *testing.T) {
	m, err := Decode(readPayload(t, "firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := Contract(m, onlyWorkers).Signals[0]
	want := time.Date(2026, 11, 27, 9, 0, 15, 123e6, time.UTC)
	if !s.StartsAt.Equal(want) {
		t.Errorf("StartsAt = %v, want %v", s.StartsAt, want)
	}
	if s.Severity != "warning" || !strings.Contains(s.Annotations.Summary, "CPU above 70%") ||
		!strings.HasPrefix(s.Annotations.RunbookURL, "https://") || !strings.HasPrefix(s.Annotations.DashboardURL, "https://") ||
		!strings.Contains(s.Annotations.Description, "78.3%") {
		t.Errorf("signal lost labels or annotations: %+v", s)
	}
}

func TestDefaultsOfTheContract(t *testing.T) {
	// No smartscale_nodegroup → workers; no smartscale_urgency → normal.
	m, err := Decode(readPayload(t, "several.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := Contract(m, onlyWorkers).Signals[1]
	if s.NodeGroup != DefaultNodeGroup || s.Urgency != Normal {
		t.Errorf("defaults not applied: %+v", s)
	}
}

func TestDedupeKey(t *testing.T) {
	m, err := Decode(readPayload(t, "several.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := Contract(m, onlyWorkers)
	key := n.DedupeKey()

	// The same alerts in another order (another Alertmanager replica) → same key.
	swapped := n
	swapped.Signals = []Signal{n.Signals[1], n.Signals[0]}
	if swapped.DedupeKey() != key {
		t.Error("order of alerts changed the dedupe key")
	}
	// A new firing of the same alert (new startsAt) → new key.
	refired := n
	refired.Signals = append([]Signal(nil), n.Signals...)
	refired.Signals[0].StartsAt = refired.Signals[0].StartsAt.Add(time.Hour)
	if refired.DedupeKey() == key {
		t.Error("a new startsAt kept the dedupe key")
	}
	// Another route's group → new key.
	other := n
	other.GroupKey = "{}:{alertname=\"Other\"}"
	if other.DedupeKey() == key {
		t.Error("another group key kept the dedupe key")
	}
	// The same instant in another zone is the same start.
	local := n
	local.Signals = append([]Signal(nil), n.Signals...)
	local.Signals[0].StartsAt = local.Signals[0].StartsAt.In(time.FixedZone("CET", 3600))
	if local.DedupeKey() != key {
		t.Error("time zone of startsAt changed the dedupe key")
	}
}

func TestGroups(t *testing.T) {
	n := Notification{Signals: []Signal{{NodeGroup: "b"}, {NodeGroup: "a"}, {NodeGroup: "b"}}}
	if got := strings.Join(n.Groups(), ","); got != "a,b" {
		t.Errorf("Groups() = %s, want a,b", got)
	}
}

// TestDecodeErrorsNameTheField covers the decoder's own errors; the HTTP
// answer to each (code and body) is tested in internal/server.
func TestDecodeErrorsNameTheField(t *testing.T) {
	for _, tt := range alerttest.Malformed() {
		t.Run(tt.Name, func(t *testing.T) {
			if tt.Code != 400 {
				t.Skip("not a decoder error: answered by the HTTP layer")
			}
			_, err := Decode([]byte(tt.Body))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error = %v, want *DecodeError", err)
			}
			if de.Field != tt.Field {
				t.Errorf("field = %q, want %q (error: %v)", de.Field, tt.Field, err)
			}
		})
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	m, err := Decode(readPayload(t, "several.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct {
		*Message
		Version         string `json:"version"`
		GroupKey        string `json:"groupKey"`
		TruncatedAlerts uint64 `json:"truncatedAlerts"`
	}{m, m.Version, m.GroupKey, m.TruncatedAlerts})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Decode(b)
	if err != nil {
		t.Fatalf("decode re-encoded message: %v", err)
	}
	if len(again.Alerts) != len(m.Alerts) || again.GroupKey != m.GroupKey {
		t.Errorf("round trip changed the message")
	}
}
