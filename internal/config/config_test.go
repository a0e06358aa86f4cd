package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartscale/smartscale/internal/config"
)

func TestExampleLoadsWithTheSeedDefaults(t *testing.T) {
	cfg, err := config.Load("smartscale.example.yaml")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	def := config.Default()
	g, ok := cfg.Group("workers")
	if !ok {
		t.Fatal("example has no workers group")
	}
	want := config.DefaultNodeGroup("workers")
	if g.MinNodes != 2 || g.MaxNodes != 10 || g.SpotPercentage != 60 || g.ScaleUpStep != (config.ScaleUpStep{Normal: 1, High: 2}) ||
		g.ScaleDownStep != 1 || g.Cooldowns.ScaleUp.D() != 5*time.Minute || g.Cooldowns.ScaleDown.D() != 10*time.Minute ||
		g.ScaleDownDelayAfterScaleUp != want.ScaleDownDelayAfterScaleUp || g.DrainTimeout.D() != 5*time.Minute {
		t.Errorf("example's workers group %+v differs from the seed's numbers %+v", g, want)
	}
	if cfg.State.Backend != def.State.Backend || cfg.Cloud.Provider != def.Cloud.Provider || cfg.Server.MaxBodyBytes != 1<<20 {
		t.Errorf("example differs from Default(): state %s cloud %s body %d", cfg.State.Backend, cfg.Cloud.Provider, cfg.Server.MaxBodyBytes)
	}
	// The embedded copy is the file.
	b, _ := os.ReadFile("smartscale.example.yaml")
	if string(config.Example()) != string(b) {
		t.Error("embedded example differs from the file")
	}
}

func TestDefaultsFillWhatAFileLeavesOut(t *testing.T) {
	cfg, err := config.Parse("min.yaml", []byte("clusterID: prod\nnodeGroups:\n  - name: batch\n    maxNodes: 4\n    zones: [eu-west-1a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.NodeGroups[0]
	if len(cfg.NodeGroups) != 1 || g.Name != "batch" || g.MaxNodes != 4 || g.MinNodes != 2 || len(g.Zones) != 1 ||
		g.InstanceTypes[0] != "t3.small" || g.Cooldowns.ScaleDown.D() != 10*time.Minute {
		t.Errorf("defaults not applied: %+v", cfg.NodeGroups)
	}
	empty, err := config.Parse("empty.yaml", nil)
	if err != nil || len(empty.NodeGroups) != 1 || empty.NodeGroups[0].Name != "workers" {
		t.Errorf("empty file: %v %+v", err, empty.NodeGroups)
	}
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		want       []string // each must appear in the error
	}{
		{"unknown top-level key", "clusterID: a\nclusterId: b\n", []string{"bad.yaml:2", "clusterId", "unknown key"}},
		{"unknown nested key", "clusterID: a\nnodeGroups:\n  - name: workers\n    spotPercent: 50\n", []string{"bad.yaml:4", "nodeGroups[0].spotPercent", "unknown key"}},
		{"unknown deep key", "server:\n  auth:\n    token: x\n", []string{"bad.yaml:3", "server.auth.token"}},
		{"min > max", "nodeGroups:\n  - name: workers\n    minNodes: 5\n    maxNodes: 3\n", []string{"bad.yaml:3", "nodeGroups[0].minNodes", "≤ maxNodes"}},
		{"negative duration", "nodeGroups:\n  - name: workers\n    cooldowns:\n      scaleUp: -5m\n", []string{"bad.yaml:4", "nodeGroups[0].cooldowns.scaleUp", "positive"}},
		{"unparseable duration", "nodeGroups:\n  - name: workers\n    drainTimeout: soon\n", []string{"bad.yaml:3", "nodeGroups[0].drainTimeout", "duration"}},
		{"wrong type", "nodeGroups:\n  - name: workers\n    maxNodes: ten\n", []string{"bad.yaml:3", "nodeGroups[0].maxNodes"}},
		{"min below zones", "nodeGroups:\n  - name: workers\n    minNodes: 1\n    zones: [a, b]\n", []string{"nodeGroups[0].minNodes", "number of zones"}},
		{"spot over 100", "nodeGroups:\n  - name: workers\n    spotPercentage: 120\n", []string{"nodeGroups[0].spotPercentage"}},
		{"unknown backend", "state:\n  backend: etcd\n", []string{"bad.yaml:2", "state.backend", "etcd"}},
		{"dynamodb without table", "state:\n  backend: dynamodb\n  dynamodb:\n    table: \"\"\n", []string{"state.dynamodb.table"}},
		{"unknown provider", "cloud:\n  provider: gce\n", []string{"cloud.provider"}},
		{"aws without template", "cloud:\n  provider: aws\n", []string{"cloud.aws.launchTemplateID", "cloud.aws.subnets"}},
		{"bad listen address", "server:\n  listenAddress: localhost\n", []string{"server.listenAddress"}},
		{"cert without key", "server:\n  tls:\n    certFile: c.pem\n", []string{"server.tls"}},
		{"both auth kinds", "server:\n  auth:\n    bearerTokenFile: t\n    basicAuth: {username: u, passwordFile: p}\n", []string{"server.auth"}},
		{"duplicate group", "nodeGroups:\n  - name: workers\n  - name: workers\n", []string{"nodeGroups[1].name", "duplicate"}},
		{"bad group name", "nodeGroups:\n  - name: Workers_1\n", []string{"nodeGroups[0].name"}},
		{"scale-down step 2", "nodeGroups:\n  - name: workers\n    scaleDownStep: 2\n", []string{"nodeGroups[0].scaleDownStep"}},
		{"high step below normal", "nodeGroups:\n  - name: workers\n    scaleUpStep: {normal: 3, high: 2}\n", []string{"nodeGroups[0].scaleUpStep.high"}},
		{"not YAML", "clusterID: [unclosed\n", []string{"bad.yaml"}},
		{"lock ttl too short", "scaler:\n  lockTTL: 1s\n", []string{"bad.yaml:2", "scaler.lockTTL", "at least 3s"}},
		{"zero reconcile interval", "scaler:\n  reconcileInterval: 0s\n", []string{"bad.yaml:2", "scaler.reconcileInterval", "positive"}},
		{"sns not an arn", "notify:\n  sns:\n    topicARN: my-topic\n", []string{"notify.sns.topicARN"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	_, err := config.Parse("bad.yaml", []byte("clusterID: \"\"\nnodeGroups:\n  - name: workers\n    minNodes: 12\n    spotPercentage: -1\n"))
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a FieldError", err)
	}
	for _, key := range []string{"clusterID", "nodeGroups[0].minNodes", "nodeGroups[0].spotPercentage"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("error %v does not name the file", err)
	}
}
