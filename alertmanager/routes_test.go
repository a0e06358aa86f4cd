// Package alertmanager_test checks alertmanager.yml with the real amtool
// (pinned, from the tool cache: `make tools`) and renders its templates with
// Alertmanager's own template package.
package alertmanager_test

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/rules"
)

const configFile = "alertmanager.yml"

func amtool(t *testing.T) string {
	t.Helper()
	p, err := stack.ToolPath("amtool")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckConfig(t *testing.T) {
	out, err := exec.Command(amtool(t), "check-config", configFile).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	// One SUCCESS for the config, one for parsing its templates.
	if strings.Count(string(out), "SUCCESS") != 2 || !strings.Contains(string(out), "2 templates") || !strings.Contains(string(out), "5 receivers") {
		t.Fatalf("amtool check-config did not check the config and its templates:\n%s", out)
	}
}

// wantReceivers is the routing contract: scaling alerts reach the webhook
// and then Slack by severity; people-only alerts reach Slack by severity,
// critical ones SNS first. In the routing tree's order, as amtool prints.
func wantReceivers(labels map[string]string) []string {
	var rs []string
	if _, ok := labels[alert.LabelAction]; ok {
		rs = append(rs, "smartscale")
	}
	switch labels[alert.LabelSeverity] {
	case "critical":
		rs = append(rs, "sns-critical", "slack-critical")
	case "info":
		rs = append(rs, "slack-info")
	default:
		rs = append(rs, "slack-warning")
	}
	return rs
}

// routesTest runs `amtool config routes test` for a label set and asserts
// the receivers with --verify.receivers (amtool exits 1 on a mismatch).
func routesTest(t *testing.T, labels map[string]string, want []string) {
	t.Helper()
	args := []string{"config", "routes", "test", "--config.file=" + configFile, "--verify.receivers=" + strings.Join(want, ",")}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		args = append(args, k+"="+labels[k])
	}
	out, err := exec.Command(amtool(t), args...).CombinedOutput()
	if err != nil {
		t.Errorf("%v routes to %s, want %s (amtool: %v)", labels, strings.TrimSpace(string(out)), strings.Join(want, ","), err)
	}
}

func TestRoutesEveryAlertInRules(t *testing.T) {
	ms, err := rules.LoadDir("../rules")
	if err != nil {
		t.Fatal(err)
	}
	alerts := rules.Alerts(ms)
	scaling, people := 0, 0
	for _, a := range alerts {
		labels := maps.Clone(a.Labels)
		labels["alertname"] = a.Name
		want := wantReceivers(labels)
		if _, ok := labels[alert.LabelAction]; ok {
			scaling++
		} else {
			people++
		}
		t.Run(a.Name, func(t *testing.T) {
			t.Parallel()
			routesTest(t, labels, want)
		})
	}
	if scaling == 0 || people == 0 {
		t.Fatalf("rules/ has %d scaling and %d people-only alerts; want both kinds", scaling, people)
	}
	t.Logf("%d scaling and %d people-only alerts routed", scaling, people)
}

// Routing cases no rule of rules/ covers today but the tree promises.
func TestRoutesContractCases(t *testing.T) {
	for _, c := range []struct {
		labels map[string]string
		want   []string
	}{
		// A scaling alert marked critical also pages through SNS.
		{map[string]string{"alertname": "ScaleUpCustom", "smartscale_action": "scale_up", "smartscale_nodegroup": "gpu", "smartscale_urgency": "high", "severity": "critical"},
			[]string{"smartscale", "sns-critical", "slack-critical"}},
		// An alert without severity still reaches people.
		{map[string]string{"alertname": "SomethingElse"}, []string{"slack-warning"}},
		// A misspelt action is not a scaling alert: people see it, the webhook does not.
		{map[string]string{"alertname": "ScaleUpTypo", "smartscale_action": "scaleup", "severity": "info"}, []string{"slack-info"}},
	} {
		routesTest(t, c.labels, c.want)
	}
}
