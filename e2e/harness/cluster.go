package harness

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/internal/kube"
)

// GroupLabel is the Node label naming a node's group.
const GroupLabel = "smartscale.io/nodegroup"

// Node is what a scenario checks about one node of a group.
type Node struct {
	Name      string
	Zone      string
	Market    string
	Type      string // instance type
	Ready     bool
	Cordoned  bool // spec.unschedulable
	OurCordon bool // cordoned by SmartScale (its annotation)
	Created   time.Time
}

func (n Node) String() string {
	s := fmt.Sprintf("%s(%s %s", n.Name, n.Zone, n.Market)
	if n.Ready {
		s += " Ready"
	} else {
		s += " NotReady"
	}
	if n.Cordoned {
		s += ",cordoned"
	}
	return s + ")"
}

// GroupNodes lists the group's Nodes, sorted by name.
func GroupNodes(ctx context.Context, client kubernetes.Interface, group string) ([]Node, error) {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: GroupLabel + "=" + group})
	if err != nil {
		return nil, fmt.Errorf("list nodes of %s: %w", group, err)
	}
	out := make([]Node, 0, len(list.Items))
	for _, n := range list.Items {
		node := Node{
			Name: n.Name, Zone: n.Labels[corev1.LabelTopologyZone], Market: n.Labels["smartscale.io/market"],
			Type:     n.Labels[corev1.LabelInstanceTypeStable],
			Cordoned: n.Spec.Unschedulable, Created: n.CreationTimestamp.Time,
		}
		node.OurCordon = n.Annotations[kube.AnnotationCordonedBy] == kube.CordonedBy
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				node.Ready = true
			}
		}
		out = append(out, node)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Zones counts nodes per zone.
func Zones(nodes []Node) map[string]int {
	out := map[string]int{}
	for _, n := range nodes {
		out[n.Zone]++
	}
	return out
}

// ReadyCount counts Ready nodes.
func ReadyCount(nodes []Node) int {
	c := 0
	for _, n := range nodes {
		if n.Ready {
			c++
		}
	}
	return c
}

// Eventually polls cond every interval until it returns true, an error, or
// timeout passes; what is the condition's description for the error.
func Eventually(ctx context.Context, timeout, interval time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond(ctx)
		if ok && err == nil {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("%s: not within %s (last error: %w)", what, timeout, lastErr)
			}
			return fmt.Errorf("%s: not within %s", what, timeout)
		case <-time.After(interval):
		}
	}
}

// ExportRules runs `smartscale rules export --for-scale factor` over
// rules/ into dir and returns the absolute paths of the files written.
func ExportRules(ctx context.Context, bin, dir string, factor float64) ([]string, error) {
	cmd := exec.CommandContext(ctx, bin, "rules", "export", filepath.Join(RepoRoot(), "rules"),
		"--out", dir, "--for-scale", fmt.Sprint(factor))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("smartscale rules export: %w\n%s", err, out)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("smartscale rules export wrote no files into %s (%v): %s", dir, err, strings.TrimSpace(string(out)))
	}
	return paths, nil
}
