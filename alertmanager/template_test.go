package alertmanager_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"gopkg.in/yaml.v3"
)

// receiverFields reads the templated fields of one receiver's Slack or SNS
// config from alertmanager.yml, so the test renders exactly what the
// config asks for.
func receiverFields(t *testing.T, receiver, kind string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Receivers []map[string]any `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.Receivers {
		if r["name"] != receiver {
			continue
		}
		list, _ := r[kind].([]any)
		if len(list) != 1 {
			t.Fatalf("receiver %s: want one %s entry, got %v", receiver, kind, r[kind])
		}
		out := map[string]string{}
		for k, v := range list[0].(map[string]any) {
			if s, ok := v.(string); ok && strings.Contains(s, "{{") {
				out[k] = s
			}
		}
		return out
	}
	t.Fatalf("receiver %s not in %s", receiver, configFile)
	return nil
}

func render(t *testing.T, fields map[string]string, data *template.Data) map[string]string {
	t.Helper()
	tmpl, err := template.FromGlobs([]string{"templates/*.tmpl"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, text := range fields {
		s, err := tmpl.ExecuteTextString(text, data)
		if err != nil {
			t.Fatalf("render %s: %v", k, err)
		}
		out[k] = s
	}
	return out
}

func notification(status string, labels, annotations template.KV) *template.Data {
	a := template.Alert{
		Status:       status,
		Labels:       labels,
		Annotations:  annotations,
		StartsAt:     time.Date(2026, 3, 6, 9, 0, 0, 0, time.UTC),
		GeneratorURL: "http://prometheus:9090/graph?g0.expr=x",
		Fingerprint:  "0123456789abcdef",
	}
	group := template.KV{"alertname": labels["alertname"]}
	if ng, ok := labels["smartscale_nodegroup"]; ok {
		group["smartscale_nodegroup"] = ng
	}
	return &template.Data{
		Receiver:          "slack",
		Status:            status,
		Alerts:            template.Alerts{a},
		GroupLabels:       group,
		CommonLabels:      labels,
		CommonAnnotations: annotations,
		ExternalURL:       "http://alertmanager:9093",
	}
}

func mustContain(t *testing.T, field, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", field, w, got)
		}
	}
}

var cpuHigh = template.KV{
	"alertname":            "ScaleUpCPUHigh",
	"nodegroup":            "workers",
	"smartscale_action":    "scale_up",
	"smartscale_nodegroup": "workers",
	"smartscale_urgency":   "high",
	"severity":             "warning",
}

var cpuHighAnnotations = template.KV{
	"summary":       "Node group workers CPU above 90% for 3 minutes",
	"description":   "Node group workers has used 95% of its CPU for at least 3 minutes.",
	"value":         "95%",
	"runbook_url":   "https://github.com/smartscale/smartscale/blob/main/rules/runbooks.md#scaleupcpuhigh",
	"dashboard_url": "https://grafana.example.com/d/smartscale-cluster/cluster-overview?var-nodegroup=workers",
}

func TestSlackScaleUpFiring(t *testing.T) {
	got := render(t, receiverFields(t, "slack-warning", "slack_configs"), notification("firing", cpuHigh, cpuHighAnnotations))
	mustContain(t, "title", got["title"], ":warning:", "[FIRING:1] ScaleUpCPUHigh", "· workers", ":arrow_double_up: scale up x2")
	mustContain(t, "text", got["text"],
		"*Node group workers CPU above 90% for 3 minutes*",
		"*Value:* `95%`",
		"Node group workers has used 95% of its CPU",
		":bulb: SmartScale adds two nodes to workers",
		"amtool silence add smartscale_action=scale_up smartscale_nodegroup=workers",
		"<https://grafana.example.com/d/smartscale-cluster/cluster-overview?var-nodegroup=workers|:bar_chart: Grafana>",
		"<https://github.com/smartscale/smartscale/blob/main/rules/runbooks.md#scaleupcpuhigh|:book: Runbook>",
		"<http://prometheus:9090/graph?g0.expr=x|:mag: Query>")
	if got["color"] != "warning" {
		t.Errorf("color %q, want warning", got["color"])
	}
	if got["title_link"] != cpuHighAnnotations["dashboard_url"] {
		t.Errorf("title_link %q, want the dashboard", got["title_link"])
	}
	mustContain(t, "fallback", got["fallback"], "[FIRING] ScaleUpCPUHigh (workers): Node group workers CPU above 90%")
}

func TestSlackResolved(t *testing.T) {
	got := render(t, receiverFields(t, "slack-warning", "slack_configs"), notification("resolved", cpuHigh, cpuHighAnnotations))
	mustContain(t, "title", got["title"], ":white_check_mark:", "[RESOLVED] ScaleUpCPUHigh")
	mustContain(t, "text", got["text"], "(resolved)", ":bulb: Nothing to do: the condition has cleared.")
	if got["color"] != "good" {
		t.Errorf("color %q, want good", got["color"])
	}
}

func TestSlackScaleDownInfo(t *testing.T) {
	labels := template.KV{"alertname": "ScaleDownIdle", "smartscale_action": "scale_down", "smartscale_nodegroup": "workers", "smartscale_urgency": "normal", "severity": "info"}
	ann := template.KV{"summary": "Node group workers idle for 10 minutes", "description": "Idle.", "value": "12% CPU", "runbook_url": "https://r.example/x", "dashboard_url": "https://d.example/y"}
	got := render(t, receiverFields(t, "slack-info", "slack_configs"), notification("firing", labels, ann))
	mustContain(t, "title", got["title"], ":information_source:", ":arrow_down_small: scale down")
	mustContain(t, "text", got["text"], "*Value:* `12% CPU`", "SmartScale drains and removes one node of workers",
		"amtool silence add smartscale_action=scale_down smartscale_nodegroup=workers --duration=2h")
	if got["color"] != "#439FE0" {
		t.Errorf("color %q, want #439FE0", got["color"])
	}
}

func TestSlackAndSNSPeopleOnlyCritical(t *testing.T) {
	labels := template.KV{"alertname": "NotifyWebhookUnavailable", "severity": "critical"}
	ann := template.KV{"summary": "No SmartScale replica is up", "description": "Nothing acts on scaling alerts.", "value": "0 replicas up",
		"runbook_url": "https://github.com/smartscale/smartscale/blob/main/rules/runbooks.md#notifywebhookunavailable", "dashboard_url": "https://grafana.example.com/d/smartscale-autoscaler/autoscaler-performance"}
	data := notification("firing", labels, ann)

	slack := render(t, receiverFields(t, "slack-critical", "slack_configs"), data)
	mustContain(t, "title", slack["title"], ":rotating_light:", "[FIRING:1] NotifyWebhookUnavailable")
	if strings.Contains(slack["title"], "scale") {
		t.Errorf("a people-only alert's title names a scaling action: %s", slack["title"])
	}
	mustContain(t, "text", slack["text"], "Act now: SmartScale cannot fix this by itself. Follow the runbook.", "*Value:* `0 replicas up`")
	if slack["color"] != "danger" {
		t.Errorf("color %q, want danger", slack["color"])
	}

	sns := render(t, receiverFields(t, "sns-critical", "sns_configs"), data)
	if sns["subject"] != "[FIRING] NotifyWebhookUnavailable" {
		t.Errorf("SNS subject %q", sns["subject"])
	}
	mustContain(t, "message", sns["message"], "No SmartScale replica is up", "Value: 0 replicas up",
		"Runbook: https://github.com/smartscale/smartscale/blob/main/rules/runbooks.md#notifywebhookunavailable",
		"Dashboard: https://grafana.example.com/d/smartscale-autoscaler/autoscaler-performance")
	if strings.ContainsAny(sns["subject"]+sns["message"], "*`<>") {
		t.Errorf("SNS text carries Slack markup:\n%s\n%s", sns["subject"], sns["message"])
	}
}
