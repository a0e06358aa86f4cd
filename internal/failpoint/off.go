//go:build !failpoints

package failpoint

import "context"

// Enabled reports whether this binary was built with the failpoints tag.
const Enabled = false

// Hit does nothing: this build has no failpoints (see the package comment).
func Hit(ctx context.Context, kind, step, when string) {}
