package stack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/e2e/nodeexporter"
	"github.com/smartscale/smartscale/e2e/stack"
)

// webhookSink records the alerts Alertmanager delivers.
type webhookSink struct {
	mu     sync.Mutex
	alerts []sinkAlert
}

type sinkAlert struct {
	Status string            `json:"status"`
	Labels map[string]string `json:"labels"`
}

func (w *webhookSink) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var msg struct {
		Version string      `json:"version"`
		Alerts  []sinkAlert `json:"alerts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.alerts = append(w.alerts, msg.Alerts...)
	w.mu.Unlock()
}

func (w *webhookSink) find(name, status string) (sinkAlert, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		if a.Labels["alertname"] == name && a.Status == status {
			return a, true
		}
	}
	return sinkAlert{}, false
}

// The rule joins the node-exporter stand-in's CPU counters to the node group
// label kube-state-metrics exports, as the real recording rules do.
const testRules = `groups:
- name: stack-test
  rules:
  - alert: WorkersCPUBusy
    expr: |
      sum by (label_smartscale_io_nodegroup) (
        rate(node_cpu_seconds_total{mode!="idle"}[5s])
        * on (node) group_left (label_smartscale_io_nodegroup) kube_node_labels
      ) > 1
    for: 2s
    labels:
      severity: warning
`

func TestWholeStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	sink := &webhookSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	rules := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(rules, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := stack.All()
	opts.RuleFiles = []string{rules}
	opts.AlertmanagerConfig = fmt.Sprintf(`route:
  receiver: sink
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: sink
  webhook_configs:
  - url: %s/alerts
`, srv.URL)
	opts.KwokNodes = []stack.NodeSpec{
		{Name: "worker-a", Zone: "us-east-1a", NodeGroup: "workers", CPU: "4", Memory: "8Gi"},
		{Name: "worker-b", Zone: "us-east-1b", NodeGroup: "workers", CPU: "4", Memory: "8Gi"},
	}
	start := time.Now()
	s := stack.Start(t, opts)
	t.Logf("whole stack start to all-ready: %s", time.Since(start).Round(time.Millisecond))
	kc := s.Client()

	t.Run("dynalite conditional write", func(t *testing.T) {
		db := s.DynamoClient()
		createTable(ctx, t, db, "state")
		if err := putLock(ctx, db, "state", "a"); err != nil {
			t.Fatal(err)
		}
		var ccf *types.ConditionalCheckFailedException
		if err := putLock(ctx, db, "state", "b"); !errors.As(err, &ccf) {
			t.Fatalf("want ConditionalCheckFailedException, got %v", err)
		}
	})

	ns := "e2e"
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "default ServiceAccount in "+ns, func(ctx context.Context) (bool, error) {
		_, err := kc.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})

	t.Run("deployment of 5 runs on two kwok nodes", func(t *testing.T) {
		if _, err := kc.AppsV1().Deployments(ns).Create(ctx, webDeployment(5), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "5 web pods Running on both nodes", func(ctx context.Context) (bool, error) {
			pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			nodes := map[string]int{}
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning {
					nodes[p.Spec.NodeName]++
				}
			}
			return nodes["worker-a"]+nodes["worker-b"] == 5 && nodes["worker-a"] > 0 && nodes["worker-b"] > 0, nil
		})
	})

	t.Run("PDB status and evictions", func(t *testing.T) {
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: policyv1.PodDisruptionBudgetSpec{
				MinAvailable: ptr(intstr.FromInt32(5)),
				Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			},
		}
		if _, err := kc.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "PDB status computed", func(ctx context.Context) (bool, error) {
			p, err := kc.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			st := p.Status
			return st.ObservedGeneration == p.Generation && st.ExpectedPods == 5 && st.CurrentHealthy == 5 && st.DesiredHealthy == 5, nil
		})

		pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) == 0 {
			t.Fatalf("list web pods: %v", err)
		}
		err = evict(ctx, kc, pods.Items[0])
		if !apierrors.IsTooManyRequests(err) {
			t.Fatalf("evicting a PDB-protected pod: want 429, got %v", err)
		}

		loner := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "loner", Namespace: ns},
			Spec: corev1.PodSpec{
				Containers:  []corev1.Container{{Name: "c", Image: "busybox"}},
				Tolerations: kwokTolerations(),
			},
		}
		if _, err := kc.CoreV1().Pods(ns).Create(ctx, loner, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var running *corev1.Pod
		waitFor(ctx, t, "loner Running", func(ctx context.Context) (bool, error) {
			p, err := kc.CoreV1().Pods(ns).Get(ctx, "loner", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			running = p
			return p.Status.Phase == corev1.PodRunning, nil
		})
		if err := evict(ctx, kc, *running); err != nil {
			t.Fatalf("evicting an unprotected pod: %v", err)
		}
		waitFor(ctx, t, "evicted pod gone", func(ctx context.Context) (bool, error) {
			_, err := kc.CoreV1().Pods(ns).Get(ctx, "loner", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})

	t.Run("prometheus scrapes kube-state-metrics and the node-exporter stand-in", func(t *testing.T) {
		waitFor(ctx, t, "kube_pod_status_phase of the 5 running web pods", func(ctx context.Context) (bool, error) {
			r, err := s.Query(ctx, `sum(kube_pod_status_phase{namespace="e2e",pod=~"web-.*",phase="Running"})`)
			return err == nil && len(r) == 1 && r[0].Value == 5, nil
		})
		waitFor(ctx, t, "node_cpu_seconds_total for both nodes (4 cpus each)", func(ctx context.Context) (bool, error) {
			r, err := s.Query(ctx, `count by (node) (node_cpu_seconds_total{job="node-exporter",mode="idle"})`)
			if err != nil {
				return false, err
			}
			if len(r) != 2 || r[0].Value != 4 || r[1].Value != 4 {
				return false, fmt.Errorf("cpus per node: %v", r)
			}
			return true, nil
		})
	})

	t.Run("alert fires and Alertmanager delivers it to the webhook", func(t *testing.T) {
		waitFor(ctx, t, "WorkersCPUBusy delivered", func(context.Context) (bool, error) {
			a, ok := sink.find("WorkersCPUBusy", "firing")
			return ok && a.Labels["label_smartscale_io_nodegroup"] == "workers", nil
		})
	})

	pids := s.PIDs()
	if len(pids) != 9 { // dynalite etcd apiserver cm scheduler kwok ksm prometheus alertmanager
		t.Errorf("running child processes: %d, want 9", len(pids))
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, pids)
}

func webDeployment(replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: labels,
					// 5 × 0.5 busy cores on the workers: above the rule's 1.
					Annotations: map[string]string{nodeexporter.AnnotationCPUUsage: "500m"},
				},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "web", Image: "nginx",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("500m"),
						}},
					}},
					Tolerations: kwokTolerations(),
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname",
						WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}
}

// kwokTolerations: kwok nodes carry no taints here, but pods scheduled on
// them in other setups tolerate kwok's conventional one.
func kwokTolerations() []corev1.Toleration {
	return []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
}

func evict(ctx context.Context, kc kubernetes.Interface, p corev1.Pod) error {
	return kc.CoreV1().Pods(p.Namespace).EvictV1(ctx, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}},
	})
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	start := time.Now()
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			lastErr = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last error: %v)", what, err, lastErr)
	}
	t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
}

func ptr[T any](v T) *T { return &v }
