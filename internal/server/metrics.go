package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/buildinfo"
)

// metrics are the front door's own series; the scaler registers its own.
type metrics struct {
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	alertsReceived  *prometheus.CounterVec
	alertsIgnored   *prometheus.CounterVec
	notifications   *prometheus.CounterVec
	truncatedAlerts prometheus.Counter
	authFailures    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smartscale_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		alertsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_alerts_received_total",
			Help: "Alerts received in webhook notifications, by status (firing, resolved).",
		}, []string{"status"}),
		alertsIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_alerts_ignored_total",
			Help: "Alerts that became no scaling signal, by reason.",
		}, []string{"reason"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_notifications_total",
			Help: "Webhook notifications by result (accepted, ignored, bad_request, unavailable, error).",
		}, []string{"result"}),
		truncatedAlerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartscale_truncated_alerts_total",
			Help: "Alerts Alertmanager left out of notifications because of max_alerts.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartscale_auth_failures_total",
			Help: "Requests refused for missing or wrong credentials.",
		}),
	}
	bi := buildinfo.Get()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "smartscale_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "goversion"})
	build.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
	reg.MustRegister(m.requests, m.latency, m.alertsReceived, m.alertsIgnored, m.notifications,
		m.truncatedAlerts, m.authFailures, build)
	// Pre-create the series people alert on, so a rate() has a zero to start from.
	for _, r := range alert.IgnoreReasons {
		m.alertsIgnored.WithLabelValues(r)
	}
	for _, r := range []string{resultAccepted, resultIgnored, resultBadRequest, resultUnavailable, resultError} {
		m.notifications.WithLabelValues(r)
	}
	return m
}

// RegisterRuntime adds the Go runtime and process collectors to reg.
func RegisterRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
