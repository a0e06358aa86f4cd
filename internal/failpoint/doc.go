// Package failpoint is a test-only pause hook for crash-recovery tests.
//
// SmartScale journals every step of an operation before it runs, so that a
// replica which dies anywhere can be replaced by one that finishes or rolls
// back what it began. Proving that needs a real process kill (SIGKILL: no
// deferred call, no context cancellation, no final journal write) at a
// deterministic point — "after the instances were created, before the journal
// says so" is a window of milliseconds that a timer-based kill would hit only
// by luck. A flag-driven "pretend to crash" inside the process would run the
// very cleanup code a crash skips.
//
// So the scaler calls Hit at each journal step, before and after its side
// effect. In a binary built with the build tag "failpoints", Hit compares the
// point with SMARTSCALE_FAILPOINT (a comma-separated list of names); on a
// match it writes one JSON line to stderr,
//
//	{"time":"…","level":"WARN","msg":"failpoint reached","failpoint":"scale_up/launching/after"}
//
// and blocks until ctx ends, so the test can see the line and SIGKILL the
// process there. Names are kind/step/when, e.g. scale_down/draining/before.
//
// Without the tag (every production build: `make build`, the image, the
// release) Hit is an empty function the compiler inlines away: production
// binaries neither contain the hook nor read the variable.
package failpoint

// When a point sits relative to its step's side effect.
const (
	// Before: the step is journaled, its side effect has not begun.
	Before = "before"
	// After: the side effect is done, the next journal write has not
	// happened.
	After = "after"
)

// Env names the variable that arms failpoints in a "failpoints" build.
const Env = "SMARTSCALE_FAILPOINT"
