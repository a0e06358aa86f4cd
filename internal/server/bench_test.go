package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/alert/alerttest"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/server"
)

type nopScaler struct{}

func (nopScaler) Handle(context.Context, alert.Notification) ([]decision.Record, error) {
	return nil, nil
}

func (nopScaler) Decisions(context.Context, string, int) ([]decision.Record, error) {
	return nil, nil
}

func tenAlerts() []byte {
	var as []alerttest.Alert
	for i := range 10 {
		a := alerttest.Alert{Name: fmt.Sprintf("SmartScaleAlert%d", i), Action: "scale_up", NodeGroup: "workers", Urgency: "normal"}
		if i%3 == 0 {
			a.Action = "scale_down"
		}
		if i == 9 {
			a.Action = "" // a people-only alert in the same group
		}
		as = append(as, a)
	}
	return alerttest.Notification(`{}:{alertname=~".*"}`, as...)
}

// BenchmarkHandleNotification measures the front door for one 10-alert
// notification: routing, auth, body limit, decode, validation and the label
// contract (the scaler is a no-op).
func BenchmarkHandleNotification(b *testing.B) {
	srv := server.New(server.Options{
		Scaler: nopScaler{}, Decisions: nopScaler{}, Auth: &server.Credentials{BearerToken: token},
		KnownGroup: func(g string) bool { return g == "workers" }, Logger: slog.New(slog.DiscardHandler),
	})
	h := srv.Handler()
	body := tenAlerts()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/alerts", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("code %d: %s", rec.Code, rec.Body)
		}
	}
}
