package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Label names of the contract between rules/ and the webhook.
const (
	LabelAction    = "smartscale_action"
	LabelNodeGroup = "smartscale_nodegroup"
	LabelUrgency   = "smartscale_urgency"
	LabelSeverity  = "severity"
	LabelAlertName = "alertname"
)

// DefaultNodeGroup is the group an alert without smartscale_nodegroup is about.
const DefaultNodeGroup = "workers"

// Action is the direction a signal asks for.
type Action string

// The actions of the label contract.
const (
	ScaleUp   Action = "scale_up"
	ScaleDown Action = "scale_down"
)

// Urgency sets the scale-up step: normal adds the group's normal step, high
// its high step.
type Urgency string

// The urgencies of the label contract.
const (
	Normal Urgency = "normal"
	High   Urgency = "high"
)

// Reasons an alert is ignored rather than turned into a signal; stable,
// they are metric label values and appear in /v1/decisions.
const (
	ReasonResolved         = "resolved"
	ReasonNoAction         = "no_action_label"
	ReasonUnknownAction    = "unknown_action"
	ReasonUnknownUrgency   = "unknown_urgency"
	ReasonUnknownNodeGroup = "unknown_nodegroup"
)

// IgnoreReasons lists every reason, for pre-registering metric series.
var IgnoreReasons = []string{ReasonResolved, ReasonNoAction, ReasonUnknownAction, ReasonUnknownUrgency, ReasonUnknownNodeGroup}

// Annotations travel from the rule into logs and notifications.
type Annotations struct {
	Summary      string `json:"summary,omitempty"`
	Description  string `json:"description,omitempty"`
	RunbookURL   string `json:"runbookURL,omitempty"`
	DashboardURL string `json:"dashboardURL,omitempty"`
}

// Signal is one firing alert that asks a node group to scale.
type Signal struct {
	NodeGroup   string      `json:"nodegroup"`
	Action      Action      `json:"action"`
	Urgency     Urgency     `json:"urgency"`
	AlertName   string      `json:"alertname"`
	Severity    string      `json:"severity,omitempty"`
	Fingerprint string      `json:"fingerprint"`
	StartsAt    time.Time   `json:"startsAt"`
	Status      string      `json:"status"`
	Annotations Annotations `json:"annotations"`
}

// Ignored is an alert that became no signal, and why.
type Ignored struct {
	AlertName   string `json:"alertname"`
	Fingerprint string `json:"fingerprint"`
	NodeGroup   string `json:"nodegroup,omitempty"`
	Reason      string `json:"reason"`
	Detail      string `json:"detail,omitempty"`
}

// Notification is a decoded webhook delivery after the label contract:
// the alerts that ask for scaling, and the ones that were ignored.
type Notification struct {
	Receiver        string    `json:"receiver"`
	GroupKey        string    `json:"groupKey"`
	Status          string    `json:"status"`
	ExternalURL     string    `json:"externalURL,omitempty"`
	TruncatedAlerts uint64    `json:"truncatedAlerts,omitempty"`
	Signals         []Signal  `json:"signals"`
	Ignored         []Ignored `json:"ignored"`
}

// Contract maps a decoded message to signals. KnownGroup reports whether a
// node group is configured.
func Contract(m *Message, knownGroup func(string) bool) Notification {
	n := Notification{
		Receiver:        m.Receiver,
		GroupKey:        m.GroupKey,
		Status:          m.Status,
		ExternalURL:     m.ExternalURL,
		TruncatedAlerts: m.TruncatedAlerts,
		Signals:         []Signal{},
		Ignored:         []Ignored{},
	}
	for _, a := range m.Alerts {
		name := a.Labels[LabelAlertName]
		ignore := func(group, reason, detail string) {
			n.Ignored = append(n.Ignored, Ignored{AlertName: name, Fingerprint: a.Fingerprint, NodeGroup: group, Reason: reason, Detail: detail})
		}
		action, ok := a.Labels[LabelAction]
		if !ok || action == "" {
			ignore("", ReasonNoAction, "alert has no "+LabelAction+" label")
			continue
		}
		group := a.Labels[LabelNodeGroup]
		if group == "" {
			group = DefaultNodeGroup
		}
		if a.Status == "resolved" {
			ignore(group, ReasonResolved, "a resolved alert never scales")
			continue
		}
		if Action(action) != ScaleUp && Action(action) != ScaleDown {
			ignore(group, ReasonUnknownAction, LabelAction+"="+action+" (want scale_up or scale_down)")
			continue
		}
		urgency := Urgency(a.Labels[LabelUrgency])
		if urgency == "" {
			urgency = Normal
		}
		if urgency != Normal && urgency != High {
			ignore(group, ReasonUnknownUrgency, LabelUrgency+"="+string(urgency)+" (want normal or high)")
			continue
		}
		if !knownGroup(group) {
			ignore(group, ReasonUnknownNodeGroup, "node group "+group+" is not configured")
			continue
		}
		n.Signals = append(n.Signals, Signal{
			NodeGroup:   group,
			Action:      Action(action),
			Urgency:     urgency,
			AlertName:   name,
			Severity:    a.Labels[LabelSeverity],
			Fingerprint: a.Fingerprint,
			StartsAt:    a.StartsAt,
			Status:      a.Status,
			Annotations: Annotations{
				Summary:      a.Annotations["summary"],
				Description:  a.Annotations["description"],
				RunbookURL:   a.Annotations["runbook_url"],
				DashboardURL: a.Annotations["dashboard_url"],
			},
		})
	}
	return n
}

// DedupeKey identifies what a notification asks for: its group key and the
// set of firing alerts (fingerprint and start). Alertmanager re-sends the
// same set on every repeat_interval and each HA replica sends its own copy;
// all of those share this key, while a new firing of the same alert (a new
// startsAt) gets a new one.
func (n Notification) DedupeKey() string {
	parts := make([]string, 0, len(n.Signals))
	for _, s := range n.Signals {
		parts = append(parts, s.Fingerprint+"@"+s.StartsAt.UTC().Format(time.RFC3339Nano))
	}
	slices.Sort(parts)
	h := sha256.New()
	h.Write([]byte(n.GroupKey))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(parts, ",")))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Groups returns the node groups the signals are about, sorted.
func (n Notification) Groups() []string {
	var gs []string
	for _, s := range n.Signals {
		if !slices.Contains(gs, s.NodeGroup) {
			gs = append(gs, s.NodeGroup)
		}
	}
	slices.Sort(gs)
	return gs
}
