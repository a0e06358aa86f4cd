package kube

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// The fake clientset implements neither the Eviction API nor PDBs; these
// tests cover the drain's own logic (what it evicts, how it reacts to each
// answer, what it rolls back) with evictions scripted per test. The
// behaviour against a real API server with real PDBs is in
// cluster_e2e_test.go.

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// fakeAPI is a fake clientset whose eviction subresource deletes the pod
// (honouring the UID precondition) unless a test's hook answers first.
type fakeAPI struct {
	*fake.Clientset
	mu        sync.Mutex
	evictions []*policyv1.Eviction
	// hook, if set, may answer an eviction itself (handled=true).
	hook  func(ev *policyv1.Eviction, attempt int) (handled bool, err error)
	tries map[string]int
}

func newFakeAPI(objs ...runtime.Object) *fakeAPI {
	f := &fakeAPI{Clientset: fake.NewClientset(objs...), tries: map[string]int{}}
	f.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		f.mu.Lock()
		f.evictions = append(f.evictions, ev.DeepCopy())
		key := ev.Namespace + "/" + ev.Name
		f.tries[key]++
		n, hook := f.tries[key], f.hook
		f.mu.Unlock()
		if hook != nil {
			if handled, err := hook(ev, n); handled {
				return true, nil, err
			}
		}
		return true, nil, f.evict(ev)
	})
	return f
}

func (f *fakeAPI) evict(ev *policyv1.Eviction) error {
	obj, err := f.Tracker().Get(podsGVR, ev.Namespace, ev.Name)
	if err != nil {
		return err
	}
	if pre := ev.DeleteOptions.Preconditions; pre != nil && pre.UID != nil && *pre.UID != obj.(*corev1.Pod).UID {
		return apierrors.NewConflict(podsGVR.GroupResource(), ev.Name, errUIDMismatch)
	}
	return f.Tracker().Delete(podsGVR, ev.Namespace, ev.Name)
}

var errUIDMismatch = errors.New("precondition failed: UID in precondition does not match")

func (f *fakeAPI) evicted() []*policyv1.Eviction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*policyv1.Eviction(nil), f.evictions...)
}

func newTestCluster(t *testing.T, f *fakeAPI) (*Cluster, *record.FakeRecorder) {
	t.Helper()
	rec := record.NewFakeRecorder(100)
	c, err := New(f, Options{Recorder: rec, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, rec
}

// events drains the recorder: "Type Reason message" lines.
func events(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func hasEvent(evs []string, typ, reason string) bool {
	for _, e := range evs {
		if strings.HasPrefix(e, typ+" "+reason+" ") {
			return true
		}
	}
	return false
}

func testNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annotationKwokNode: "fake"}}}
}

type podOpt func(*corev1.Pod)

func testPod(ns, name, node string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs-uid", Controller: new(true)}},
		},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func ownedBy(kind string) podOpt {
	return func(p *corev1.Pod) { p.OwnerReferences[0].Kind = kind }
}

func unmanaged(p *corev1.Pod) { p.OwnerReferences = nil }

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func mirror(p *corev1.Pod) {
	p.OwnerReferences = nil
	p.Annotations = map[string]string{annotationMirrorPod: "x"}
}

func getNode(t *testing.T, f *fakeAPI, name string) *corev1.Node {
	t.Helper()
	n, err := f.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func podExists(t *testing.T, f *fakeAPI, ns, name string) bool {
	t.Helper()
	_, err := f.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func pdbRefusal(name string) error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: policyv1.DisruptionBudgetCause, Message: "The disruption budget " + name + " needs 2 healthy pods and has 2 currently"}}
	return err
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
