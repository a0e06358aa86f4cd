//go:build !failpoints

package failpoint_test

import (
	"context"
	"testing"

	"github.com/smartscale/smartscale/internal/failpoint"
)

// Without the tag an armed point neither blocks nor reports.
func TestHitIsInertWithoutTheTag(t *testing.T) {
	if failpoint.Enabled {
		t.Fatal("Enabled in a build without the failpoints tag")
	}
	t.Setenv(failpoint.Env, "scale_up/launching/before")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // never cancelled before Hit returns: a block would hang the test
	failpoint.Hit(ctx, "scale_up", "launching", failpoint.Before)
}
