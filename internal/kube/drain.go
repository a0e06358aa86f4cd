package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Drain defaults.
const (
	DefaultDrainTimeout = 5 * time.Minute
	DefaultDrainWorkers = 16
	// FastDrainTimeout is the budget of a spot-interruption drain: the
	// two-minute warning less time to terminate and replace the instance.
	FastDrainTimeout = 90 * time.Second
)

// graceMargin is left between a capped grace period and the deadline, for
// the kubelet to stop the containers and the API server to remove the pod.
const graceMargin = 5 * time.Second

// Errors a DrainError wraps (besides API errors).
var (
	// ErrDrainTimeout: pods were still on the node at the deadline — a
	// PodDisruptionBudget kept refusing, or pods did not terminate in time.
	ErrDrainTimeout = errors.New("drain timed out")
	// ErrUnmanagedPod: a pod without a controller would not be recreated
	// anywhere; the drain refuses it unless DrainOptions.AllowUnmanaged.
	ErrUnmanagedPod = errors.New("pod has no controller and would be lost")
)

// DrainOptions tune a drain. The zero value is a normal drain.
type DrainOptions struct {
	// Timeout bounds the whole drain, cordon to last pod gone; default
	// DefaultDrainTimeout.
	Timeout time.Duration
	// Workers bounds concurrent eviction requests; default DefaultDrainWorkers.
	Workers int
	// MaxGracePeriod, when set, caps each pod's terminationGracePeriodSeconds.
	// Zero honours each pod's own.
	MaxGracePeriod time.Duration
	// FitGraceToDeadline also cuts each pod's grace period to the time left
	// before the deadline (less a small margin), so every evicted pod can
	// finish inside the budget. Fast drains set it.
	FitGraceToDeadline bool
	// AllowUnmanaged evicts pods that have no controller (through the
	// Eviction API like any other). Without it, such pods fail the drain
	// before any pod is evicted, as `kubectl drain` without --force does.
	AllowUnmanaged bool
}

// FastDrainOptions are the options of a spot-interruption drain: the same
// steps within FastDrainTimeout, grace periods cut to fit it.
func FastDrainOptions() DrainOptions {
	return DrainOptions{Timeout: FastDrainTimeout, FitGraceToDeadline: true}
}

func (o DrainOptions) withDefaults() DrainOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultDrainTimeout
	}
	if o.Workers <= 0 {
		o.Workers = DefaultDrainWorkers
	}
	return o
}

// BlockingPod is a pod that kept a drain from finishing, and why.
type BlockingPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Reason    string `json:"reason"`
}

func (p BlockingPod) String() string { return p.Namespace + "/" + p.Name + " (" + p.Reason + ")" }

// DrainError is the error of a failed drain. Err is ErrDrainTimeout,
// ErrUnmanagedPod, or the API error that stopped it (errors.Is / As see
// through). Blocking names the pods that were still on the node, or the pod
// a hard error was about.
type DrainError struct {
	Node     string
	Blocking []BlockingPod
	Err      error
	// Uncordoned: the drain put the node back in service. False when
	// SmartScale had not cordoned it (a person had), or when uncordoning
	// failed too (UncordonErr).
	Uncordoned  bool
	UncordonErr error
}

func (e *DrainError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "drain node %s: %v", e.Node, e.Err)
	if len(e.Blocking) > 0 {
		b.WriteString("; blocked by ")
		b.WriteString(blockingList(e.Blocking, 10))
	}
	if e.UncordonErr != nil {
		fmt.Fprintf(&b, "; uncordon failed too: %v", e.UncordonErr)
	}
	return b.String()
}

func (e *DrainError) Unwrap() error { return e.Err }

func blockingList(pods []BlockingPod, limit int) string {
	var parts []string
	for i, p := range pods {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(pods)-limit))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ", ")
}

// Drain empties the node: it cordons it (marked as SmartScale's unless a
// person had already cordoned it), evicts every pod except DaemonSet and
// mirror pods through the policy/v1 Eviction API with the pod's UID as a
// precondition, concurrently (DrainOptions.Workers), retrying 429s
// (PodDisruptionBudget) with backoff until the deadline, and returns once
// every evicted pod is gone from the node. Pods that land on the node while
// it drains are evicted too. Terminal pods (Succeeded, Failed) are deleted,
// the only pods a drain deletes directly.
//
// On success the node stays cordoned, ready for termination. On timeout or
// any hard error Drain uncordons the node (only if SmartScale cordoned it),
// records a DrainFailed Event and returns a *DrainError naming the pods that
// blocked it.
func (c *Cluster) Drain(ctx context.Context, node string, opts DrainOptions) error {
	opts = opts.withDefaults()
	start := time.Now()
	dctx, cancel := context.WithDeadline(ctx, start.Add(opts.Timeout))
	defer cancel()
	log := c.log.With("node", node, "action", "drain")

	ours, err := c.Cordon(dctx, node)
	if err != nil {
		// Cordon is one write: nothing to roll back.
		c.Event(node, corev1.EventTypeWarning, ReasonDrainFailed, "drain not started: %v", err)
		return &DrainError{Node: node, Err: err}
	}
	c.Event(node, corev1.EventTypeNormal, ReasonDrainStarted, "SmartScale is draining the node (timeout %s)", opts.Timeout)
	log.Info("drain started", "timeout", opts.Timeout.String(), "cordoned_by_us", ours)

	run := &drainRun{client: c.client, node: node, opts: opts, deadline: start.Add(opts.Timeout), log: log}
	derr := run.run(dctx)
	if derr == nil {
		c.Event(node, corev1.EventTypeNormal, ReasonDrained, "all %d pods left the node in %s", run.evicted, time.Since(start).Round(time.Millisecond))
		attrs := []any{"pods", run.evicted, "duration", time.Since(start).String()}
		if !run.lastAccepted.IsZero() {
			attrs = append(attrs, "evictions_accepted_after", run.lastAccepted.Sub(start).String())
		}
		log.Info("drain finished", attrs...)
		return nil
	}
	if ours {
		// The drain's context may be spent; the rollback gets its own.
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		derr.Uncordoned, derr.UncordonErr = c.Uncordon(uctx, node)
		ucancel()
	}
	c.Event(node, corev1.EventTypeWarning, ReasonDrainFailed, "%s", derr.eventMessage())
	log.Warn("drain failed", "reason", derr.Err.Error(), "blocking", blockingList(derr.Blocking, 10), "uncordoned", derr.Uncordoned)
	return derr
}

// FastDrain is Drain with FastDrainOptions, for spot interruptions.
func (c *Cluster) FastDrain(ctx context.Context, node string) error {
	return c.Drain(ctx, node, FastDrainOptions())
}

func (e *DrainError) eventMessage() string {
	msg := fmt.Sprintf("drain failed: %v", e.Err)
	if len(e.Blocking) > 0 {
		msg += "; blocked by " + blockingList(e.Blocking, 5)
	}
	if e.Uncordoned {
		msg += "; node uncordoned"
	}
	return msg
}
