package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// Backoff of a refused or failed eviction. A PodDisruptionBudget with
// maxUnavailable 1 typically allows the next eviction a second or two after
// the previous one, once the replacement is Ready; kubectl waits a fixed 5 s.
const (
	retryBase = 250 * time.Millisecond
	retryMax  = 5 * time.Second
)

type podStage int

const (
	stageQueued   podStage = iota // waiting for a worker
	stageInFlight                 // a worker is sending its eviction
	stageBackoff                  // refused (429) or failed transiently; retry scheduled
	stageEvicted                  // accepted (or already terminating): waiting for it to disappear
	stageGone
)

// drainPod is one pod the drain is responsible for removing.
type drainPod struct {
	namespace, name string
	uid             types.UID
	grace           int64 // terminationGracePeriodSeconds
	terminal        bool  // Succeeded/Failed: deleted, not evicted
	stage           podStage
	attempts        int
	reason          string // why it is not gone yet, for the error
}

type outcome int

const (
	outEvicted outcome = iota
	outGone
	outRetry
	outFailed
)

type attemptResult struct {
	uid        types.UID
	outcome    outcome
	err        error
	reason     string
	retryAfter time.Duration
}

// drainRun is the state of one drain after the cordon: the pods to remove
// and where each one stands. Only the run loop touches it; workers get
// copies and send results back.
type drainRun struct {
	client   kubernetes.Interface
	node     string
	opts     DrainOptions
	deadline time.Time
	log      *slog.Logger

	pods    map[types.UID]*drainPod
	queue   []types.UID
	refused []BlockingPod
	evicted int // pods that left the node
	// lastAccepted is when the last eviction was accepted: the rest of the
	// drain is waiting for pods to terminate.
	lastAccepted time.Time
}

func (r *drainRun) run(ctx context.Context) *DrainError {
	r.pods = map[types.UID]*drainPod{}
	sel := fields.OneTermEqualSelector("spec.nodeName", r.node).String()
	// The LIST is fresh from the API server, not the informer cache, so a
	// pod scheduled a moment ago is not missed; the watch then continues
	// from the LIST's resource version, so no deletion or arrival is missed.
	rv, err := r.list(ctx, sel)
	if err != nil {
		return r.failed(ctx, err)
	}
	if len(r.refused) > 0 {
		return &DrainError{Node: r.node, Err: ErrUnmanagedPod, Blocking: r.refused}
	}
	if r.remaining() == 0 {
		return nil
	}

	wctx, cancel := context.WithCancel(ctx)
	jobs := make(chan drainPod)
	results := make(chan attemptResult)
	retry := make(chan types.UID)
	var wg sync.WaitGroup
	for range r.opts.Workers {
		wg.Go(func() {
			for p := range jobs {
				res := r.attempt(wctx, p)
				select {
				case results <- res:
				case <-wctx.Done():
					return
				}
			}
		})
	}
	var w watch.Interface
	defer func() {
		cancel()
		close(jobs)
		wg.Wait()
		if w != nil {
			w.Stop()
		}
	}()

	if w, err = r.watch(ctx, sel, rv); err != nil {
		return r.failed(ctx, err)
	}
	for r.remaining() > 0 {
		for len(r.queue) > 0 && r.pods[r.queue[0]].stage != stageQueued {
			r.queue = r.queue[1:]
		}
		var (
			out  chan drainPod
			next drainPod
		)
		if len(r.queue) > 0 {
			out, next = jobs, *r.pods[r.queue[0]]
		}
		select {
		case out <- next:
			r.queue = r.queue[1:]
			r.pods[next.uid].stage = stageInFlight
		case res := <-results:
			if derr := r.handle(wctx, res, retry); derr != nil {
				return derr
			}
		case uid := <-retry:
			if p := r.pods[uid]; p.stage == stageBackoff {
				p.stage = stageQueued
				r.queue = append(r.queue, uid)
			}
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				// Watch closed or expired: catch up with a fresh LIST.
				w.Stop()
				w = nil
				if rv, err = r.relist(ctx, sel); err != nil {
					return r.failed(ctx, err)
				}
				if w, err = r.watch(ctx, sel, rv); err != nil {
					return r.failed(ctx, err)
				}
			} else {
				r.observe(ev)
			}
			if len(r.refused) > 0 {
				return &DrainError{Node: r.node, Err: ErrUnmanagedPod, Blocking: r.refused}
			}
		case <-ctx.Done():
			return r.failed(ctx, ctx.Err())
		}
	}
	return nil
}

