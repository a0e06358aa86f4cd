// Package kwok is the node provider for `make demo` and the e2e scenarios:
// a "launch" creates a Node object that kwok (fake kubelets) manages and
// makes Ready, with the labels a real worker gets from its user data; a
// "terminate" deletes the Node. It has the same method set as cloud/aws.
//
// Nodes look like t3.small workers: annotation kwok.x-k8s.io/node=fake,
// providerID kwok://<name>, labels topology.kubernetes.io/zone (and region),
// node.kubernetes.io/instance-type, smartscale.io/market and
// smartscale.io/nodegroup, and the capacity of a t3.small as K3s reports it:
// 2 CPU, 2 GiB memory, 110 pods. Allocatable memory is 1948Mi (~1.9 GiB):
// K3s sets no kube/system reservations, so only the kubelet's default hard
// eviction threshold (memory.available<100Mi) comes off. 110 pods is the
// kubelet's default maxPods, which K3s keeps; the 11 pods EKS allows a
// t3.small come from the VPC CNI's per-ENI address limit, which K3s's
// flannel does not have.
package kwok

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/internal/cloud"
)

// Annotation and provider id scheme of kwok-managed nodes.
const (
	// Annotation (with value AnnotationValue) is what kwok's
	// --manage-nodes-with-annotation-selector matches.
	Annotation      = "kwok.x-k8s.io/node"
	AnnotationValue = "fake"
	// ProviderIDPrefix starts every kwok node's spec.providerID.
	ProviderIDPrefix = "kwok://"
)

// Shape is the capacity and allocatable of one instance type's node.
type Shape struct {
	Capacity    corev1.ResourceList
	Allocatable corev1.ResourceList
}

// T3Small is a t3.small (and t3a.small: same vCPUs and memory) under K3s.
func T3Small() Shape {
	q := resource.MustParse
	return Shape{
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("2Gi"),
			corev1.ResourcePods: q("110"), corev1.ResourceEphemeralStorage: q("20Gi"),
		},
		Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1948Mi"),
			corev1.ResourcePods: q("110"), corev1.ResourceEphemeralStorage: q("19Gi"),
		},
	}
}

// Options configure a Provider.
type Options struct {
	// Shapes by instance type; types not listed get T3Small (the demo's
	// types are all two-vCPU, 2 GiB instances).
	Shapes map[string]Shape
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Provider creates and deletes kwok nodes through the API server.
type Provider struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger
}

// New returns a Provider using client.
func New(client kubernetes.Interface, opts Options) *Provider {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Provider{client: client, opts: opts, log: opts.Logger}
}

// Create makes one kwok node per requested instance, of the first instance
// type (what a prioritized launch with capacity everywhere picks). Node
// names derive from the group and client token, so a retried Create finds
// and finishes the nodes it made instead of making more.
//
// A node's name is its instance id, shaped like EC2's (i- and 17 hex
// digits), so EventBridge documents about it (spot interruptions) pass the
// same checks as real ones.
func (p *Provider) Create(ctx context.Context, req cloud.CreateRequest) (cloud.CreateResult, error) {
	res := cloud.CreateResult{Requested: req.Count("")}
	if err := req.Validate(); err != nil {
		return res, err
	}
	itype := req.InstanceTypes[0]
	n := 0
	for _, l := range req.Launches {
		for range l.Count {
			name := instanceName(req.Group, req.ClientToken, n)
			n++
			node, created, err := p.ensure(ctx, p.node(name, req.Group, l.Zone, l.Market, itype))
			if err != nil {
				return res, fmt.Errorf("create %s: %w", req.Group, err)
			}
			inst := instanceOf(node)
			res.Instances = append(res.Instances, inst)
			msg := "node created"
			if !created {
				msg = "node already created by this client token"
			}
			p.log.Info(msg, "nodegroup", req.Group, "action", "create", "node", name,
				"instance", inst.ID, "zone", inst.Zone, "market", inst.Market, "instance_type", inst.Type)
		}
	}
	return res, nil
}

// instanceName is the n-th instance of a launch: "i-" and 17 hex digits
// of a hash of group, client token and n.
func instanceName(group, clientToken string, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", group, clientToken, n))
	return "i-" + hex.EncodeToString(sum[:])[:17]
}

// node builds the Node a worker of this kind would register.
func (p *Provider) node(name, group, zone string, market cloud.Market, itype string) *corev1.Node {
	shape, ok := p.opts.Shapes[itype]
	if !ok {
		shape = T3Small()
	}
	region := zone
	if i := len(zone) - 1; i > 0 && zone[i] >= 'a' && zone[i] <= 'z' {
		region = zone[:i]
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
				cloud.LabelZone:          zone,
				cloud.LabelRegion:        region,
				cloud.LabelInstanceType:  itype,
				cloud.LabelMarket:        string(market),
				cloud.LabelNodeGroup:     group,
			},
			Annotations: map[string]string{
				Annotation:                     AnnotationValue,
				"node.alpha.kubernetes.io/ttl": "0",
			},
		},
		Spec: corev1.NodeSpec{ProviderID: ProviderIDPrefix + name},
		Status: corev1.NodeStatus{
			Capacity:    shape.Capacity.DeepCopy(),
			Allocatable: shape.Allocatable.DeepCopy(),
		},
	}
}

