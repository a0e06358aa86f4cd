// Package kubebench holds the benchmarks of internal/kube that need a real
// API server and more objects than a unit test should create:
//
//	go test -run '^$' -bench BenchmarkDrain -benchtime 3x -timeout 30m ./e2e/bench/kube
//	go test -run '^$' -bench BenchmarkSnapshotMemory -benchtime 1x -timeout 60m ./e2e/bench/kube
//
// Figures are recorded in docs/benchmarks.md, section "Kube".
package kubebench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/kube"
)

// setupClient creates fixtures fast: the rate limits of a bulk loader, not
// of SmartScale.
func setupClient(b *testing.B, s *stack.Stack) kubernetes.Interface {
	b.Helper()
	cfg := kube.Tune(s.RESTConfig())
	cfg.QPS, cfg.Burst = 1000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

func ensureNamespace(b *testing.B, ctx context.Context, client kubernetes.Interface, ns string) {
	b.Helper()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
}

// BenchmarkDrain drains a kwok node running 100 pods of a Deployment (no
// blocking PDB, a DaemonSet pod that stays) with SmartScale and with
// `kubectl drain --ignore-daemonsets --delete-emptydir-data`, side by side
// on the same API server. Each drain gets a fresh node; setup and cleanup
// are outside the timer. Goal: SmartScale ≤ 1.0× kubectl's wall time.
func BenchmarkDrain(b *testing.B) {
	kubectl, err := stack.ToolPath("kubectl")
	if err != nil {
		b.Fatal(err)
	}
	s := stack.Start(b, stack.Options{Kwok: true})
	client := setupClient(b, s)
	ctx := context.Background()
	const ns, pods = "bench-drain", 100
	ensureNamespace(b, ctx, client, ns)
	createDaemonSet(b, ctx, client, ns)

	cs, err := kubernetes.NewForConfig(kube.Tune(s.RESTConfig()))
	if err != nil {
		b.Fatal(err)
	}
	c, err := kube.New(cs, kube.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)

	cacheDir := b.TempDir()
	kubectlArgs := func(args ...string) []string {
		return append([]string{"--kubeconfig", s.KubeconfigPath, "--cache-dir", cacheDir}, args...)
	}
	// Warm kubectl's discovery cache, as on an operator's machine.
	if out, err := exec.Command(kubectl, kubectlArgs("get", "nodes")...).CombinedOutput(); err != nil {
		b.Fatalf("kubectl get nodes: %v\n%s", err, out)
	}

	var seq atomic.Int64
	bench := func(b *testing.B, drain func(ctx context.Context, node string) error) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			node := fmt.Sprintf("drain-%d", seq.Add(1))
			setupDrainNode(b, ctx, s, client, ns, node, pods)
			b.StartTimer()
			start := time.Now()
			err := drain(ctx, node)
			elapsed := time.Since(start)
			b.StopTimer()
			if err != nil {
				b.Fatalf("drain %s: %v", node, err)
			}
			if left := podsOnNode(b, ctx, client, node); left != 0 {
				b.Fatalf("%d pods left on %s after the drain", left, node)
			}
			total += elapsed
			cleanupDrainNode(b, ctx, client, ns, node)
			b.StartTimer()
		}
		b.ReportMetric(total.Seconds()/float64(b.N), "s/drain")
	}
	b.Run("smartscale", func(b *testing.B) {
		bench(b, func(ctx context.Context, node string) error {
			return c.Drain(ctx, node, kube.DrainOptions{})
		})
	})
	b.Run("kubectl", func(b *testing.B) {
		bench(b, func(ctx context.Context, node string) error {
			out, err := exec.CommandContext(ctx, kubectl, kubectlArgs("drain", node,
				"--ignore-daemonsets", "--delete-emptydir-data", "--timeout=5m")...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%w\n%s", err, out)
			}
			return nil
		})
	})
}

func createDaemonSet(b *testing.B, ctx context.Context, client kubernetes.Interface, ns string) {
	b.Helper()
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{kube.LabelNodeGroup: "bench"},
					Containers:   []corev1.Container{{Name: "agent", Image: "registry.example/agent:1"}},
				},
			},
		},
	}
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// setupDrainNode creates a kwok node and a Deployment of n pods pinned to
// it (pods with an emptyDir, which kubectl needs --delete-emptydir-data
// for), and waits until all n are Running and Ready, with the DaemonSet pod.
func setupDrainNode(b *testing.B, ctx context.Context, s *stack.Stack, client kubernetes.Interface, ns, node string, n int32) {
	b.Helper()
	if err := s.CreateNodes(ctx, stack.NodeSpec{Name: node, NodeGroup: "bench", CPU: "64", Memory: "256Gi", Pods: "110"}); err != nil {
		b.Fatal(err)
	}
	labels := map[string]string{"app": node}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: node},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/hostname": node},
					Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
						}}}},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	want := int(n) + 1 // and the DaemonSet pod
	var ready int
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
		if err != nil {
			return false, err
		}
		ready = 0
		for _, p := range list.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == want, nil
	})
	if err != nil {
		b.Fatalf("node %s: %d of %d pods Ready: %v", node, ready, want, err)
	}
}

