// Package scaler turns notifications into actions. Recorder is its dry-run
// front: it decides what each notification asks of each node group and
// records why, without touching a cloud or a cluster.
package scaler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/decision"
)

// Recorder is the dry-run scaler: for every node group a notification
// names it records the action the signals ask for (scale-up wins over
// scale-down; the step follows the highest urgency) and, for every ignored
// alert, why. It keeps the most recent records in memory for
// GET /v1/decisions.
type Recorder struct {
	groups   map[string]config.NodeGroup
	now      func() time.Time
	log      *slog.Logger
	capacity int

	mu      sync.Mutex
	records []decision.Record // oldest first
}

// NewRecorder keeps up to capacity records.
func NewRecorder(groups []config.NodeGroup, now func() time.Time, log *slog.Logger, capacity int) *Recorder {
	r := &Recorder{groups: map[string]config.NodeGroup{}, now: now, log: log, capacity: capacity}
	for _, g := range groups {
		r.groups[g.Name] = g
	}
	return r
}

// Handle records one decision per node group and one per ignored alert.
func (r *Recorder) Handle(_ context.Context, n alert.Notification) ([]decision.Record, error) {
	now := r.now()
	var out []decision.Record
	for _, group := range n.Groups() {
		out = append(out, r.decide(now, n, group))
	}
	for _, ig := range n.Ignored {
		out = append(out, decision.Record{
			ID: newID(), Time: now, NodeGroup: ig.NodeGroup, Action: "none", Outcome: decision.Ignored,
			Reasons: []string{fmt.Sprintf("%s: alert %s (%s)", ig.Reason, ig.AlertName, ig.Detail)},
			DryRun:  true, GroupKey: n.GroupKey,
		})
	}
	r.mu.Lock()
	r.records = append(r.records, out...)
	if over := len(r.records) - r.capacity; over > 0 {
		r.records = slices.Delete(r.records, 0, over)
	}
	r.mu.Unlock()
	for _, rec := range out {
		r.log.Info("decision", "nodegroup", rec.NodeGroup, "action", rec.Action, "outcome", string(rec.Outcome),
			"count", rec.Count, "reason", rec.Reasons, "dry_run", true)
	}
	return out, nil
}

func (r *Recorder) decide(now time.Time, n alert.Notification, group string) decision.Record {
	g := r.groups[group]
	var up, down []alert.Signal
	for _, s := range n.Signals {
		if s.NodeGroup != group {
			continue
		}
		if s.Action == alert.ScaleUp {
			up = append(up, s)
		} else {
			down = append(down, s)
		}
	}
	rec := decision.Record{ID: newID(), Time: now, NodeGroup: group, Outcome: decision.DryRun, DryRun: true, GroupKey: n.GroupKey}
	switch {
	case len(up) > 0:
		rec.Action, rec.Count, rec.Signals = string(alert.ScaleUp), g.ScaleUpStep.Normal, up
		urgency := alert.Normal
		for _, s := range up {
			if s.Urgency == alert.High {
				urgency, rec.Count = alert.High, g.ScaleUpStep.High
			}
		}
		rec.Reasons = append(rec.Reasons, fmt.Sprintf("dry_run: would scale_up by %d (urgency %s, alerts %s)", rec.Count, urgency, names(up)))
		if len(down) > 0 {
			rec.Reasons = append(rec.Reasons, "scale_up_wins: scale_down alerts "+names(down)+" dropped")
		}
	default:
		rec.Action, rec.Count, rec.Signals = string(alert.ScaleDown), g.ScaleDownStep, down
		rec.Reasons = append(rec.Reasons, fmt.Sprintf("dry_run: would scale_down by %d (alerts %s)", rec.Count, names(down)))
	}
	return rec
}

// Decisions lists the recent records, newest first; group "" means all.
func (r *Recorder) Decisions(_ context.Context, group string, limit int) ([]decision.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []decision.Record
	for i := len(r.records) - 1; i >= 0 && len(out) < limit; i-- {
		if group == "" || r.records[i].NodeGroup == group {
			out = append(out, r.records[i])
		}
	}
	return out, nil
}

func names(ss []alert.Signal) string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s.AlertName) {
			out = append(out, s.AlertName)
		}
	}
	return fmt.Sprint(out)
}