// ensure creates the node, or finds the one a previous attempt with the same
// client token created. The node carries its t3.small status from the start:
// kwok's initialize stage keeps a capacity it finds (it would otherwise set
// 1k CPUs, which the scheduler would use), and kwok only takes on nodes that
// have its annotation when they appear, so both go in the create.
func (p *Provider) ensure(ctx context.Context, want *corev1.Node) (_ *corev1.Node, created bool, _ error) {
	nodes := p.client.CoreV1().Nodes()
	node, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	created = err == nil
	if apierrors.IsAlreadyExists(err) {
		node, err = nodes.Get(ctx, want.Name, metav1.GetOptions{})
		if err == nil && (node.Labels[cloud.LabelNodeGroup] != want.Labels[cloud.LabelNodeGroup] ||
			node.Spec.ProviderID != want.Spec.ProviderID || !managed(node)) {
			return nil, false, fmt.Errorf("node %s exists and is not this launch's", want.Name)
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("create node %s: %w", want.Name, err)
	}
	if node.Status.Allocatable.Cpu().IsZero() {
		// An API server that drops status on create: set it through the
		// status subresource, as a kubelet does.
		patch, err := json.Marshal(map[string]any{"status": map[string]any{
			"capacity": want.Status.Capacity, "allocatable": want.Status.Allocatable,
		}})
		if err != nil {
			return nil, false, err
		}
		node, err = nodes.Patch(ctx, want.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil {
			return nil, false, fmt.Errorf("set node %s capacity: %w", want.Name, err)
		}
	}
	return node, created, nil
}

// Terminate deletes the group's kwok nodes with the given names. It refuses
// the whole call, before deleting anything, if one of them is not a kwok
// node of this group. Nodes already gone count as done.
func (p *Provider) Terminate(ctx context.Context, group string, instanceIDs []string) error {
	if group == "" {
		return errors.New("terminate: group is empty")
	}
	nodes := p.client.CoreV1().Nodes()
	var refused []string
	var doomed []*corev1.Node
	for _, id := range instanceIDs {
		node, err := nodes.Get(ctx, id, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			p.log.Info("node already gone", "nodegroup", group, "action", "terminate", "node", id, "reason", "not_found")
			continue
		}
		if err != nil {
			return fmt.Errorf("terminate %s: get node %s: %w", group, id, err)
		}
		switch {
		case !managed(node):
			refused = append(refused, id+" (not a kwok node)")
		case node.Labels[cloud.LabelNodeGroup] != group:
			refused = append(refused, fmt.Sprintf("%s (%s=%q)", id, cloud.LabelNodeGroup, node.Labels[cloud.LabelNodeGroup]))
		default:
			doomed = append(doomed, node)
		}
	}
	if len(refused) > 0 {
		p.log.Error("terminate refused", "nodegroup", group, "action", "terminate", "reason", "not_managed",
			"nodes", strings.Join(refused, ", "))
		return fmt.Errorf("terminate %s: %w: %s", group, cloud.ErrNotManaged, strings.Join(refused, ", "))
	}
	var errs []error
	for _, node := range doomed {
		// The UID precondition keeps a same-named successor safe.
		err := nodes.Delete(ctx, node.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &node.UID}})
		switch {
		case err == nil:
			p.log.Info("node deleted", "nodegroup", group, "action", "terminate", "node", node.Name, "instance", node.Name)
		case apierrors.IsNotFound(err):
		default:
			errs = append(errs, fmt.Errorf("delete node %s: %w", node.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("terminate %s: %w", group, err)
	}
	return nil
}

// List returns the group's kwok nodes.
func (p *Provider) List(ctx context.Context, group string) ([]cloud.Instance, error) {
	sel := labels.SelectorFromSet(labels.Set{cloud.LabelNodeGroup: group}).String()
	list, err := p.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", group, err)
	}
	out := make([]cloud.Instance, 0, len(list.Items))
	for i := range list.Items {
		if managed(&list.Items[i]) {
			out = append(out, instanceOf(&list.Items[i]))
		}
	}
	return out, nil
}

// Find returns the kwok node named instanceID if it belongs to a node group.
func (p *Provider) Find(ctx context.Context, instanceID string) (cloud.Instance, bool, error) {
	node, err := p.client.CoreV1().Nodes().Get(ctx, instanceID, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return cloud.Instance{}, false, nil
	}
	if err != nil {
		return cloud.Instance{}, false, fmt.Errorf("find %s: %w", instanceID, err)
	}
	if !managed(node) || node.Labels[cloud.LabelNodeGroup] == "" {
		return cloud.Instance{}, false, nil
	}
	return instanceOf(node), true, nil
}

// managed reports whether node is a kwok node this provider may touch.
func managed(node *corev1.Node) bool {
	return node.Annotations[Annotation] == AnnotationValue &&
		node.Spec.ProviderID == ProviderIDPrefix+node.Name
}

func instanceOf(node *corev1.Node) cloud.Instance {
	state := cloud.Pending
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			state = cloud.Running
		}
	}
	if node.DeletionTimestamp != nil {
		state = cloud.ShuttingDown
	}
	return cloud.Instance{
		ID:         node.Name,
		Group:      node.Labels[cloud.LabelNodeGroup],
		NodeName:   node.Name,
		ProviderID: node.Spec.ProviderID,
		Zone:       node.Labels[cloud.LabelZone],
		Market:     cloud.Market(node.Labels[cloud.LabelMarket]),
		Type:       node.Labels[cloud.LabelInstanceType],
		LaunchTime: node.CreationTimestamp.Time,
		State:      state,
	}
}
