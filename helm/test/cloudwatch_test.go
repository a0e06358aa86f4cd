package helmtest

import (
	"strings"
	"testing"
	"time"

	cwsink "github.com/smartscale/smartscale/internal/cloudwatch"
)

// TestCloudWatchValuesBecomeServeFlags: cloudwatch.namespace adds serve's
// --cloudwatch-namespace and --cloudwatch-interval (off by default, on in
// the production values), with values serve accepts; the schema refuses
// namespaces CloudWatch would.
func TestCloudWatchValuesBecomeServeFlags(t *testing.T) {
	t.Parallel()
	flags := func(t *testing.T, o renderOpts) map[string]string {
		t.Helper()
		c := dig(render(t, o).one(t, "Deployment", ""), "spec", "template", "spec", "containers", 0)
		out := map[string]string{}
		for _, a := range list(dig(c, "args")) {
			if name, v, ok := strings.Cut(str(a), "="); ok && strings.HasPrefix(name, "--cloudwatch-") {
				out[name] = v
			}
		}
		return out
	}
	for name, tc := range map[string]struct {
		o                   renderOpts
		namespace, interval string
	}{
		"default":    {renderOpts{}, "", ""},
		"production": {renderOpts{files: []string{productionValues(t)}}, "SmartScale", "1m"},
		"set":        {renderOpts{sets: []string{"cloudwatch.namespace=Smart Scale/prod #2", "cloudwatch.interval=30s"}}, "Smart Scale/prod #2", "30s"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := flags(t, tc.o)
			if got["--cloudwatch-namespace"] != tc.namespace || got["--cloudwatch-interval"] != tc.interval {
				t.Fatalf("args %v, want namespace %q interval %q", got, tc.namespace, tc.interval)
			}
			if tc.namespace == "" {
				if len(got) != 0 {
					t.Errorf("CloudWatch flags without a namespace: %v", got)
				}
				return
			}
			// What serve checks before it starts.
			if err := cwsink.ValidateNamespace(got["--cloudwatch-namespace"]); err != nil {
				t.Error(err)
			}
			if d, err := time.ParseDuration(got["--cloudwatch-interval"]); err != nil || d < time.Second {
				t.Errorf("--cloudwatch-interval=%s: %v (serve wants a duration of 1s or more)", got["--cloudwatch-interval"], err)
			}
		})
	}

	for _, set := range []string{"cloudwatch.namespace=AWS/EC2", "cloudwatch.namespace=Smart$cale", "cloudwatch.interval=soon"} {
		t.Run(set, func(t *testing.T) {
			t.Parallel()
			_, err := templateRaw(t, renderOpts{sets: []string{set}})
			if err == nil || !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), "/cloudwatch/") {
				t.Fatalf("--set %s: %v, want values.schema.json to refuse it", set, err)
			}
		})
	}
}
