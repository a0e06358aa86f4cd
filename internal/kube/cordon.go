package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// CordonedBySmartScale reports whether the node carries SmartScale's cordon
// mark.
func CordonedBySmartScale(n *corev1.Node) bool {
	return n.Annotations[AnnotationCordonedBy] == CordonedBy
}

// Cordon marks the node unschedulable. When the node is schedulable,
// SmartScale cordons it and marks it as its own (annotation and taint, in the
// same write as spec.unschedulable), and ours is true. When someone else
// already cordoned it, the node is left exactly as it is and ours is false:
// recovery must then never uncordon it. Cordoning a node SmartScale already
// cordoned is a no-op with ours true.
func (c *Cluster) Cordon(ctx context.Context, node string) (ours bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := c.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n.Spec.Unschedulable && !CordonedBySmartScale(n) {
			ours = false
			return nil
		}
		ours = true
		if n.Spec.Unschedulable && hasTaint(n, TaintDraining) {
			return nil
		}
		n.Spec.Unschedulable = true
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		n.Annotations[AnnotationCordonedBy] = CordonedBy
		if !hasTaint(n, TaintDraining) {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: TaintDraining, Value: CordonedBy, Effect: corev1.TaintEffectNoSchedule})
		}
		return c.patchCordon(ctx, n, CordonedBy)
	})
	if err != nil {
		return false, fmt.Errorf("cordon node %s: %w", node, err)
	}
	c.log.Info("node cordoned", "node", node, "action", "cordon", "ours", ours)
	return ours, nil
}

// Uncordon makes the node schedulable again — if, and only if, SmartScale
// cordoned it — and removes SmartScale's marks. It reports whether it did. A
// node cordoned by a person, or already gone, is left alone (false, nil).
func (c *Cluster) Uncordon(ctx context.Context, node string) (bool, error) {
	done := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		done = false
		n, err := c.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !CordonedBySmartScale(n) {
			return nil
		}
		n.Spec.Unschedulable = false
		delete(n.Annotations, AnnotationCordonedBy)
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintDraining })
		if err := c.patchCordon(ctx, n, ""); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("uncordon node %s: %w", node, err)
	}
	if done {
		c.log.Info("node uncordoned", "node", node, "action", "uncordon")
	}
	return done, nil
}

// patchCordon writes n's unschedulable flag, taints and SmartScale's
// cordon annotation (removed when value is "") as one merge patch. The
// patch carries the resourceVersion that was read, so a concurrent change
// answers 409 and RetryOnConflict reads again, as an Update would; a patch
// needs only the "patch" verb on nodes, which the chart's role grants.
func (c *Cluster) patchCordon(ctx context.Context, n *corev1.Node, value string) error {
	var annotation any = value
	if value == "" {
		annotation = nil // JSON null deletes the key in a merge patch
	}
	taints := n.Spec.Taints
	if taints == nil {
		taints = []corev1.Taint{}
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"resourceVersion": n.ResourceVersion,
			"annotations":     map[string]any{AnnotationCordonedBy: annotation},
		},
		"spec": map[string]any{"unschedulable": n.Spec.Unschedulable, "taints": taints},
	})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

func hasTaint(n *corev1.Node, key string) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key })
}
