// Package check holds what both Store implementations share: argument
// checks, IDs, time precision and the stale-lock log line, so the two
// behave the same way the conformance suite expects.
package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/state"
)

// Name rejects group names and IDs that would break key prefixes.
func Name(kind, name string) error {
	if name == "" || strings.Contains(name, "#") {
		return fmt.Errorf("%w: %s %q (must be non-empty, without '#')", state.ErrInvalid, kind, name)
	}
	return nil
}

// TTL rejects a non-positive ttl.
func TTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: ttl %s must be positive", state.ErrInvalid, ttl)
	}
	return nil
}

// Operation validates a new operation.
func Operation(op state.Operation) error {
	if op.ID != "" {
		if err := Name("operation id", op.ID); err != nil {
			return err
		}
	}
	if err := Name("node group", op.Group); err != nil {
		return err
	}
	if op.Kind == "" || op.Step == "" || op.Owner == "" {
		return fmt.Errorf("%w: operation needs kind, step and owner (got %q, %q, %q)", state.ErrInvalid, op.Kind, op.Step, op.Owner)
	}
	return nil
}

// Transition validates a transition.
func Transition(t state.Transition) error {
	if err := Name("operation id", t.ID); err != nil {
		return err
	}
	if t.Owner == "" || t.From == "" || t.To == "" {
		return fmt.Errorf("%w: transition needs owner, from and to (got %q, %q, %q)", state.ErrInvalid, t.Owner, t.From, t.To)
	}
	return nil
}

// NewID returns a random identifier for operations and decisions.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Millis rounds t to the millisecond in UTC: the precision both stores keep,
// so what is read back equals what was written.
func Millis(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// LogTakeover logs a stale-lock cleanup with the stable keys.
func LogTakeover(ctx context.Context, log *slog.Logger, group, owner, previous string, expired time.Time) {
	log.LogAttrs(ctx, slog.LevelWarn, "stale lock taken over",
		slog.String("nodegroup", group),
		slog.String("action", "stale_lock_cleanup"),
		slog.String("reason", "lock expired without release"),
		slog.String("owner", owner),
		slog.String("previous_owner", previous),
		slog.Time("expired_at", expired))
}

// ExpiresAt is t as the epoch second a TTL attribute holds, rounded up so
// an item never expires before it was asked to.
func ExpiresAt(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// Version describes a stored version for *state.ErrConflict.
func Version(v int64) string {
	if v == 0 {
		return "missing"
	}
	return fmt.Sprintf("version %d", v)
}

// Describe says what a stored operation is, for *state.ErrConflict.
func Describe(op state.Operation) string {
	s := fmt.Sprintf("step %q, owner %q", op.Step, op.Owner)
	if op.Done() {
		s += fmt.Sprintf(", finished (%s)", op.Result)
	}
	return s
}

// Want says what a transition expects, for *state.ErrConflict.
func Want(owner, step string) string {
	if step == "" {
		return fmt.Sprintf("unfinished, owner %q", owner)
	}
	return fmt.Sprintf("unfinished, step %q, owner %q", step, owner)
}

// Limit rejects a non-positive decision limit.
func Limit(n int) error {
	if n <= 0 {
		return fmt.Errorf("%w: limit %d must be positive", state.ErrInvalid, n)
	}
	return nil
}

// SortOperations orders operations oldest first (then by ID), the order
// UnfinishedOperations promises.
func SortOperations(ops []state.Operation) {
	slices.SortFunc(ops, func(a, b state.Operation) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Decision validates r and fills an empty ID and a zero Time (from now).
// Time is kept in UTC, to the nanosecond, as its sort key orders it.
func Decision(r decision.Record, now time.Time) (decision.Record, error) {
	if err := Name("node group", r.NodeGroup); err != nil {
		return decision.Record{}, err
	}
	if r.ID == "" {
		r.ID = NewID()
	} else if err := Name("decision id", r.ID); err != nil {
		return decision.Record{}, err
	}
	if r.Time.IsZero() {
		r.Time = now
	}
	r.Time = r.Time.UTC().Round(0)
	return r, nil
}

// Key rejects an empty dedupe key (any other string is a key).
func Key(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty dedupe key", state.ErrInvalid)
	}
	return nil
}
