package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/smartscale/smartscale/internal/alert"
)

// Decide turns the signals of one notification into a plan for in.Group.
// It reads nothing but in: the same input always yields the same plan.
func Decide(in Input) Plan {
	p := Plan{NodeGroup: in.Group.Name, Action: None}
	var ups, downs []alert.Signal
	for _, s := range in.Signals {
		if s.NodeGroup != in.Group.Name {
			continue
		}
		switch s.Action {
		case alert.ScaleUp:
			ups = append(ups, s)
		case alert.ScaleDown:
			downs = append(downs, s)
		}
	}
	if len(ups) == 0 && len(downs) == 0 {
		p.add(Reason{Code: CodeNoSignal, Detail: "no scale_up or scale_down signal for node group " + in.Group.Name})
		return p
	}
	if len(ups) > 0 && len(downs) > 0 {
		p.add(Reason{Code: CodeScaleUpWins, Detail: fmt.Sprintf("scale-down signal %s dropped: scale-up signal %s is firing",
			alertNames(downs), alertNames(ups))})
	}
	if inFlight(&p, &in) {
		return p
	}
	if len(ups) > 0 {
		decideUp(&p, &in, ups)
		return p
	}
	decideDown(&p, &in)
	return p
}

func (p *Plan) add(r Reason) { p.Reasons = append(p.Reasons, r) }

// inFlight adds a reason per in-flight operation and reports whether there
// was any: no decision is taken while one is running (rule 4).
func inFlight(p *Plan, in *Input) bool {
	for _, op := range in.State.InFlight {
		d := op.Kind + " " + op.ID
		switch {
		case op.Node != "":
			d += " on node " + op.Node
		case op.Count > 0:
			d += " of " + plural(op.Count, "node")
		}
		p.add(Reason{Code: CodeOperationInFlight, Node: op.Node, Detail: d})
	}
	return len(in.State.InFlight) > 0
}

// alertNames lists the signals' alert names, sorted and without repeats.
func alertNames(ss []alert.Signal) string {
	names := make([]string, 0, len(ss))
	for _, s := range ss {
		n := s.AlertName
		if n == "" {
			n = "(unnamed)"
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ", ")
}

// cooldown adds a cooldown_active reason when now is before last+d; what
// names the gap and event the action that started it.
func cooldown(p *Plan, now, last time.Time, d time.Duration, what, event string) bool {
	if last.IsZero() || d <= 0 {
		return false
	}
	until := last.Add(d)
	if !now.Before(until) {
		return false
	}
	p.add(Reason{Code: CodeCooldownActive, Until: until,
		Detail: fmt.Sprintf("%s %s after the %s at %s", what, d, event, last.UTC().Format(time.RFC3339))})
	return true
}

func decideUp(p *Plan, in *Input, ups []alert.Signal) {
	if cooldown(p, in.Now, in.State.LastScaleUpAt, in.Group.Cooldowns.ScaleUp.D(), "scale-up cooldown", "scale-up") {
		return
	}
	step, urgency := in.Group.ScaleUpStep.Normal, alert.Normal
	for _, s := range ups {
		if s.Urgency == alert.High {
			step, urgency = in.Group.ScaleUpStep.High, alert.High
			break
		}
	}
	step = max(step, 1)
	g := newGroup(in, nil)
	if len(g.zones) == 0 {
		p.add(Reason{Code: CodeNoZones, Detail: "node group " + in.Group.Name + " has no zones configured"})
		return
	}
	room := in.Group.MaxNodes - g.total
	if room <= 0 {
		p.add(Reason{Code: CodeAtMax, Detail: fmt.Sprintf("%s, maxNodes=%d", g.describe(), in.Group.MaxNodes)})
		return
	}
	p.add(Reason{Code: CodeStep, Detail: fmt.Sprintf("%s for %s urgency (%s)", plural(step, "node"), urgency, alertNames(ups))})
	sz := size(in, g, room)
	p.Reasons = append(p.Reasons, sz.reasons...)
	plan := placement{g: g, room: room, want: max(step, in.Group.MinNodes-g.total), classes: sz.classes}
	if g.total < in.Group.MinNodes {
		p.add(Reason{Code: CodeBelowMin, Detail: fmt.Sprintf("%s, minNodes=%d", g.describe(), in.Group.MinNodes)})
	}
	up := plan.place(p)
	p.ScaleUp = &up
	p.Action = Up
}
