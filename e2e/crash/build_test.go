package crash_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/internal/failpoint"
)

// TestOnlyTheFailpointsBuildCanPause: the pause hook and the variable that
// arms it exist in a binary built with -tags failpoints and in no other.
func TestOnlyTheFailpointsBuildCanPause(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the smartscale binary twice")
	}
	for _, tt := range []struct {
		tags []string
		want bool
	}{{nil, false}, {[]string{"failpoints"}, true}} {
		b, err := os.ReadFile(harness.Build(t, tt.tags...))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"failpoint reached", failpoint.Env} {
			if got := bytes.Contains(b, []byte(s)); got != tt.want {
				t.Errorf("build with tags %v contains %q: %v, want %v", tt.tags, s, got, tt.want)
			}
		}
	}
}
