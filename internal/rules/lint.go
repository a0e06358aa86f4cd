package rules

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/smartscale/smartscale/internal/alert"
)

// RequiredAnnotations are on every alert: they travel into the webhook's logs and
// decisions and into the Slack and SNS notifications.
var RequiredAnnotations = []string{"summary", "description", "runbook_url", "dashboard_url"}

// Severities people's routing knows.
var Severities = []string{"info", "warning", "critical"}

// contractLabels are the labels an alert may carry without LintOptions.
var contractLabels = []string{alert.LabelAction, alert.LabelNodeGroup, alert.LabelUrgency, alert.LabelSeverity}

var (
	// The node group name rule of internal/config (a DNS label).
	nodeGroupPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	alertNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	// level:metric:operations; the colon keeps recorded names apart from
	// exporters' metric names.
	recordPattern   = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*$`)
	templatePattern = regexp.MustCompile(`\{\{.*?\}\}`)
)

// LintOptions widens the contract.
type LintOptions struct {
	// AllowLabels are extra alert label names to accept (e.g. "team").
	AllowLabels []string
}

// Violation is one broken rule of the contract, named and located.
type Violation struct {
	Path    string
	Line    int
	Group   string
	Rule    string // "alert X" or "record Y"
	Problem string
}

func (v Violation) String() string {
	loc := v.Path
	if v.Line > 0 {
		loc = fmt.Sprintf("%s:%d", v.Path, v.Line)
	}
	return fmt.Sprintf("%s: %s (group %s): %s", loc, v.Rule, v.Group, v.Problem)
}

// Lint checks every rule of the manifests and returns the violations, in
// file order; none means the rules keep the contract:
//   - every rule is either an alert or a recording rule, with an expr;
//     recorded names follow level:metric:operations;
//   - every alert has a severity (info, warning, critical), the annotations
//     summary, description, runbook_url and dashboard_url (the two URLs
//     absolute http(s)), and no label outside the contract;
//   - an alert with smartscale_action (a scaling alert) has a valid action,
//     an explicit smartscale_urgency (normal or high; scale_down only
//     normal) and smartscale_nodegroup (a node group name), all literal,
//     and a non-zero for: (a scaling decision on a single evaluation would
//     follow every spike);
//   - a people-only alert has no smartscale_urgency (it would mean nothing);
//   - group names are unique, and no scaling alert name repeats for the same
//     node group.
func Lint(ms []Manifest, opts LintOptions) []Violation {
	allowed := slices.Concat(contractLabels, opts.AllowLabels)
	var out []Violation
	groups := map[string]string{}
	scaling := map[[2]string]string{}
	for _, m := range ms {
		for gi, g := range m.Rule.Spec.Groups {
			if prev, dup := groups[g.Name]; dup {
				out = append(out, Violation{Path: m.Path, Group: g.Name, Rule: "group", Problem: "group name already used in " + prev})
			}
			groups[g.Name] = m.Path
			for ri, r := range g.Rules {
				v := linter{path: m.Path, line: m.Line(gi, ri), group: g.Name}
				switch {
				case r.Alert != "" && r.Record != "":
					v.rule = "rule " + r.Alert + "/" + r.Record
					v.fail("has both alert and record")
				case r.Record != "":
					v.rule = "record " + r.Record
					v.record(r.Record, r.For != nil, len(r.Annotations) > 0)
				case r.Alert != "":
					v.rule = "alert " + r.Alert
					a := newAlert(m.Path, v.line, g, r)
					v.alert(a, allowed)
					if ng, ok := a.Labels[alert.LabelNodeGroup]; ok && a.Labels[alert.LabelAction] != "" {
						key := [2]string{a.Name, ng}
						if prev, dup := scaling[key]; dup {
							v.fail(fmt.Sprintf("alert %s for node group %s is already defined at %s", a.Name, ng, prev))
						}
						scaling[key] = fmt.Sprintf("%s:%d", m.Path, v.line)
					}
				default:
					v.rule = fmt.Sprintf("rule #%d", ri+1)
					v.fail("has neither alert nor record")
				}
				if strings.TrimSpace(r.Expr.String()) == "" {
					v.fail("expr is empty")
				}
				out = append(out, v.found...)
			}
		}
	}
	return out
}

// linter collects the violations of one rule.
type linter struct {
	path, group, rule string
	line              int
	found             []Violation
}

func (l *linter) fail(problem string) {
	l.found = append(l.found, Violation{Path: l.path, Line: l.line, Group: l.group, Rule: l.rule, Problem: problem})
}

func (l *linter) record(name string, hasFor, hasAnnotations bool) {
	if !recordPattern.MatchString(name) {
		l.fail("recorded name should be level:metric:operations (e.g. nodegroup:node_cpu_utilisation:ratio)")
	}
	if hasFor {
		l.fail("a recording rule takes no for:")
	}
	if hasAnnotations {
		l.fail("a recording rule takes no annotations")
	}
}

func (l *linter) alert(a Alert, allowed []string) {
	if !alertNamePattern.MatchString(a.Name) {
		l.fail("alert name should be letters, digits and _ (e.g. ScaleUpCPU)")
	}
	var names []string
	for k := range a.Labels {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !slices.Contains(allowed, k) {
			l.fail(fmt.Sprintf("unknown label %s (the contract knows %s)", k, strings.Join(allowed, ", ")))
		}
	}

	if sev, ok := a.Labels[alert.LabelSeverity]; !ok {
		l.fail("missing label severity (one of " + strings.Join(Severities, ", ") + ")")
	} else if !slices.Contains(Severities, sev) {
		l.fail(fmt.Sprintf("severity %q: want one of %s", sev, strings.Join(Severities, ", ")))
	}

	for _, k := range RequiredAnnotations {
		if strings.TrimSpace(a.Annotations[k]) == "" {
			l.fail("missing annotation " + k)
		}
	}
	for _, k := range []string{"runbook_url", "dashboard_url"} {
		if v := a.Annotations[k]; v != "" && !absoluteURL(v) {
			l.fail(fmt.Sprintf("annotation %s %q is not an absolute http(s) URL", k, v))
		}
	}

	forValid := false
	var forDur model.Duration
	if a.For != "" {
		d, err := model.ParseDuration(a.For)
		if err != nil {
			l.fail(fmt.Sprintf("for: %q: %v", a.For, err))
		}
		forDur, forValid = d, err == nil
	}

	action, isScaling := a.Labels[alert.LabelAction]
	if !isScaling {
		if _, ok := a.Labels[alert.LabelUrgency]; ok {
			l.fail("smartscale_urgency without smartscale_action: a people-only alert has no scaling step")
		}
		if ng, ok := a.Labels[alert.LabelNodeGroup]; ok && !nodeGroupPattern.MatchString(ng) {
			l.fail(fmt.Sprintf("smartscale_nodegroup %q is not a node group name", ng))
		}
		return
	}

	switch alert.Action(action) {
	case alert.ScaleUp, alert.ScaleDown:
	default:
		l.fail(fmt.Sprintf("smartscale_action %q: want %s or %s", action, alert.ScaleUp, alert.ScaleDown))
	}
	urgency, ok := a.Labels[alert.LabelUrgency]
	switch {
	case !ok:
		l.fail("missing label smartscale_urgency (normal or high)")
	case alert.Urgency(urgency) != alert.Normal && alert.Urgency(urgency) != alert.High:
		l.fail(fmt.Sprintf("smartscale_urgency %q: want %s or %s", urgency, alert.Normal, alert.High))
	case alert.Action(action) == alert.ScaleDown && alert.Urgency(urgency) == alert.High:
		l.fail("smartscale_urgency high on scale_down: urgency sets the scale-up step only; use normal")
	}
	ng, ok := a.Labels[alert.LabelNodeGroup]
	switch {
	case !ok:
		l.fail("missing label smartscale_nodegroup (the node group to scale, e.g. " + alert.DefaultNodeGroup + ")")
	case !nodeGroupPattern.MatchString(ng):
		l.fail(fmt.Sprintf("smartscale_nodegroup %q is not a node group name (a DNS label, written literally)", ng))
	}
	switch {
	case a.For == "":
		l.fail("missing for: a scaling alert must hold for a duration before it scales")
	case forValid && forDur == 0:
		l.fail("for: 0 scales on a single evaluation: give it a duration")
	}
}

// absoluteURL reports whether s, with any {{ template }} blanked, is an
// absolute http or https URL.
func absoluteURL(s string) bool {
	u, err := url.Parse(templatePattern.ReplaceAllString(s, "x"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