// podsOnNode counts the pods left on node other than DaemonSet pods.
func podsOnNode(b *testing.B, ctx context.Context, client kubernetes.Interface, node string) int {
	b.Helper()
	list, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.Kind != "DaemonSet" {
			n++
		}
	}
	return n
}

// cleanupDrainNode removes the Deployment (its replacements sit Pending,
// pinned to the cordoned node) and the node, and waits until the pods are
// gone, so the next drain starts from the same state.
func cleanupDrainNode(b *testing.B, ctx context.Context, client kubernetes.Interface, ns, node string) {
	b.Helper()
	fg := metav1.DeletePropagationForeground
	if err := client.AppsV1().Deployments(ns).Delete(ctx, node, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		b.Fatal(err)
	}
	if err := client.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + node})
		return err == nil && len(list.Items) == 0, nil
	})
	if err != nil {
		b.Fatalf("pods of %s not cleaned up: %v", node, err)
	}
}

// BenchmarkSnapshotMemory fills the API server with 1000 kwok nodes and
// 30 000 pods (30 per node, bound to it, run by kwok, so they carry the
// status, owner references and managed fields of real pods; see populate), then runs e2e/bench/kube/rss — a process that only syncs
// internal/kube's informers — and reports its RSS after the sync.
// Goal: ≤ 100 MiB.
func BenchmarkSnapshotMemory(b *testing.B) {
	const nodes, podsPerNode = 1000, 30
	bin := buildRSS(b)
	s := stack.Start(b, stack.Options{Kwok: true})
	client := setupClient(b, s)
	ctx := context.Background()

	start := time.Now()
	populate(b, ctx, s, client, nodes, podsPerNode)
	b.Logf("populated %d nodes, %d pods in %s", nodes, nodes*podsPerNode, time.Since(start).Round(time.Second))
	// Populating takes minutes: SMARTSCALE_KUBE_BENCH_HOLD=30m keeps the
	// cluster up that long for running rss by hand (say with -heapprofile).
	if hold, err := time.ParseDuration(os.Getenv("SMARTSCALE_KUBE_BENCH_HOLD")); err == nil {
		b.Logf("holding the cluster for %s: %s --kubeconfig %s", hold, bin, s.KubeconfigPath)
		time.Sleep(hold)
	}

	b.ResetTimer()
	var last result
	for i := 0; i < b.N; i++ {
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, "--kubeconfig", s.KubeconfigPath, "--group", "group-3", "--settle", "10s")
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			b.Fatalf("rss: %v\n%s", err, errb.String())
		}
		if err := json.Unmarshal(out.Bytes(), &last); err != nil {
			b.Fatalf("rss output %q: %v", out.String(), err)
		}
		if last.Nodes != nodes || last.Pods != nodes*podsPerNode {
			b.Fatalf("rss saw %d nodes, %d pods; want %d, %d", last.Nodes, last.Pods, nodes, nodes*podsPerNode)
		}
	}
	b.StopTimer()
	b.Logf("%+v", last)
	b.ReportMetric(last.RSSAfterSyncMiB, "MiB-rss-synced")
	b.ReportMetric(last.RSSSettledMiB, "MiB-rss-settled")
	b.ReportMetric(last.PeakRSSMiB, "MiB-rss-peak")
	b.ReportMetric(last.HeapInuseMiB, "MiB-heap-inuse")
	b.ReportMetric(last.LiveHeapMiB, "MiB-heap-live")
	b.ReportMetric(last.SyncSeconds, "s-sync")
	b.ReportMetric(last.SnapshotAllMs, "ms-snapshot-all")
	b.ReportMetric(last.SnapshotGroupMs, "ms-snapshot-group")
}

// result mirrors the JSON line of e2e/bench/kube/rss.
type result struct {
	Nodes, Pods, PDBs int
	GroupNodes        int
	GroupPods         int
	SyncSeconds       float64
	RSSAfterSyncMiB   float64
	RSSSettledMiB     float64
	PeakRSSMiB        float64
	HeapInuseMiB      float64
	LiveHeapMiB       float64
	SnapshotAllMs     float64
	SnapshotGroupMs   float64
}

