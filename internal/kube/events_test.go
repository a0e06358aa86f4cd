package kube

import (
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

func TestEventMessageIsBounded(t *testing.T) {
	c, rec := newTestCluster(t, newFakeAPI())
	// Multi-byte runes across the cut: the message must stay valid UTF-8.
	c.Event("n1", corev1.EventTypeWarning, ReasonDrainFailed, "%s", strings.Repeat("é", 2000))
	evs := events(rec)
	if len(evs) != 1 {
		t.Fatalf("events = %q", evs)
	}
	msg := strings.TrimPrefix(evs[0], "Warning DrainFailed ")
	if len(msg) > maxEventMessage || !utf8.ValidString(msg) || !strings.HasSuffix(msg, "...") {
		t.Errorf("message of %d bytes (valid UTF-8: %v) not cut to %d with an ellipsis", len(msg), utf8.ValidString(msg), maxEventMessage)
	}
}
