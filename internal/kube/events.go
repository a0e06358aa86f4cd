package kube

import (
	"fmt"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Event reasons on Nodes, so `kubectl describe node` tells the story.
const (
	ReasonScaleUp          = "ScaleUp"
	ReasonScaleDown        = "ScaleDown"
	ReasonDrainStarted     = "DrainStarted"
	ReasonDrained          = "Drained"
	ReasonDrainFailed      = "DrainFailed"
	ReasonNodeReadyTimeout = "NodeReadyTimeout"
)

// maxEventMessage keeps a message within what the events API accepts
// (events.k8s.io caps the note at 1 KiB).
const maxEventMessage = 1024

// Event records an Event of eventtype (corev1.EventTypeNormal or
// corev1.EventTypeWarning) on the Node named node. The reference carries the
// node name as its UID, as the kubelet's node events do, which is what
// `kubectl describe node` looks up; a node that never registered (a
// NodeReadyTimeout) still gets an Event under the name it was expected at.
// Recording is asynchronous and never fails the caller.
func (c *Cluster) Event(node, eventtype, reason, messageFmt string, args ...any) {
	msg := fmt.Sprintf(messageFmt, args...)
	if len(msg) > maxEventMessage {
		cut := maxEventMessage - len("...")
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	ref := &corev1.ObjectReference{Kind: kindNode, APIVersion: "v1", Name: node, UID: types.UID(node)}
	c.recorder.Event(ref, eventtype, reason, msg)
}
