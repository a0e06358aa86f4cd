package policy

import (
	"slices"
	"testing"
	"time"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/config"
)

// t0 is the time of every fixture decision.
var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

const (
	za = "us-east-1a"
	zb = "us-east-1b"
	zc = "us-east-1c"
	mi = int64(1) << 20
)

func zoneOf(short string) string {
	switch short {
	case "a":
		return za
	case "b":
		return zb
	case "c":
		return zc
	}
	return short
}

// grp is the seed's node group: min 2, max 10, zones a and b, t3.small then
// t3a.small, 60% spot, steps 1/2, cooldowns 5m/10m, delay 10m, age 10m.
func grp(mods ...func(*config.NodeGroup)) config.NodeGroup {
	g := config.DefaultNodeGroup("workers")
	for _, m := range mods {
		m(&g)
	}
	return g
}

// node builds a Ready, uncordoned, hour-old on-demand t3.small of the group
// in zone "a", "b" or "c", with 2000m CPU, 2Gi and 110 pods allocatable.
func node(name, zone string, mods ...func(*Node)) Node {
	z := zoneOf(zone)
	n := Node{
		Name: name, NodeGroup: "workers", InstanceID: "i-" + name, Zone: z, Market: OnDemand,
		InstanceType: "t3.small", Allocatable: Resources{MilliCPU: 2000, Memory: 2048 * mi, Pods: 110},
		Created: t0.Add(-time.Hour), Ready: true,
		Labels: map[string]string{
			labelNodeGroup: "workers", labelZone: z, labelInstanceType: "t3.small",
			labelMarket: "on-demand", labelHostname: name, "topology.kubernetes.io/region": "us-east-1",
		},
	}
	for _, m := range mods {
		m(&n)
	}
	return n
}

func onSpot(n *Node) { n.Market = Spot; n.Labels[labelMarket] = "spot" }

func age(d time.Duration) func(*Node) { return func(n *Node) { n.Created = t0.Add(-d) } }

func inGroup(g string) func(*Node) {
	return func(n *Node) { n.NodeGroup = g; n.Labels[labelNodeGroup] = g }
}

func nodeAnn(k, v string) func(*Node) {
	return func(n *Node) { n.Annotations = map[string]string{k: v} }
}

func taint(key, value, effect string) func(*Node) {
	return func(n *Node) { n.Taints = append(n.Taints, Taint{Key: key, Value: value, Effect: effect}) }
}

func alloc(cpu int64) func(*Node) { return func(n *Node) { n.Allocatable.MilliCPU = cpu } }

func label(k, v string) func(*Node) { return func(n *Node) { n.Labels[k] = v } }

