package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/smartscale/smartscale/internal/policy"
)

// ReadyTimeoutError: the node for an instance did not become Ready in time.
// The scaler terminates the instance and records the failure.
type ReadyTimeoutError struct {
	// ID is what was waited for (provider id, instance id or node name).
	ID string
	// Node is the node's name if it registered but never became Ready;
	// empty when no node for ID appeared at all.
	Node    string
	Timeout time.Duration
}

func (e *ReadyTimeoutError) Error() string {
	if e.Node == "" {
		return fmt.Sprintf("no node registered for %s within %s", e.ID, e.Timeout)
	}
	return fmt.Sprintf("node %s (%s) not Ready within %s", e.Node, e.ID, e.Timeout)
}

// NodeByID looks up, in the informer cache, the node whose spec.providerID,
// instance id (InstanceID) or name is id — for instance to find the node a
// spot interruption warning is about.
func (c *Cluster) NodeByID(id string) (policy.Node, bool) { return c.cache.nodeByID(id) }

// WaitForReady waits until a Node matching id — its spec.providerID, the
// instance id derived from it (InstanceID), or its name — is registered and
// Ready, and returns it. It watches the informer cache (Start must have been
// called); it does not poll the API. After timeout it records a
// NodeReadyTimeout Event and returns a *ReadyTimeoutError; if ctx ends first
// it returns ctx's error.
func (c *Cluster) WaitForReady(ctx context.Context, id string, timeout time.Duration) (policy.Node, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen policy.Node
	for {
		changed := c.cache.nodesChanged()
		if n, ok := c.cache.nodeByID(id); ok {
			if n.Ready {
				c.log.Info("node ready", "node", n.Name, "instance", id, "action", "wait_ready")
				return n, nil
			}
			seen = n
		}
		select {
		case <-changed:
		case <-timer.C:
			err := &ReadyTimeoutError{ID: id, Node: seen.Name, Timeout: timeout}
			name := seen.Name
			if name == "" {
				// A provider id is no valid object name; its instance id is.
				name = InstanceID(id, "", nil)
			}
			c.Event(name, corev1.EventTypeWarning, ReasonNodeReadyTimeout, "%s", err.Error())
			c.log.Warn("node not ready in time", "node", seen.Name, "instance", id, "action", "wait_ready", "reason", ReasonNodeReadyTimeout, "timeout", timeout.String())
			return policy.Node{}, err
		case <-ctx.Done():
			return policy.Node{}, fmt.Errorf("wait for node %s Ready: %w", id, context.Cause(ctx))
		}
	}
}