func (r *drainRun) remaining() int {
	n := 0
	for _, p := range r.pods {
		if p.stage != stageGone {
			n++
		}
	}
	return n
}

func (r *drainRun) list(ctx context.Context, sel string) (string, error) {
	list, err := r.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return "", fmt.Errorf("list pods on node %s: %w", r.node, err)
	}
	for i := range list.Items {
		r.consider(&list.Items[i])
	}
	return list.ResourceVersion, nil
}

// relist reconciles after a lost watch: tracked pods missing from the new
// LIST are gone; pods new to the node are taken on.
func (r *drainRun) relist(ctx context.Context, sel string) (string, error) {
	for {
		list, err := r.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err == nil {
			present := map[types.UID]bool{}
			for i := range list.Items {
				present[list.Items[i].UID] = true
				r.consider(&list.Items[i])
			}
			for uid, p := range r.pods {
				if !present[uid] && p.stage != stageGone {
					r.gone(p)
				}
			}
			return list.ResourceVersion, nil
		}
		if !retriable(err) {
			return "", fmt.Errorf("relist pods on node %s: %w", r.node, err)
		}
		r.log.Warn("relist pods failed, retrying", "reason", err.Error())
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (r *drainRun) watch(ctx context.Context, sel, rv string) (watch.Interface, error) {
	w, err := r.client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{
		FieldSelector: sel, ResourceVersion: rv, AllowWatchBookmarks: true,
	})
	if err != nil {
		return nil, fmt.Errorf("watch pods on node %s: %w", r.node, err)
	}
	return w, nil
}

func (r *drainRun) observe(ev watch.Event) {
	pod, ok := ev.Object.(*corev1.Pod)
	if !ok {
		return
	}
	switch ev.Type {
	case watch.Deleted:
		if p := r.pods[pod.UID]; p != nil && p.stage != stageGone {
			r.gone(p)
		}
	case watch.Added, watch.Modified:
		r.consider(pod)
	}
}

func (r *drainRun) gone(p *drainPod) {
	p.stage = stageGone
	r.evicted++
}

// consider takes on a pod found on the node, unless it is already tracked
// or is one a drain leaves alone.
func (r *drainRun) consider(pod *corev1.Pod) {
	if _, ok := r.pods[pod.UID]; ok || pod.Spec.NodeName != r.node {
		return
	}
	switch {
	case isMirror(pod), isDaemonSetPod(pod):
		return
	}
	p := &drainPod{namespace: pod.Namespace, name: pod.Name, uid: pod.UID, grace: defaultGracePeriodSecond}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		p.grace = *g
	}
	switch {
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		p.terminal = true
	case pod.DeletionTimestamp != nil:
		// Already on its way out: wait for it, do not evict again.
		p.stage = stageEvicted
		p.reason = "terminating"
	case metav1.GetControllerOf(pod) == nil && !r.opts.AllowUnmanaged:
		r.refused = append(r.refused, BlockingPod{Namespace: pod.Namespace, Name: pod.Name, Reason: "no controller: it would not be recreated"})
		return
	}
	r.pods[pod.UID] = p
	if p.stage == stageQueued {
		r.queue = append(r.queue, pod.UID)
	}
}

func isMirror(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[annotationMirrorPod]
	return ok
}

func isDaemonSetPod(pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.Kind == kindDaemonSet
}

// attempt sends one eviction (or, for a terminal pod, one deletion), with
// the pod's UID as a precondition so a same-named successor is never hit.
func (r *drainRun) attempt(ctx context.Context, p drainPod) attemptResult {
	pre := &metav1.Preconditions{UID: &p.uid}
	var err error
	if p.terminal {
		err = r.client.CoreV1().Pods(p.namespace).Delete(ctx, p.name, metav1.DeleteOptions{Preconditions: pre})
	} else {
		err = r.client.PolicyV1().Evictions(p.namespace).Evict(ctx, &policyv1.Eviction{
			ObjectMeta:    metav1.ObjectMeta{Namespace: p.namespace, Name: p.name},
			DeleteOptions: &metav1.DeleteOptions{Preconditions: pre, GracePeriodSeconds: r.gracePeriod(p)},
		})
	}
	res := attemptResult{uid: p.uid}
	switch {
	case err == nil:
		res.outcome = outEvicted
	case apierrors.IsNotFound(err):
		res.outcome = outGone
	case apierrors.IsConflict(err):
		// The UID precondition failed: the name now belongs to another pod,
		// so ours is gone. Confirm, since 409 is also a write conflict.
		cur, gerr := r.client.CoreV1().Pods(p.namespace).Get(ctx, p.name, metav1.GetOptions{})
		if apierrors.IsNotFound(gerr) || (gerr == nil && cur.UID != p.uid) {
			res.outcome = outGone
		} else {
			res.outcome, res.reason = outRetry, "conflict: "+statusMessage(err)
		}
	case apierrors.IsTooManyRequests(err):
		// A PodDisruptionBudget says not yet (or the server is shedding load).
		res.outcome, res.reason = outRetry, statusMessage(err)
		if s, ok := apierrors.SuggestsClientDelay(err); ok {
			res.retryAfter = time.Duration(s) * time.Second
		}
	case apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// Its namespace is being deleted, and the pod with it.
		res.outcome = outEvicted
	case ctx.Err() != nil || retriable(err):
		res.outcome, res.reason = outRetry, err.Error()
	default:
		res.outcome, res.err = outFailed, err
	}
	return res
}

