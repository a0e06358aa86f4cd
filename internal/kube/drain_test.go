package kube

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

func TestDrainEvictsWhatItShouldAndOnlyThat(t *testing.T) {
	f := newFakeAPI(
		testNode("n1"), testNode("n2"),
		testPod("shop", "web-1", "n1"),
		testPod("shop", "web-2", "n1"),
		testPod("kube-system", "fluentbit-x", "n1", ownedBy("DaemonSet")),
		testPod("kube-system", "static-n1", "n1", mirror),
		testPod("batch", "job-done", "n1", ownedBy("Job"), phase(corev1.PodSucceeded)),
		testPod("shop", "web-3", "n2"),
	)
	c, rec := newTestCluster(t, f)

	if err := c.Drain(ctxTimeout(t, 10*time.Second), "n1", DrainOptions{Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("Drain: %v", err)
	}

	for _, gone := range []string{"shop/web-1", "shop/web-2", "batch/job-done"} {
		ns, name, _ := strings.Cut(gone, "/")
		if podExists(t, f, ns, name) {
			t.Errorf("%s still exists", gone)
		}
	}
	for _, kept := range []string{"kube-system/fluentbit-x", "kube-system/static-n1", "shop/web-3"} {
		ns, name, _ := strings.Cut(kept, "/")
		if !podExists(t, f, ns, name) {
			t.Errorf("%s was removed; a drain of n1 must leave it", kept)
		}
	}
	// Running pods went through the Eviction API with their UID as a
	// precondition; only the terminal pod was deleted directly.
	var evicted []string
	for _, ev := range f.evicted() {
		evicted = append(evicted, ev.Namespace+"/"+ev.Name)
		if pre := ev.DeleteOptions.Preconditions; pre == nil || pre.UID == nil || *pre.UID != types.UID("uid-"+ev.Name) {
			t.Errorf("eviction of %s lacks its UID precondition: %+v", ev.Name, ev.DeleteOptions)
		}
		if ev.DeleteOptions.GracePeriodSeconds != nil {
			t.Errorf("normal drain overrode the grace period of %s", ev.Name)
		}
	}
	slices.Sort(evicted)
	if want := []string{"shop/web-1", "shop/web-2"}; !slices.Equal(evicted, want) {
		t.Errorf("evicted %v, want %v", evicted, want)
	}
	var deleted []string
	for _, a := range f.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "pods" {
			deleted = append(deleted, d.GetNamespace()+"/"+d.GetName())
			if pre := d.GetDeleteOptions().Preconditions; pre == nil || pre.UID == nil {
				t.Errorf("delete of %s without UID precondition", d.GetName())
			}
		}
	}
	if want := []string{"batch/job-done"}; !slices.Equal(deleted, want) {
		t.Errorf("deleted directly %v, want only the terminal pod %v", deleted, want)
	}

	n := getNode(t, f, "n1")
	if !n.Spec.Unschedulable || !CordonedBySmartScale(n) || !hasTaint(n, TaintDraining) {
		t.Errorf("drained node should stay cordoned with SmartScale's marks: %+v %v", n.Spec, n.Annotations)
	}
	evs := events(rec)
	if !hasEvent(evs, "Normal", ReasonDrainStarted) || !hasEvent(evs, "Normal", ReasonDrained) {
		t.Errorf("events = %q, want DrainStarted and Drained", evs)
	}
}

func TestDrainRetriesPDBRefusals(t *testing.T) {
	f := newFakeAPI(testNode("n1"), testPod("shop", "web-1", "n1"), testPod("shop", "web-2", "n1"))
	f.hook = func(ev *policyv1.Eviction, attempt int) (bool, error) {
		if ev.Name == "web-1" && attempt <= 2 {
			return true, pdbRefusal("web")
		}
		return false, nil
	}
	c, _ := newTestCluster(t, f)
	if err := c.Drain(ctxTimeout(t, 10*time.Second), "n1", DrainOptions{Timeout: 8 * time.Second}); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	tries := 0
	for _, ev := range f.evicted() {
		if ev.Name == "web-1" {
			tries++
		}
	}
	if tries != 3 {
		t.Errorf("web-1 eviction attempts = %d, want 3 (two 429s, then accepted)", tries)
	}
	if podExists(t, f, "shop", "web-1") {
		t.Error("web-1 still exists")
	}
}

