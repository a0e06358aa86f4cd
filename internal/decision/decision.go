// Package decision holds the record of one scaling decision: what was asked,
// what was decided and every reason why. The webhook answers with it, the
// state store keeps the recent ones, and GET /v1/decisions lists them.
package decision

import (
	"errors"
	"time"

	"github.com/smartscale/smartscale/internal/alert"
)

// ErrUnavailable marks a failure a retry can fix (the state store or the
// API server did not answer). The webhook answers 503 so Alertmanager
// retries the delivery.
var ErrUnavailable = errors.New("dependency unavailable")

// Outcome is what became of a decision.
type Outcome string

// Outcomes, stable: they are metric label values.
const (
	// Accepted: an action was planned and is executing.
	Accepted Outcome = "accepted"
	// Ignored: deliberately no action (cooldown, bounds, duplicate, no signal).
	Ignored Outcome = "ignored"
	// DryRun: an action was planned and recorded, not executed.
	DryRun Outcome = "dry_run"
	// Succeeded / Failed: the executed action's end.
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
)

// Record is one decision for one node group.
type Record struct {
	ID        string         `json:"id"`
	Time      time.Time      `json:"time"`
	NodeGroup string         `json:"nodegroup"`
	Action    string         `json:"action"` // scale_up, scale_down, none, interruption, reconcile
	Outcome   Outcome        `json:"outcome"`
	Count     int            `json:"count,omitempty"`
	Node      string         `json:"node,omitempty"`
	Reasons   []string       `json:"reasons"`
	DryRun    bool           `json:"dryRun"`
	Signals   []alert.Signal `json:"signals,omitempty"`
	GroupKey  string         `json:"groupKey,omitempty"`
	Operation string         `json:"operation,omitempty"`
}
