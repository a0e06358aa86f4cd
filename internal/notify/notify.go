// Package notify tells people what SmartScale did: a Slack message
// (incoming-webhook JSON with blocks) and an SNS publish after each action,
// success or failure. Sending never blocks or fails an action: a Fanout
// sends in the background with a deadline, and failures are logged and
// counted.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Node is one node an action touched.
type Node struct {
	Name         string `json:"name"`
	InstanceID   string `json:"instanceID,omitempty"`
	Zone         string `json:"zone,omitempty"`
	Market       string `json:"market,omitempty"`
	InstanceType string `json:"instanceType,omitempty"`
}

// Notice is one action's outcome, as people read it.
type Notice struct {
	Time      time.Time     `json:"time"`
	Cluster   string        `json:"cluster"`
	NodeGroup string        `json:"nodegroup"`
	Action    string        `json:"action"`  // scale_up, scale_down, interruption, reconcile
	Outcome   string        `json:"outcome"` // succeeded, partial, failed, dry_run
	Before    int           `json:"before"`
	After     int           `json:"after"`
	Nodes     []Node        `json:"nodes,omitempty"`
	Reasons   []string      `json:"reasons"`
	Error     string        `json:"error,omitempty"`
	Duration  time.Duration `json:"duration"`
	DryRun    bool          `json:"dryRun"`
	// RunbookURL comes from the alert's runbook_url annotation.
	RunbookURL   string `json:"runbookURL,omitempty"`
	DashboardURL string `json:"dashboardURL,omitempty"`
	// Recommendation tells people what to do when something went wrong.
	Recommendation string `json:"recommendation,omitempty"`
}

// Title is a one-line summary (Slack fallback text, SNS subject).
func (n Notice) Title() string {
	verb := map[string]string{
		"scale_up": "scale-up", "scale_down": "scale-down", "interruption": "spot interruption", "reconcile": "reconcile",
	}[n.Action]
	if verb == "" {
		verb = n.Action
	}
	s := fmt.Sprintf("SmartScale %s %s of %s: %d → %d nodes", verb, n.Outcome, n.NodeGroup, n.Before, n.After)
	if n.DryRun {
		s += " (dry run)"
	}
	return s
}

// Recommend returns advice for people from an action's reason codes, or ""
// when nothing needs a person.
func Recommend(outcome string, reasons []string) string {
	has := func(code string) bool {
		for _, r := range reasons {
			if strings.HasPrefix(r, code) {
				return true
			}
		}
		return false
	}
	switch {
	case has("at_max"):
		return "At max capacity: raise maxNodes or check the pending pods' requests."
	case has("unschedulable_by_scale_up"):
		return "Some pending pods cannot fit any node of this group: check their requests, nodeSelector and affinity."
	case has("drain_failed") || has("drain_timeout"):
		return "The drain did not finish (a PodDisruptionBudget or a slow pod): the node was uncordoned; check `kubectl describe node` events."
	case has("node_ready_timeout"):
		return "New nodes did not become Ready in time and were terminated: check the launch template, user data and the K3s join (console log)."
	case has("capacity"):
		return "EC2 had no capacity for some requests: consider more instance types or zones."
	case outcome == "failed":
		return "The action failed: see SmartScale's logs and /v1/decisions for the error."
	}
	return ""
}

// Notifier sends one notice somewhere.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, n Notice) error
}

// Fanout sends every notice to every notifier in the background.
type Fanout struct {
	notifiers []Notifier
	timeout   time.Duration
	log       *slog.Logger
	sent      *prometheus.CounterVec
	wg        sync.WaitGroup
}

// NewFanout registers smartscale_notifications_sent_total{notifier,result}.
func NewFanout(reg prometheus.Registerer, log *slog.Logger, timeout time.Duration, notifiers ...Notifier) *Fanout {
	f := &Fanout{notifiers: notifiers, timeout: timeout, log: log,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_notices_sent_total",
			Help: "Action notices sent to people, by notifier and result (ok, error).",
		}, []string{"notifier", "result"})}
	reg.MustRegister(f.sent)
	for _, n := range notifiers {
		f.sent.WithLabelValues(n.Name(), "ok")
		f.sent.WithLabelValues(n.Name(), "error")
	}
	return f
}

// Send returns at once; each notifier runs on its own goroutine with its
// own deadline, detached from ctx's cancellation (an action finishing must
// not cancel the notice about it).
func (f *Fanout) Send(ctx context.Context, n Notice) {
	for _, nt := range f.notifiers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.timeout)
			defer cancel()
			if err := nt.Notify(sctx, n); err != nil {
				f.sent.WithLabelValues(nt.Name(), "error").Inc()
				f.log.Warn("notice not sent", "notifier", nt.Name(), "nodegroup", n.NodeGroup, "action", n.Action, "reason", err.Error())
				return
			}
			f.sent.WithLabelValues(nt.Name(), "ok").Inc()
		}()
	}
}

// Wait blocks until every notice sent so far is done (shutdown, tests).
func (f *Fanout) Wait() { f.wg.Wait() }