func TestDrainTimeoutUncordonsAndNamesBlocker(t *testing.T) {
	f := newFakeAPI(testNode("n1"), testPod("shop", "db-0", "n1"), testPod("shop", "web-1", "n1"))
	f.hook = func(ev *policyv1.Eviction, _ int) (bool, error) {
		if ev.Name == "db-0" {
			return true, pdbRefusal("db")
		}
		return false, nil
	}
	c, rec := newTestCluster(t, f)
	err := c.Drain(ctxTimeout(t, 10*time.Second), "n1", DrainOptions{Timeout: 1500 * time.Millisecond})

	var derr *DrainError
	if !errors.As(err, &derr) {
		t.Fatalf("Drain error = %v, want *DrainError", err)
	}
	if !errors.Is(err, ErrDrainTimeout) {
		t.Errorf("error %v does not wrap ErrDrainTimeout", err)
	}
	if len(derr.Blocking) != 1 || derr.Blocking[0].Name != "db-0" || !strings.Contains(derr.Blocking[0].Reason, "disruption budget") {
		t.Errorf("blocking = %+v, want db-0 refused by its disruption budget", derr.Blocking)
	}
	if !strings.Contains(err.Error(), "shop/db-0") {
		t.Errorf("error text %q does not name the blocking pod", err)
	}
	if !derr.Uncordoned {
		t.Error("Uncordoned = false")
	}
	n := getNode(t, f, "n1")
	if n.Spec.Unschedulable || CordonedBySmartScale(n) || hasTaint(n, TaintDraining) {
		t.Errorf("node not restored after failed drain: %+v %v", n.Spec, n.Annotations)
	}
	if evs := events(rec); !hasEvent(evs, "Warning", ReasonDrainFailed) {
		t.Errorf("events = %q, want a DrainFailed warning", evs)
	}
}

func TestFailedDrainLeavesPersonsCordon(t *testing.T) {
	n := testNode("n1")
	n.Spec.Unschedulable = true // kubectl cordon, by a person
	f := newFakeAPI(n, testPod("shop", "db-0", "n1"))
	f.hook = func(*policyv1.Eviction, int) (bool, error) { return true, pdbRefusal("db") }
	c, _ := newTestCluster(t, f)

	err := c.Drain(ctxTimeout(t, 10*time.Second), "n1", DrainOptions{Timeout: time.Second})
	var derr *DrainError
	if !errors.As(err, &derr) || derr.Uncordoned {
		t.Fatalf("Drain = %v, want a DrainError without uncordon", err)
	}
	got := getNode(t, f, "n1")
	if !got.Spec.Unschedulable {
		t.Error("SmartScale uncordoned a node a person had cordoned")
	}
	if CordonedBySmartScale(got) || hasTaint(got, TaintDraining) {
		t.Error("SmartScale marked a person's cordon as its own")
	}
}

func TestDrainRefusesUnmanagedPods(t *testing.T) {
	f := newFakeAPI(testNode("n1"), testPod("shop", "web-1", "n1"), testPod("default", "debug", "n1", unmanaged))
	c, rec := newTestCluster(t, f)

	err := c.Drain(ctxTimeout(t, 10*time.Second), "n1", DrainOptions{Timeout: 5 * time.Second})
	var derr *DrainError
	if !errors.As(err, &derr) || !errors.Is(err, ErrUnmanagedPod) {
		t.Fatalf("Drain = %v, want ErrUnmanagedPod", err)
	}
	if len(derr.Blocking) != 1 || derr.Blocking[0].Name != "debug" {
		t.Errorf("blocking = %+v, want the unmanaged pod", derr.Blocking)
	}
	if n := len(f.evicted()); n != 0 {
		t.Errorf("%d evictions sent before refusing; want none", n)
	}
	if !podExists(t, f, "default", "debug") || !podExists(t, f, "shop", "web-1") {
		t.Error("a refused drain removed pods")
	}
	if getNode(t, f, "n1").Spec.Unschedulable {
		t.Error("node left cordoned after refusing")
	}
	if evs := events(rec); !hasEvent(evs, "Warning", ReasonDrainFailed) {
		t.Errorf("events = %q, want DrainFailed", evs)
	}

	// Asked to, it evicts the pod — still through the Eviction API.
	if err := c.Drain(ctxTimeout(t, 10*time.Second), "n1", DrainOptions{Timeout: 5 * time.Second, AllowUnmanaged: true}); err != nil {
		t.Fatalf("Drain with AllowUnmanaged: %v", err)
	}
	if !slices.ContainsFunc(f.evicted(), func(ev *policyv1.Eviction) bool { return ev.Name == "debug" }) {
		t.Error("unmanaged pod removed without an eviction")
	}
}

