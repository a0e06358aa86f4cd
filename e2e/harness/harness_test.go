package harness_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/stack"
)

// TestServeOnTheStack: a serve process on dynalite + kwok brings the empty
// group to its minimum, records it, and comes back after a SIGKILL with
// its state intact.
func TestServeOnTheStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack")
	}
	ctx := context.Background()
	bin := harness.Build(t)
	st := stack.Start(t, stack.Options{Dynalite: true, Kwok: true})
	sv := harness.StartServe(t, harness.ServeOptions{Bin: bin, Stack: st})

	err := harness.Eventually(ctx, 60*time.Second, 250*time.Millisecond, "two Ready nodes, one per zone", func(ctx context.Context) (bool, error) {
		nodes, err := harness.GroupNodes(ctx, st.Client(), "workers")
		z := harness.Zones(nodes)
		return harness.ReadyCount(nodes) == 2 && z["us-east-1a"] == 1 && z["us-east-1b"] == 1, err
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := sv.Decisions(ctx, "workers")
	if err != nil || len(recs) == 0 || recs[0].Action != "scale_up" {
		t.Fatalf("decisions after the minimum was enforced: %v %+v", err, recs)
	}
	if err := sv.Kill(); err != nil {
		t.Fatal(err)
	}
	sv.Start(t)
	again, err := sv.Decisions(ctx, "workers")
	if err != nil || len(again) < len(recs) {
		t.Fatalf("decisions after a restart on the same table: %v, %d < %d", err, len(again), len(recs))
	}
	lines, err := sv.Logs()
	if err != nil || len(lines) == 0 {
		t.Fatalf("log lines: %v %d", err, len(lines))
	}
	if _, ok, _ := sv.FirstLog(time.Time{}, func(l harness.LogLine) bool { return l.Msg == "listening" }); !ok {
		t.Error("no \"listening\" line in the serve log")
	}
}

func TestAlertmanagerConfigKeepsRoutesAndPointsReceiversAtTheTest(t *testing.T) {
	dir := t.TempDir()
	out, err := harness.AlertmanagerConfig(harness.AlertmanagerOptions{
		WebhookURLs: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, TokenFile: filepath.Join(dir, "token"),
		GroupWait: time.Second, Dir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Route struct {
			Routes []struct {
				Receiver  string `yaml:"receiver"`
				GroupWait string `yaml:"group_wait"`
			} `yaml:"routes"`
		} `yaml:"route"`
		InhibitRules []any `yaml:"inhibit_rules"`
		Receivers    []struct {
			Name     string           `yaml:"name"`
			Webhooks []map[string]any `yaml:"webhook_configs"`
			Slack    []map[string]any `yaml:"slack_configs"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.InhibitRules) == 0 {
		t.Error("inhibit rules dropped")
	}
	for _, r := range cfg.Route.Routes {
		if r.Receiver == "smartscale" && r.GroupWait != "1s" {
			t.Errorf("smartscale route group_wait %q, want 1s", r.GroupWait)
		}
	}
	for _, r := range cfg.Receivers {
		if len(r.Slack) > 0 {
			t.Errorf("receiver %s keeps Slack without SlackURL", r.Name)
		}
		if r.Name == "smartscale" {
			if len(r.Webhooks) != 2 || r.Webhooks[1]["url"] != "http://127.0.0.1:2/v1/alerts" {
				t.Errorf("smartscale webhooks: %v", r.Webhooks)
			}
		}
	}
	if strings.Contains(out, "/etc/alertmanager") {
		t.Error("a secret path of the production file survived")
	}
	if _, err := os.Stat(filepath.Join(harness.RepoRoot(), "alertmanager", "templates")); err != nil {
		t.Error(err)
	}
}