// pod builds a running ReplicaSet pod in namespace default requesting 100m
// and 128Mi, bound to node ("" leaves it unbound).
func pod(name, nodeName string, mods ...func(*Pod)) Pod {
	p := Pod{
		Namespace: "default", Name: name, UID: "uid-" + name, NodeName: nodeName, Phase: "Running",
		OwnerKind: "ReplicaSet", OwnerName: "web", Requests: Resources{MilliCPU: 100, Memory: 128 * mi, Pods: 1},
		Labels: map[string]string{"app": "web"},
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

// pendingPod is a pod the scheduler marked unschedulable.
func pendingPod(name string, cpu int64, mods ...func(*Pod)) Pod {
	return pod(name, "", append([]func(*Pod){func(p *Pod) {
		p.Phase, p.Unschedulable, p.Requests.MilliCPU = "Pending", true, cpu
	}}, mods...)...)
}

func cpu(m int64) func(*Pod) { return func(p *Pod) { p.Requests.MilliCPU = m } }

func mem(b int64) func(*Pod) { return func(p *Pod) { p.Requests.Memory = b } }

func owner(kind string) func(*Pod) { return func(p *Pod) { p.OwnerKind = kind } }

func ns(n string) func(*Pod) { return func(p *Pod) { p.Namespace = n } }

func podAnn(k, v string) func(*Pod) {
	return func(p *Pod) { p.Annotations = map[string]string{k: v} }
}

func vol(v Volume) func(*Pod) { return func(p *Pod) { p.Volumes = append(p.Volumes, v) } }

func selector(k, v string) func(*Pod) {
	return func(p *Pod) { p.NodeSelector = map[string]string{k: v} }
}

func affinity(k string, vs ...string) func(*Pod) {
	return func(p *Pod) { p.RequiredNodeAffinity = map[string][]string{k: vs} }
}

func tolerate(tol Toleration) func(*Pod) {
	return func(p *Pod) { p.Tolerations = append(p.Tolerations, tol) }
}

func sig(action alert.Action, urgency alert.Urgency, name string) alert.Signal {
	return alert.Signal{NodeGroup: "workers", Action: action, Urgency: urgency, AlertName: name,
		Fingerprint: name, StartsAt: t0.Add(-3 * time.Minute), Status: "firing"}
}

var (
	upNormal = sig(alert.ScaleUp, alert.Normal, "HighCPU")
	upHigh   = sig(alert.ScaleUp, alert.High, "VeryHighCPU")
	down     = sig(alert.ScaleDown, alert.Normal, "LowCPU")
)

// input assembles a decision at t0 with the seed group.
func input(signals []alert.Signal, nodes []Node, pods []Pod, mods ...func(*Input)) Input {
	in := Input{Signals: signals, Snapshot: Snapshot{Nodes: nodes, Pods: pods}, Group: grp(), Now: t0}
	for _, m := range mods {
		m(&in)
	}
	return in
}

func withGroup(mods ...func(*config.NodeGroup)) func(*Input) {
	return func(in *Input) { in.Group = grp(mods...) }
}

func withState(s GroupState) func(*Input) { return func(in *Input) { in.State = s } }

func withPDB(b PDB) func(*Input) {
	return func(in *Input) { in.Snapshot.PDBs = append(in.Snapshot.PDBs, b) }
}

func sigs(s ...alert.Signal) []alert.Signal { return s }

func nodes(n ...Node) []Node { return n }

func pods(p ...Pod) []Pod { return p }

// workers is n hour-old on-demand nodes spread a, b, a, b… named w1…wn.
func workers(n int, mods ...func(*Node)) []Node {
	var out []Node
	for i := range n {
		z := "a"
		if i%2 == 1 {
			z = "b"
		}
		out = append(out, node("w"+string(rune('0'+(i+1)/10))+string(rune('0'+(i+1)%10)), z, mods...))
	}
	return out
}

// expect checks a plan's action and that each wanted reason string is one of
// its reasons, exactly.
func expect(t *testing.T, p Plan, action Action, reasons ...string) {
	t.Helper()
	if p.Action != action {
		t.Errorf("action = %s, want %s; reasons:\n  %s", p.Action, action, joinLines(p.Strings()))
	}
	got := p.Strings()
	for _, r := range reasons {
		if !slices.Contains(got, r) {
			t.Errorf("missing reason %q; reasons:\n  %s", r, joinLines(got))
		}
	}
	if len(p.Reasons) == 0 {
		t.Errorf("plan has no reason")
	}
	checkShape(t, p)
}

func joinLines(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += "\n  "
		}
		out += s
	}
	return out
}

// checkShape asserts what every plan must satisfy whatever its input: the
// detail that matches the action, and summaries that add up.
func checkShape(t interface {
	Helper()
	Errorf(string, ...any)
}, p Plan) {
	t.Helper()
	switch p.Action {
	case None:
		if p.ScaleUp != nil || p.ScaleDown != nil {
			t.Errorf("action none with details: %+v %+v", p.ScaleUp, p.ScaleDown)
		}
	case Down:
		if p.ScaleDown == nil || p.ScaleUp != nil || p.ScaleDown.Node == "" {
			t.Errorf("scale_down plan without exactly one node: %+v", p)
		}
	case Up:
		if p.ScaleUp == nil || p.ScaleDown != nil {
			t.Errorf("scale_up plan without its detail: %+v", p)
			return
		}
		u := p.ScaleUp
		sum, zones, markets := 0, 0, 0
		for _, l := range u.Launches {
			if l.Count < 1 || l.Zone == "" || (l.Market != Spot && l.Market != OnDemand) {
				t.Errorf("bad launch %+v", l)
			}
			sum += l.Count
		}
		for _, n := range u.PerZone {
			zones += n
		}
		for _, n := range u.PerMarket {
			markets += n
		}
		if u.Count < 1 || sum != u.Count || zones != u.Count || markets != u.Count {
			t.Errorf("count %d, launches %d, per zone %d, per market %d", u.Count, sum, zones, markets)
		}
		if len(u.InstanceTypes) == 0 {
			t.Errorf("no instance types")
		}
	default:
		t.Errorf("unknown action %q", p.Action)
	}
}
