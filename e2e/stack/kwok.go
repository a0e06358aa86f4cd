package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Labels and annotations of the nodes NodeSpec builds.
const (
	// KwokAnnotation marks a Node as managed by this stack's kwok.
	KwokAnnotation      = "kwok.x-k8s.io/node"
	LabelZone           = "topology.kubernetes.io/zone"
	LabelRegion         = "topology.kubernetes.io/region"
	LabelInstanceType   = "node.kubernetes.io/instance-type"
	LabelNodeGroup      = "smartscale.io/nodegroup"
	LabelMarket         = "smartscale.io/market"
	defaultZone         = "us-east-1a"
	defaultInstanceType = "t3.small"
)

// NodeSpec describes a kwok node. Zero fields take t3.small-like defaults:
// zone us-east-1a, 2 CPU, 1900Mi memory, 110 pods, 20Gi ephemeral storage.
type NodeSpec struct {
	Name         string
	Zone         string // topology.kubernetes.io/zone (region derived by dropping the last letter)
	InstanceType string // node.kubernetes.io/instance-type
	NodeGroup    string // smartscale.io/nodegroup, unset if empty
	Market       string // smartscale.io/market, unset if empty
	CPU          string // capacity and allocatable, a quantity
	Memory       string
	Pods         string
	Labels       map[string]string // extra labels (override the above)
	Annotations  map[string]string // extra annotations
	Taints       []corev1.Taint
	// Unmanaged leaves out the kwok annotation: kwok ignores the node and
	// it stays NotReady. CreateNodes then does not wait for it.
	Unmanaged bool
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Node returns the Node object for spec (status is set separately, through
// the status subresource, by CreateNodes).
func (n NodeSpec) Node() *corev1.Node {
	zone := or(n.Zone, defaultZone)
	labels := map[string]string{
		"kubernetes.io/hostname": n.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"type":                   "kwok",
		LabelZone:                zone,
		LabelRegion:              zone[:len(zone)-1],
		LabelInstanceType:        or(n.InstanceType, defaultInstanceType),
	}
	if n.NodeGroup != "" {
		labels[LabelNodeGroup] = n.NodeGroup
	}
	if n.Market != "" {
		labels[LabelMarket] = n.Market
	}
	for k, v := range n.Labels {
		labels[k] = v
	}
	ann := map[string]string{"node.alpha.kubernetes.io/ttl": "0"}
	if !n.Unmanaged {
		ann[KwokAnnotation] = "fake"
	}
	for k, v := range n.Annotations {
		ann[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels, Annotations: ann},
		Spec:       corev1.NodeSpec{ProviderID: "kwok://" + n.Name, Taints: n.Taints},
	}
}

// Resources returns the node's capacity (= allocatable).
func (n NodeSpec) Resources() (corev1.ResourceList, error) {
	rl := corev1.ResourceList{}
	for name, v := range map[corev1.ResourceName]string{
		corev1.ResourceCPU:              or(n.CPU, "2"),
		corev1.ResourceMemory:           or(n.Memory, "1900Mi"),
		corev1.ResourcePods:             or(n.Pods, "110"),
		corev1.ResourceEphemeralStorage: "20Gi",
	} {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s %q: %w", n.Name, name, v, err)
		}
		rl[name] = q
	}
	return rl, nil
}

func (s *Stack) addKwok(ctx context.Context) error {
	bin, err := ToolPath("kwok")
	if err != nil {
		return err
	}
	stages, err := ToolPath("kwok-stages")
	if err != nil {
		return err
	}
	home, err := s.subdir("kwok-home")
	if err != nil {
		return err
	}
	var port int
	alloc, err := onePort(&port, nil)
	if err != nil {
		return err
	}
	c := &component{
		name: Kwok,
		cfg: func() (ProcessConfig, error) {
			return ProcessConfig{Name: string(Kwok), Path: bin, LogPath: s.logFile(Kwok),
				// kwok keeps state under $HOME/.kwok otherwise.
				Env: []string{"HOME=" + home},
				Args: []string{
					"--kubeconfig=" + s.KubeconfigPath,
					"--config=" + stages,
					"--manage-all-nodes=false",
					"--manage-nodes-with-annotation-selector=" + KwokAnnotation + "=fake",
					// The default pod CIDR collides with the service range.
					"--cidr=10.244.0.0/16",
					"--node-ip=127.0.0.1",
					"--node-lease-duration-seconds=40",
					"--server-address=" + hostPort(port),
				}}, nil
		},
		ready: func(ctx context.Context) error { return httpOK(ctx, "http://"+hostPort(port)+"/healthz", "", "") },
	}
	return s.register(ctx, c, alloc)
}

// CreateNodes creates kwok nodes, sets their capacity, and waits until kwok
// reports the managed ones Ready with that capacity.
func (s *Stack) CreateNodes(ctx context.Context, specs ...NodeSpec) error {
	if s.client == nil {
		return fmt.Errorf("create nodes: stack has no Kube")
	}
	for _, spec := range specs {
		if err := s.createNode(ctx, spec); err != nil {
			return err
		}
	}
	for _, spec := range specs {
		if spec.Unmanaged {
			continue
		}
		if err := s.settleNode(ctx, spec); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) createNode(ctx context.Context, spec NodeSpec) error {
	if _, err := s.client.CoreV1().Nodes().Create(ctx, spec.Node(), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", spec.Name, err)
	}
	return s.patchCapacity(ctx, spec)
}

// patchCapacity sets capacity and allocatable through the status
// subresource (status is ignored on create).
func (s *Stack) patchCapacity(ctx context.Context, spec NodeSpec) error {
	res, err := spec.Resources()
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"capacity": res, "allocatable": res}})
	if err != nil {
		return err
	}
	if _, err := s.client.CoreV1().Nodes().Patch(ctx, spec.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("set node %s capacity: %w", spec.Name, err)
	}
	return nil
}

// settleNode waits until the node is Ready with the spec's capacity. kwok's
// initialize stage renders status from the node it last saw: if that was
// before our capacity patch, it writes its default (1k CPU) over ours, so
// once Ready (kwok's heartbeats leave capacity alone) the patch is redone.
func (s *Stack) settleNode(ctx context.Context, spec NodeSpec) error {
	want, err := spec.Resources()
	if err != nil {
		return err
	}
	if err := s.WaitNodeReady(ctx, spec.Name); err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := s.client.CoreV1().Nodes().Get(ctx, spec.Name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for name, q := range want {
			got, ok := n.Status.Allocatable[name]
			if !ok || got.Cmp(q) != 0 {
				last = fmt.Sprintf("allocatable %s = %s, want %s", name, got.String(), q.String())
				s.logf("node %s: %s (kwok initialised it before the capacity patch); patching again", spec.Name, last)
				return false, s.patchCapacity(ctx, spec)
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("node %s capacity: %w (last: %s)", spec.Name, err, last)
	}
	return nil
}

// WaitNodeReady waits until the node's Ready condition is True.
func (s *Stack) WaitNodeReady(ctx context.Context, name string) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			last = "not found"
			return false, nil
		}
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				last = "Ready=" + string(c.Status)
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		last = "no Ready condition (" + strconv.Itoa(len(n.Status.Conditions)) + " conditions)"
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready: %w (last: %s)", name, err, last)
	}
	return nil
}
