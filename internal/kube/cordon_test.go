package kube

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

func TestCordonMarksOnlyItsOwn(t *testing.T) {
	ctx := context.Background()
	persons := testNode("persons")
	persons.Spec.Unschedulable = true
	f := newFakeAPI(testNode("free"), persons)
	c, _ := newTestCluster(t, f)

	ours, err := c.Cordon(ctx, "free")
	if err != nil || !ours {
		t.Fatalf("Cordon(free) = %v, %v; want ours", ours, err)
	}
	n := getNode(t, f, "free")
	if !n.Spec.Unschedulable || !CordonedBySmartScale(n) || !hasTaint(n, TaintDraining) {
		t.Errorf("cordoned node = %+v %v", n.Spec, n.Annotations)
	}
	// Again: still ours, still one taint.
	if ours, err := c.Cordon(ctx, "free"); err != nil || !ours {
		t.Fatalf("second Cordon = %v, %v", ours, err)
	}
	if n := getNode(t, f, "free"); len(n.Spec.Taints) != 1 {
		t.Errorf("taints after second cordon = %v", n.Spec.Taints)
	}

	ours, err = c.Cordon(ctx, "persons")
	if err != nil || ours {
		t.Fatalf("Cordon(persons) = %v, %v; want not ours", ours, err)
	}
	if n := getNode(t, f, "persons"); CordonedBySmartScale(n) || len(n.Spec.Taints) != 0 {
		t.Errorf("a person's cordon was marked as SmartScale's: %v %v", n.Annotations, n.Spec.Taints)
	}

	if done, err := c.Uncordon(ctx, "persons"); err != nil || done {
		t.Errorf("Uncordon(persons) = %v, %v; want left alone", done, err)
	}
	if !getNode(t, f, "persons").Spec.Unschedulable {
		t.Error("SmartScale uncordoned a person's node")
	}

	if done, err := c.Uncordon(ctx, "free"); err != nil || !done {
		t.Fatalf("Uncordon(free) = %v, %v", done, err)
	}
	n = getNode(t, f, "free")
	if n.Spec.Unschedulable || CordonedBySmartScale(n) || hasTaint(n, TaintDraining) {
		t.Errorf("uncordoned node keeps marks: %+v %v", n.Spec, n.Annotations)
	}
	if done, err := c.Uncordon(ctx, "missing"); err != nil || done {
		t.Errorf("Uncordon(missing) = %v, %v; want nothing to do", done, err)
	}
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	ourNode := func(name string) *corev1.Node {
		n := testNode(name)
		n.Spec.Unschedulable = true
		n.Annotations[AnnotationCordonedBy] = CordonedBy
		n.Spec.Taints = []corev1.Taint{{Key: TaintDraining, Value: CordonedBy, Effect: corev1.TaintEffectNoSchedule}}
		return n
	}
	persons := testNode("persons")
	persons.Spec.Unschedulable = true
	f := newFakeAPI(ourNode("rollback"), ourNode("finish"), ourNode("blocked"), persons, testNode("untouched"),
		testPod("shop", "web-1", "finish"), testPod("shop", "db-0", "blocked"), testPod("shop", "web-2", "persons"))
	f.hook = func(ev *policyv1.Eviction, _ int) (bool, error) {
		if ev.Name == "db-0" {
			return true, pdbRefusal("db")
		}
		return false, nil
	}
	c, _ := newTestCluster(t, f)

	for _, tc := range []struct {
		node        string
		finish      bool
		want        ResumeResult
		wantErr     bool
		cordoned    bool
		podsRemoved []string
	}{
		{node: "rollback", want: ResumeUncordoned},
		{node: "finish", finish: true, want: ResumeDrained, cordoned: true, podsRemoved: []string{"web-1"}},
		{node: "blocked", finish: true, want: ResumeUncordoned, wantErr: true},
		// A person's cordon: never uncordoned, never drained, even if asked.
		{node: "persons", want: ResumeNotOurs, cordoned: true},
		{node: "persons", finish: true, want: ResumeNotOurs, cordoned: true},
		{node: "untouched", finish: true, want: ResumeNotOurs},
		{node: "gone", finish: true, want: ResumeNodeGone},
	} {
		got, err := c.Resume(ctx, tc.node, ResumeOptions{Finish: tc.finish, Drain: DrainOptions{Timeout: time.Second}})
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("Resume(%s, finish=%v) = %q, %v; want %q (error %v)", tc.node, tc.finish, got, err, tc.want, tc.wantErr)
		}
		if tc.wantErr {
			var derr *DrainError
			if !errors.As(err, &derr) || len(derr.Blocking) == 0 {
				t.Errorf("Resume(%s) error %v does not name the blocking pod", tc.node, err)
			}
		}
		if tc.node == "gone" {
			continue
		}
		if n := getNode(t, f, tc.node); n.Spec.Unschedulable != tc.cordoned {
			t.Errorf("after Resume(%s): unschedulable = %v, want %v", tc.node, n.Spec.Unschedulable, tc.cordoned)
		}
		for _, p := range tc.podsRemoved {
			if podExists(t, f, "shop", p) {
				t.Errorf("after Resume(%s): pod %s still there", tc.node, p)
			}
		}
	}
	if !podExists(t, f, "shop", "web-2") {
		t.Error("Resume drained a node a person had cordoned")
	}
}

func TestDeleteNode(t *testing.T) {
	f := newFakeAPI(testNode("n1"))
	c, _ := newTestCluster(t, f)
	ctx := context.Background()
	if err := c.DeleteNode(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNode(ctx, "n1"); err != nil {
		t.Errorf("deleting a node that is already gone: %v", err)
	}
	if _, err := f.CoreV1().Nodes().Get(ctx, "n1", metav1GetOptions); err == nil {
		t.Error("node still exists")
	}
}
