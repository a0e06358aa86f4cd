//go:build failpoints

package failpoint

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Enabled reports whether this binary was built with the failpoints tag.
const Enabled = true

// Hit pauses at the point kind/step/when when SMARTSCALE_FAILPOINT names
// it: one JSON line to stderr, then it blocks until ctx ends (the test
// kills the process meanwhile).
func Hit(ctx context.Context, kind, step, when string) {
	pause(ctx, os.Stderr, os.Getenv(Env), kind+"/"+step+"/"+when)
}

// pause is Hit with its inputs explicit, for the package's test.
func pause(ctx context.Context, w io.Writer, armed, name string) bool {
	if armed == "" || !slices.Contains(strings.Split(armed, ","), name) {
		return false
	}
	line, _ := json.Marshal(map[string]string{
		"time": time.Now().Format(time.RFC3339Nano), "level": "WARN",
		"msg": "failpoint reached", "failpoint": name,
	})
	_, _ = w.Write(append(line, '\n'))
	<-ctx.Done()
	return true
}
