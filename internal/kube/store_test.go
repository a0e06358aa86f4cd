package kube

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func replica(rs, name, node string, labels map[string]string) *corev1.Pod {
	p := testPod("shop", name, node)
	p.OwnerReferences[0].Name = rs
	p.Labels = labels
	p.Spec.Containers = []corev1.Container{{Name: "app", Resources: requests("100m", "64Mi")}}
	p.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
	return p
}

func TestStoreSharesTemplates(t *testing.T) {
	var st store
	stored := func(p *corev1.Pod) *podObj {
		t.Helper()
		o, err := st.transformPod(p)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*podObj)
	}
	web := map[string]string{"app": "web", "pod-template-hash": "7d9"}
	a := replica("web-7d9", "web-7d9-a", "n1", web)
	b := replica("web-7d9", "web-7d9-b", "n2", map[string]string{"app": "web", "pod-template-hash": "7d9"})
	c := replica("web-8f1", "web-8f1-c", "n1", map[string]string{"app": "web", "pod-template-hash": "8f1"})
	oa, ob, oc := stored(a), stored(b), stored(c)
	if oa.tpl != ob.tpl {
		t.Error("two replicas of one ReplicaSet do not share their template")
	}
	if oa.tpl == oc.tpl {
		t.Error("pods of different ReplicaSets share a template")
	}
	// What the snapshot hands out is what direct conversion gives.
	for _, tc := range []struct {
		pod *corev1.Pod
		obj *podObj
	}{{a, oa}, {b, ob}, {c, oc}} {
		if got, want := tc.obj.pod(), convertPod(tc.pod); !reflect.DeepEqual(got, want) {
			t.Errorf("stored %s:\n got %+v\nwant %+v", tc.pod.Name, got, want)
		}
	}
}

func TestTemplateKeyIsUnambiguous(t *testing.T) {
	// Same characters, different split between key and value.
	x := podTemplate{labels: map[string]string{"ab": "c"}}
	y := podTemplate{labels: map[string]string{"a": "bc"}}
	if x.key() == y.key() {
		t.Error("templates with different labels have one key")
	}
	u := podTemplate{labels: map[string]string{"k": "v"}}
	v := podTemplate{annotations: map[string]string{"k": "v"}}
	if u.key() == v.key() {
		t.Error("a label and an annotation have one key")
	}
}

func TestUnusedTemplatesAreForgotten(t *testing.T) {
	var st store
	func() {
		var keep []any
		for i := range 50 {
			o, err := st.transformPod(replica(fmt.Sprintf("rs-%d", i), fmt.Sprintf("p-%d", i), "n1", map[string]string{"i": fmt.Sprint(i)}))
			if err != nil {
				t.Fatal(err)
			}
			keep = append(keep, o)
		}
		if n := st.templates.len(); n != 50 {
			t.Fatalf("%d templates, want 50", n)
		}
		runtime.KeepAlive(keep)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for st.templates.len() > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := st.templates.len(); n != 0 {
		t.Errorf("%d templates still held after their pods were dropped", n)
	}
}
