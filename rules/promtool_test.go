// Package rules_test checks the PrometheusRule manifests of this folder with
// the ecosystem's own tools: the manifests are exported to Prometheus rule
// files (internal/rules, the code behind `smartscale rules export`), then
// `promtool check rules` and `promtool test rules` (pinned, from the tool
// cache: `make tools`) run on the export, and a real Prometheus and
// Alertmanager run them end to end (live_test.go).
package rules_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/rules"
)

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := stack.ToolPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// export writes this folder's manifests as rule files into a temp folder,
// together with the promtool test files of tests/, which name the exported
// files in rule_files.
func export(t *testing.T, opts rules.ExportOptions) (dir string, ms []rules.Manifest, tests []string) {
	t.Helper()
	ms, err := rules.LoadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if vs := rules.Lint(ms, rules.LintOptions{}); len(vs) > 0 {
		t.Fatalf("rules lint: %v", vs)
	}
	dir = t.TempDir()
	if _, err := rules.Export(ms, dir, opts); err != nil {
		t.Fatal(err)
	}
	srcs, err := filepath.Glob(filepath.Join("tests", "*_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, dst)
	}
	return dir, ms, tests
}

func TestPromtoolCheckRules(t *testing.T) {
	dir, ms, _ := export(t, rules.ExportOptions{})
	args := []string{"check", "rules", "--lint=all", "--lint-fatal"}
	for _, m := range ms {
		args = append(args, filepath.Join(dir, rules.FileName(m)))
	}
	out, err := exec.Command(tool(t, "promtool"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "SUCCESS"); n != len(ms) {
		t.Fatalf("promtool checked %d of %d files:\n%s", n, len(ms), out)
	}
	t.Logf("%s", out)
}

func TestPromtoolTestRules(t *testing.T) {
	t.Parallel() // the predictive file alone evaluates 8 days minute by minute
	_, _, tests := export(t, rules.ExportOptions{})
	promtool := tool(t, "promtool")
	for _, f := range tests {
		t.Run(strings.TrimSuffix(filepath.Base(f), "_test.yaml"), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(promtool, "test", "rules", f).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool test rules %s: %v\n%s", filepath.Base(f), err, out)
			}
			if !strings.Contains(string(out), "SUCCESS") {
				t.Fatalf("promtool test rules %s did not report SUCCESS:\n%s", filepath.Base(f), out)
			}
		})
	}
}

// testFile is the part of a promtool test file that coverage needs.
type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// Every manifest has its own test file, and every alert is tested both
// firing and silent, so a new alert without tests fails here.
func TestEveryAlertIsTestedFiringAndSilent(t *testing.T) {
	ms, err := rules.LoadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, m := range ms {
		name := strings.TrimSuffix(filepath.Base(m.Path), filepath.Ext(m.Path))
		path := filepath.Join("tests", name+"_test.yaml")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s has no test file %s: %v", m.Path, path, err)
			continue
		}
		var tf testFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !slices.Contains(tf.RuleFiles, rules.FileName(m)) {
			t.Errorf("%s does not load %s (rule_files: %v)", path, rules.FileName(m), tf.RuleFiles)
		}
		for _, tg := range tf.Tests {
			for _, a := range tg.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for _, a := range rules.Alerts(ms) {
		if !firing[a.Name] {
			t.Errorf("alert %s (%s) has no test where it fires", a.Name, a.Path)
		}
		if !silent[a.Name] {
			t.Errorf("alert %s (%s) has no test where it stays silent", a.Name, a.Path)
		}
	}
}
