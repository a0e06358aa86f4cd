package stack_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smartscale/smartscale/e2e/stack"
)

// An HA pair of Alertmanagers forms a cluster, delivers an alert Prometheus
// evaluates, and a replica killed mid-test comes back on its ports and
// rejoins the cluster.
func TestAlertmanagerHAPair(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sink := &webhookSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	rules := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(rules, []byte(`groups:
- name: always
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
    labels: {smartscale_nodegroup: workers}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := stack.Start(t, stack.Options{
		Prometheus:           true,
		RuleFiles:            []string{rules},
		AlertmanagerReplicas: 2,
		AlertmanagerConfig: fmt.Sprintf(`route:
  receiver: sink
  group_wait: 1s
  group_interval: 1s
receivers:
- name: sink
  webhook_configs:
  - url: %s
`, srv.URL),
	})
	if len(s.AlertmanagerURLs) != 2 {
		t.Fatalf("AlertmanagerURLs = %v", s.AlertmanagerURLs)
	}
	waitFor(ctx, t, "AlwaysFiring delivered", func(context.Context) (bool, error) {
		a, ok := sink.find("AlwaysFiring", "firing")
		return ok && a.Labels["smartscale_nodegroup"] == "workers", nil
	})

	am1 := stack.AlertmanagerReplica(1)
	old := s.Process(am1).PID()
	if err := s.KillComponent(am1); err != nil {
		t.Fatal(err)
	}
	if err := s.StartComponent(ctx, am1); err != nil {
		t.Fatal(err)
	}
	if s.Process(am1).PID() == old {
		t.Fatal("restarted replica has the old PID")
	}
	// Ready again means both replicas see each other.
	waitFor(ctx, t, "Prometheus scrapes both replicas", func(ctx context.Context) (bool, error) {
		r, err := s.Query(ctx, `sum(up{job="alertmanager"})`)
		return err == nil && len(r) == 1 && r[0].Value == 2, nil
	})
}
