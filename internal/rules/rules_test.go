package rules_test

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/rules"
)

const rulesDir = "../../rules"

func TestRepositoryRulesPassLint(t *testing.T) {
	ms, err := rules.LoadDir(rulesDir)
	if err != nil {
		t.Fatal(err)
	}
	if vs := rules.Lint(ms, rules.LintOptions{}); len(vs) > 0 {
		for _, v := range vs {
			t.Error(v)
		}
	}
}

// The thresholds, as the rules in Git state them. A change to a
// threshold or for: must be deliberate: it changes this table too.
func TestRepositoryRulesKeepTheSeedThresholds(t *testing.T) {
	ms, err := rules.LoadDir(rulesDir)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]rules.Alert{}
	for _, a := range rules.Alerts(ms) {
		byName[a.Name] = a
	}
	want := []struct {
		alert, exprHas, forDur, action, urgency string
	}{
		{"ScaleUpCPU", "nodegroup:node_cpu_utilisation:ratio{nodegroup=\"workers\"} > 0.70", "3m", "scale_up", "normal"},
		{"ScaleUpCPUHigh", "nodegroup:node_cpu_utilisation:ratio{nodegroup=\"workers\"} > 0.90", "3m", "scale_up", "high"},
		{"ScaleUpPendingPods", "nodegroup:kube_pod_unschedulable:count{nodegroup=\"workers\"} > 0", "3m", "scale_up", "normal"},
		{"ScaleUpPendingPodsHigh", "nodegroup:kube_pod_unschedulable:count{nodegroup=\"workers\"} > 5", "3m", "scale_up", "high"},
		{"ScaleUpMemory", "nodegroup:node_memory_utilisation:ratio{nodegroup=\"workers\"} > 0.75", "3m", "scale_up", "normal"},
		{"ScaleDownIdle", "< 0.30", "10m", "scale_down", "normal"},
		{"ScaleUpQueueDepth", "queue:rabbitmq_queue_messages:sum > 1000", "3m", "scale_up", "normal"},
		{"ScaleUpLatency", "job:http_request_duration_seconds:p95_rate5m > 2", "3m", "scale_up", "high"},
		{"ScaleUpErrorRate", "job:http_requests_5xx:ratio_rate5m > 0.05", "3m", "scale_up", "normal"},
		{"ScaleUpPredictedDailyPeak", "> 0.70", "2m", "scale_up", "normal"},
		{"ScaleUpPredictedWeeklyPeak", "> 0.70", "2m", "scale_up", "normal"},
		{"ScaleUpPredictedTrend", "> 0.90", "2m", "scale_up", "normal"},
	}
	for _, w := range want {
		a, ok := byName[w.alert]
		if !ok {
			t.Errorf("alert %s missing from rules/", w.alert)
			continue
		}
		if !strings.Contains(a.Expr, w.exprHas) || a.For != w.forDur ||
			a.Labels[alert.LabelAction] != w.action || a.Labels[alert.LabelUrgency] != w.urgency {
			t.Errorf("%s: expr %q for %q action %q urgency %q; want expr containing %q, for %s, %s, %s",
				w.alert, a.Expr, a.For, a.Labels[alert.LabelAction], a.Labels[alert.LabelUrgency], w.exprHas, w.forDur, w.action, w.urgency)
		}
	}
	// The scale-down alert is one expression over the three legs.
	down := byName["ScaleDownIdle"].Expr
	for _, leg := range []string{"node_cpu_utilisation:ratio{nodegroup=\"workers\"} < 0.30", "kube_pod_unschedulable:count{nodegroup=\"workers\"} == 0", "node_memory_utilisation:ratio{nodegroup=\"workers\"} < 0.50"} {
		if !strings.Contains(down, leg) {
			t.Errorf("ScaleDownIdle lacks leg %q: %s", leg, down)
		}
	}
	// People-only alerts never reach the webhook.
	for _, name := range []string{"NotifyAtMaxCapacity", "NotifyScalingFailed", "NotifyWebhookDown", "NotifyWebhookUnavailable", "NotifyNodeNotReady", "NotifyCostOverBudget"} {
		a, ok := byName[name]
		if !ok {
			t.Errorf("people-only alert %s missing", name)
			continue
		}
		if _, has := a.Labels[alert.LabelAction]; has {
			t.Errorf("%s carries %s", name, alert.LabelAction)
		}
	}
}

// fixture reads the "# want:" and "# rule:" header lines of a lint fixture.
func fixture(t *testing.T, path string) (want, rule string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			want = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "# rule: "); ok {
			rule = v
		}
	}
	if want == "" || rule == "" {
		t.Fatalf("%s: fixture needs '# want:' and '# rule:' header lines", path)
	}
	return want, rule
}

func TestLintFixturesFailNamingTheRule(t *testing.T) {
	paths, err := filepath.Glob("testdata/lint/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no lint fixtures: %v", err)
	}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".yaml"), func(t *testing.T) {
			want, rule := fixture(t, p)
			ms, err := rules.LoadFiles(p)
			if err != nil {
				t.Fatal(err)
			}
			vs := rules.Lint(ms, rules.LintOptions{})
			// One fixture, one kind of violation: anything else means the
			// fixture (or lint) tests more than it says.
			if len(vs) != 1 {
				t.Fatalf("got %d violations, want 1: %v", len(vs), vs)
			}
			v := vs[0]
			if v.Rule != rule || !strings.Contains(v.Problem, want) {
				t.Errorf("violation %q: want rule %q and a problem containing %q", v, rule, want)
			}
			s := v.String()
			if !strings.Contains(s, p) || !strings.Contains(s, rule) || v.Line == 0 {
				t.Errorf("violation %q should name the file, line and rule", s)
			}
		})
	}
}