func TestDrainHardErrorStops(t *testing.T) {
	f := newFakeAPI(testNode("n1"), testPod("shop", "web-1", "n1"))
	f.hook = func(ev *policyv1.Eviction, _ int) (bool, error) {
		return true, apierrors.NewForbidden(podsGVR.GroupResource(), ev.Name, errors.New("RBAC: no"))
	}
	c, _ := newTestCluster(t, f)
	start := time.Now()
	err := c.Drain(ctxTimeout(t, 10*time.Second), "n1", DrainOptions{Timeout: 5 * time.Second})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("Drain = %v, want the Forbidden error", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Error("a hard error was retried until the deadline")
	}
	var derr *DrainError
	if !errors.As(err, &derr) || len(derr.Blocking) != 1 || derr.Blocking[0].Name != "web-1" || !derr.Uncordoned {
		t.Errorf("DrainError = %+v", derr)
	}
}

func TestDrainConflictMeansGone(t *testing.T) {
	// The pod was replaced by a same-named successor (a StatefulSet pod
	// rescheduled elsewhere) between the LIST and the eviction: the UID
	// precondition fails with 409 and the successor is left alone.
	f := newFakeAPI(testNode("n1"), testPod("shop", "db-0", "n1"))
	f.hook = func(ev *policyv1.Eviction, _ int) (bool, error) {
		if err := f.Tracker().Delete(podsGVR, "shop", "db-0"); err != nil {
			return true, err
		}
		succ := testPod("shop", "db-0", "n2")
		succ.UID = "uid-successor"
		if err := f.Tracker().Add(succ); err != nil {
			return true, err
		}
		return false, nil // the default handler answers 409: UID mismatch
	}
	c, _ := newTestCluster(t, f)
	if err := c.Drain(ctxTimeout(t, 10*time.Second), "n1", DrainOptions{Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if !podExists(t, f, "shop", "db-0") {
		t.Error("the successor pod was removed")
	}
}

func TestFastDrainCapsGrace(t *testing.T) {
	long := func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = new(int64(600)) }
	short := func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = new(int64(10)) }
	f := newFakeAPI(testNode("n1"), testPod("shop", "slow", "n1", long), testPod("shop", "quick", "n1", short))
	c, _ := newTestCluster(t, f)
	if err := c.FastDrain(ctxTimeout(t, 10*time.Second), "n1"); err != nil {
		t.Fatalf("FastDrain: %v", err)
	}
	for _, ev := range f.evicted() {
		g := ev.DeleteOptions.GracePeriodSeconds
		switch ev.Name {
		case "slow":
			if g == nil || *g > int64((FastDrainTimeout-graceMargin)/time.Second) || *g < 60 {
				t.Errorf("slow pod grace = %v, want cut to fit the %s budget", g, FastDrainTimeout)
			}
		case "quick":
			if g != nil {
				t.Errorf("quick pod grace overridden to %d; it fits the budget", *g)
			}
		}
	}
}

func TestGracePeriod(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name  string
		opts  DrainOptions
		left  time.Duration
		grace int64
		want  int64 // -1: nil (pod's own)
	}{
		{"honoured", DrainOptions{}, time.Minute, 300, -1},
		{"capped", DrainOptions{MaxGracePeriod: 20 * time.Second}, time.Hour, 300, 20},
		{"below cap", DrainOptions{MaxGracePeriod: 20 * time.Second}, time.Hour, 5, -1},
		{"fit to deadline", DrainOptions{FitGraceToDeadline: true}, 40 * time.Second, 300, 34},
		{"never zero", DrainOptions{FitGraceToDeadline: true}, 2 * time.Second, 30, 1},
		{"pod asks for zero", DrainOptions{FitGraceToDeadline: true}, time.Minute, 0, -1},
	} {
		r := &drainRun{opts: tc.opts, deadline: now.Add(tc.left)}
		got := r.gracePeriod(drainPod{grace: tc.grace})
		switch {
		case tc.want == -1 && got != nil:
			t.Errorf("%s: grace = %d, want the pod's own", tc.name, *got)
		case tc.want != -1 && (got == nil || *got < tc.want-1 || *got > tc.want):
			t.Errorf("%s: grace = %v, want %d", tc.name, got, tc.want)
		}
	}
}

func TestRetriable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewServiceUnavailable("down"), true},
		{apierrors.NewTimeoutError("slow", 1), true},
		{apierrors.NewInternalError(errors.New("etcd hiccup")), true},
		{apierrors.NewInternalError(errors.New("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")), false},
		{apierrors.NewForbidden(podsGVR.GroupResource(), "x", errors.New("no")), false},
		{apierrors.NewBadRequest("bad"), false},
	} {
		if got := retriable(tc.err); got != tc.want {
			t.Errorf("retriable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