func buildRSS(b *testing.B) string {
	b.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		b.Fatal("cannot locate the benchmark's source folder")
	}
	bin := filepath.Join(b.TempDir(), "rss")
	cmd := exec.Command("go", "build", "-o", bin, "./rss")
	cmd.Dir = filepath.Dir(file)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build rss: %v\n%s", err, out)
	}
	return bin
}

// populate creates the nodes (10 groups over 3 zones, a third spot) and 30
// pods per node, bound to it, and waits until kwok runs every pod. Each
// node's pods belong to a ReplicationController, whose controller the stack
// does not run: the pods carry a controller owner reference as a
// ReplicaSet's do, but are created here at bulk speed instead of by a
// kube-controller-manager paced at 20 requests/s (25 minutes for 30 000).
func populate(b *testing.B, ctx context.Context, s *stack.Stack, client kubernetes.Interface, nodes, podsPerNode int) {
	b.Helper()
	const ns = "bench-rss"
	ensureNamespace(b, ctx, client, ns)
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	parallel(b, nodes, 32, func(i int) error {
		spec := stack.NodeSpec{
			Name: fmt.Sprintf("rss-node-%04d", i), Zone: zones[i%3], NodeGroup: fmt.Sprintf("group-%d", i%10),
			Market: []string{"spot", "on-demand", "on-demand"}[i%3], CPU: "8", Memory: "32Gi", Pods: "110",
		}
		n := spec.Node()
		n.Spec.ProviderID = fmt.Sprintf("aws:///%s/i-%017x", spec.Zone, i)
		_, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		return err
	})
	replicas := int32(podsPerNode)
	owners := make([]metav1.OwnerReference, nodes)
	templates := make([]corev1.PodTemplateSpec, nodes)
	parallel(b, nodes, 32, func(i int) error {
		labels := map[string]string{"app": fmt.Sprintf("svc-%d", i%50), "pod-template-hash": fmt.Sprintf("%08x", i), "tier": "web"}
		templates[i] = podTemplate(labels)
		rc := &corev1.ReplicationController{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("svc-%04d", i), Labels: labels},
			Spec:       corev1.ReplicationControllerSpec{Replicas: &replicas, Selector: labels, Template: &templates[i]},
		}
		created, err := client.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		owners[i] = metav1.OwnerReference{APIVersion: "v1", Kind: "ReplicationController", Name: created.Name, UID: created.UID,
			Controller: new(true), BlockOwnerDeletion: new(true)}
		return nil
	})
	parallel(b, nodes*podsPerNode, 64, func(j int) error {
		i := j / podsPerNode
		t := templates[i]
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: fmt.Sprintf("%s-%05x", owners[i].Name, j),
				Labels: t.Labels, Annotations: t.Annotations, OwnerReferences: []metav1.OwnerReference{owners[i]},
			},
			Spec: *t.Spec.DeepCopy(),
		}
		p.Spec.NodeName = fmt.Sprintf("rss-node-%04d", i)
		_, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		return err
	})
	want := nodes * podsPerNode
	var ready int
	err := wait.PollUntilContextTimeout(ctx, 10*time.Second, 30*time.Minute, true, func(ctx context.Context) (bool, error) {
		ready = 0
		opts := metav1.ListOptions{Limit: 5000}
		for {
			list, err := client.CoreV1().Pods(ns).List(ctx, opts)
			if err != nil {
				return false, err
			}
			for _, p := range list.Items {
				// Running, not Ready: a node whose kwok heartbeat lapses
				// under this load gets its pods marked not Ready by the
				// node lifecycle controller, and kwok never marks them
				// Ready again. Their objects are as big either way.
				if p.Status.Phase == corev1.PodRunning {
					ready++
				}
			}
			if opts.Continue = list.Continue; opts.Continue == "" {
				break
			}
		}
		b.Logf("%s: %d/%d pods running", time.Now().Format(time.TimeOnly), ready, want)
		return ready == want, nil
	})
	if err != nil {
		b.Fatalf("%d of %d pods running: %v", ready, want, err)
	}
}

// podTemplate is a typical web workload's pod: one container with requests,
// limits, a probe, env and an emptyDir.
func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/team/app:v1.2.3",
				Args:  []string{"--listen=:8080", "--log-format=json"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env: []corev1.EnvVar{
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "LOG_LEVEL", Value: "info"},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}},
			}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

func parallel(b *testing.B, n, workers int, fn func(i int) error) {
	b.Helper()
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		mu    sync.Mutex
		first error
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}