func TestLintAllowLabel(t *testing.T) {
	ms, err := rules.LoadFiles("testdata/lint/unknown-label.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if vs := rules.Lint(ms, rules.LintOptions{AllowLabels: []string{"team"}}); len(vs) != 0 {
		t.Errorf("with team allowed: %v", vs)
	}
}

func TestLoadRejectsUnknownFieldsAndKinds(t *testing.T) {
	for file, want := range map[string]string{
		"typo-field.yaml": `unknown field "anotations"`,
		"wrong-kind.yaml": "kind \"ServiceMonitor\"",
	} {
		_, err := rules.LoadFiles(filepath.Join("testdata/load", file))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: err %v, want one naming the file and containing %q", file, err, want)
		}
	}
}

// The exported file is what Prometheus reads: the same groups and rules,
// in Prometheus' field names, with the expression trimmed.
func TestConvertWritesPrometheusRuleFormat(t *testing.T) {
	ms, err := rules.LoadFiles("testdata/load/two-docs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Rule.Name != "first" || ms[1].Rule.Name != "second" {
		t.Fatalf("loaded %d manifests, want first and second", len(ms))
	}
	if got := ms[0].Line(0, 1); got != 15 {
		t.Errorf("line of NotifyOne = %d, want 15", got)
	}
	b, err := rules.Convert(ms[0], rules.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatalf("exported file is not YAML: %v\n%s", err, b)
	}
	want := map[string]any{
		"groups": []any{map[string]any{
			"name":     "first",
			"interval": "30s",
			"labels":   map[string]any{"severity": "info"},
			"rules": []any{
				map[string]any{"record": "cluster:one:sum", "expr": "sum(vector(1))"},
				map[string]any{
					"alert":           "NotifyOne",
					"expr":            "cluster:one:sum\n  > 0",
					"for":             "1h30m",
					"keep_firing_for": "10m",
					"labels":          map[string]any{"severity": "warning"},
					"annotations":     map[string]any{"summary": "one"},
				},
			},
		}},
	}
	if !equalYAML(got, want) {
		t.Errorf("exported:\n%s\nwant the same as %v", b, want)
	}
	if !strings.HasPrefix(string(b), "# Generated by `smartscale rules export` from testdata/load/two-docs.yaml") {
		t.Errorf("exported file lacks the generated header:\n%s", b)
	}
}

func equalYAML(a, b any) bool {
	ab, _ := yaml.Marshal(a)
	bb, _ := yaml.Marshal(b)
	return string(ab) == string(bb)
}

func TestExportScalesForAndRewritesGrafana(t *testing.T) {
	ms, err := rules.LoadFiles("testdata/load/two-docs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := rules.Export(ms, dir, rules.ExportOptions{ForScale: 0.01, GrafanaURL: "https://grafana.corp/"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "first.yaml"), filepath.Join(dir, "second.yaml")}; !slices.Equal(paths, want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	first, _ := os.ReadFile(paths[0])
	// 1h30m x 0.01 = 54s; keep_firing_for 10m x 0.01 = 6s.
	for _, s := range []string{"for: 54s", "keep_firing_for: 6s", "scaled by 0.01"} {
		if !strings.Contains(string(first), s) {
			t.Errorf("first.yaml lacks %q:\n%s", s, first)
		}
	}
	second, _ := os.ReadFile(paths[1])
	if !strings.Contains(string(second), "dashboard_url: https://grafana.corp/d/x?var-a=b") {
		t.Errorf("second.yaml: Grafana URL not rewritten:\n%s", second)
	}
}

func TestExportRejectsDuplicateNames(t *testing.T) {
	ms, err := rules.LoadFiles("testdata/load/two-docs.yaml", "testdata/load/two-docs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Export(ms, t.TempDir(), rules.ExportOptions{}); err == nil || !strings.Contains(err.Error(), "PrometheusRule first") {
		t.Errorf("err %v, want a duplicate PrometheusRule error", err)
	}
}

func TestScaleDuration(t *testing.T) {
	for _, c := range []struct {
		in     string
		factor float64
		want   string
	}{
		{"3m", 1, "3m"},
		{"3m", 0, "3m"},
		{"3m", 1.0 / 30, "6s"},
		{"10m", 1.0 / 30, "20s"},
		{"2m", 0.5, "1m"},
		{"1h", 2, "2h"},
		{"3m", 0.001, "1s"}, // never below 1s: an alert that waits keeps waiting
		{"0s", 0.5, "0s"},
		{"1d", 0.5, "12h"},
	} {
		got, err := rules.ScaleDuration(c.in, c.factor)
		if err != nil || got != c.want {
			t.Errorf("ScaleDuration(%q, %g) = %q, %v; want %q", c.in, c.factor, got, err, c.want)
		}
	}
	if _, err := rules.ScaleDuration("3m", -1); err == nil {
		t.Error("a negative factor must fail")
	}
	if _, err := rules.ScaleDuration("3 minutes", 0.5); err == nil {
		t.Error("a bad duration must fail")
	}
}

func TestLoadDirNeedsManifests(t *testing.T) {
	if _, err := rules.LoadDir(t.TempDir()); err == nil {
		t.Error("an empty folder must fail: an empty export drops every rule")
	}
}
