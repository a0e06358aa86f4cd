package kube

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResumeResult says what Resume did with an interrupted drain.
type ResumeResult string

// Resume results.
const (
	// ResumeDrained: the drain finished; the node is cordoned and empty and
	// the operation can go on to terminate the instance.
	ResumeDrained ResumeResult = "drained"
	// ResumeUncordoned: the drain was rolled back (asked to, or it failed
	// when finished); the node is back in service.
	ResumeUncordoned ResumeResult = "uncordoned"
	// ResumeNotOurs: the node is not cordoned by SmartScale — a person
	// cordoned it, or the crash came before the cordon — so it is left
	// exactly as it is. The operation is over.
	ResumeNotOurs ResumeResult = "not_ours"
	// ResumeNodeGone: the Node object no longer exists. The operation can go
	// on to make sure the instance is terminated.
	ResumeNodeGone ResumeResult = "node_gone"
)

// ResumeOptions say how to settle an interrupted drain.
type ResumeOptions struct {
	// Finish completes the drain; otherwise it is rolled back (uncordon).
	// The caller decides, typically finishing while the operation is still
	// within its drain timeout and rolling back after.
	Finish bool
	// Drain configures the finishing drain.
	Drain DrainOptions
}

// Resume settles a drain that a crashed or restarted replica left at the
// journal step "draining". A node SmartScale cordoned is either drained to
// the end (Finish; should that drain fail, Drain itself uncordons it) or
// uncordoned. A node cordoned by a person is never uncordoned, and a node
// nobody cordoned is not drained.
func (c *Cluster) Resume(ctx context.Context, node string, opts ResumeOptions) (ResumeResult, error) {
	n, err := c.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ResumeNodeGone, nil
	}
	if err != nil {
		return "", fmt.Errorf("resume drain of %s: %w", node, err)
	}
	log := c.log.With("node", node, "action", "resume_drain")
	if !CordonedBySmartScale(n) {
		log.Info("node not cordoned by smartscale, leaving it", "unschedulable", n.Spec.Unschedulable)
		return ResumeNotOurs, nil
	}
	if !opts.Finish {
		if _, err := c.Uncordon(ctx, node); err != nil {
			return "", fmt.Errorf("resume drain of %s: %w", node, err)
		}
		log.Info("interrupted drain rolled back")
		return ResumeUncordoned, nil
	}
	err = c.Drain(ctx, node, opts.Drain)
	if err == nil {
		return ResumeDrained, nil
	}
	var derr *DrainError
	if errors.As(err, &derr) {
		if apierrors.IsNotFound(derr.Err) {
			return ResumeNodeGone, nil
		}
		if derr.Uncordoned {
			return ResumeUncordoned, err
		}
	}
	return "", err
}