// gracePeriod is the grace period to ask for, or nil for the pod's own.
func (r *drainRun) gracePeriod(p drainPod) *int64 {
	g := p.grace
	if r.opts.MaxGracePeriod > 0 {
		g = min(g, int64(r.opts.MaxGracePeriod/time.Second))
	}
	if r.opts.FitGraceToDeadline {
		g = min(g, int64((time.Until(r.deadline)-graceMargin)/time.Second))
	}
	if g >= p.grace {
		return nil
	}
	// Zero would remove the pod without waiting for its containers to stop.
	g = max(g, 1)
	return &g
}

func (r *drainRun) handle(ctx context.Context, res attemptResult, retry chan<- types.UID) *DrainError {
	p := r.pods[res.uid]
	if p.stage == stageGone {
		return nil
	}
	switch res.outcome {
	case outEvicted:
		p.stage, p.reason = stageEvicted, "evicted, still terminating"
		r.lastAccepted = time.Now()
	case outGone:
		r.gone(p)
	case outRetry:
		p.stage, p.reason = stageBackoff, res.reason
		p.attempts++
		delay := max(backoff(p.attempts), res.retryAfter)
		r.log.Debug("eviction refused, will retry", "pod", p.namespace+"/"+p.name, "reason", res.reason, "retry_in", delay.String())
		uid := p.uid
		time.AfterFunc(delay, func() {
			select {
			case retry <- uid:
			case <-ctx.Done():
			}
		})
	case outFailed:
		return &DrainError{
			Node:     r.node,
			Err:      fmt.Errorf("evict pod %s/%s: %w", p.namespace, p.name, res.err),
			Blocking: []BlockingPod{{Namespace: p.namespace, Name: p.name, Reason: res.err.Error()}},
		}
	}
	return nil
}

func backoff(attempt int) time.Duration {
	d := retryMax
	if attempt < 8 {
		d = min(retryBase<<(attempt-1), retryMax)
	}
	// Jitter keeps many blocked pods from retrying in lockstep.
	return d + rand.N(d/5+1)
}

// failed turns a stop of the run into a DrainError naming every pod still
// on the node.
func (r *drainRun) failed(ctx context.Context, err error) *DrainError {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = ErrDrainTimeout
	}
	derr := &DrainError{Node: r.node, Err: err}
	for _, p := range r.pods {
		if p.stage == stageGone {
			continue
		}
		reason := p.reason
		if reason == "" {
			reason = "not evicted yet"
		}
		derr.Blocking = append(derr.Blocking, BlockingPod{Namespace: p.namespace, Name: p.name, Reason: reason})
	}
	slices.SortFunc(derr.Blocking, func(a, b BlockingPod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return derr
}

// retriable: errors a later attempt can get past (the API server briefly
// unavailable or overloaded).
func retriable(err error) bool {
	switch {
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsUnexpectedServerError(err), apierrors.IsTooManyRequests(err):
		return true
	case apierrors.IsInternalError(err):
		// Two PDBs selecting one pod is a configuration error the Eviction
		// API reports as a 500; retrying cannot fix it.
		return !strings.Contains(statusMessage(err), "more than one PodDisruptionBudget")
	case utilnet.IsConnectionRefused(err), utilnet.IsConnectionReset(err), utilnet.IsProbableEOF(err):
		return true
	}
	return false
}

func statusMessage(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Message != "" {
		return st.Status().Message
	}
	return err.Error()
}
