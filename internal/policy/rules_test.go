package policy

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/config"
)

// ruleCase is one decision and what must come of it.
type ruleCase struct {
	name    string
	in      Input
	decide  func(Input) Plan // Decide when nil
	action  Action
	reasons []string
	check   func(t *testing.T, p Plan)
}

func run(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			decide := c.decide
			if decide == nil {
				decide = Decide
			}
			p := decide(c.in)
			expect(t, p, c.action, c.reasons...)
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

func launchesAre(want ...Launch) func(*testing.T, Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		if p.ScaleUp == nil || !slices.Equal(p.ScaleUp.Launches, want) {
			t.Errorf("launches = %+v, want %+v", p.ScaleUp, want)
		}
	}
}

func removes(name string) func(*testing.T, Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		if p.ScaleDown == nil || p.ScaleDown.Node != name {
			t.Errorf("scale-down = %+v, want node %s", p.ScaleDown, name)
		}
	}
}

func keepsNode(name string) func(*testing.T, Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		if p.ScaleDown != nil && p.ScaleDown.Node == name {
			t.Errorf("scale-down removes %s, which must be kept", name)
		}
	}
}

func od(zone string, n int) Launch   { return Launch{Zone: zoneOf(zone), Market: OnDemand, Count: n} }
func spot(zone string, n int) Launch { return Launch{Zone: zoneOf(zone), Market: Spot, Count: n} }

// The pods of the seed's spot mix would make every fixture spot-heavy;
// most cases pin the market with spotPercentage 0 to read the zones alone.
func noSpot(g *config.NodeGroup) { g.SpotPercentage = 0 }

func TestRule1Bounds(t *testing.T) {
	provisioning := withState(GroupState{InFlight: []Operation{{ID: "op-1", Kind: "scale_up", Count: 1, Zones: []string{zb}}}})
	run(t, []ruleCase{
		{name: "never above maxNodes", in: input(sigs(upNormal), workers(10), nil),
			action: None, reasons: []string{"at_max: 10 nodes, maxNodes=10"}},
		{name: "scale-up cut to the room left", in: input(sigs(upHigh), workers(9), nil, withGroup(noSpot)),
			action: Up, reasons: []string{"capped_at_max: wanted 2 nodes, maxNodes=10 leaves room for 1"},
			check: launchesAre(od("b", 1))},
		{name: "never below minNodes", in: input(sigs(down), workers(2), nil),
			action: None, reasons: []string{"at_min: 2 nodes, minNodes=2"}},
		{name: "a zone's last node is kept", in: input(sigs(down), nodes(node("a1", "a"), node("a2", "a"), node("b1", "b")), nil),
			action: Down, reasons: []string{
				"zone_floor: node b1 is the last node in zone us-east-1b",
				"scale_down_candidate: node a1: 0 non-DaemonSet pods, 0m CPU requested, zone us-east-1a has 2 nodes, on-demand, created 2026-01-01T09:00:00Z; its pods fit on the remaining nodes",
			}, check: removes("a1")},
		{name: "scale-up fills an empty zone first", in: input(sigs(upNormal), nodes(node("a1", "a"), node("a2", "a"), node("a3", "a")), nil, withGroup(noSpot)),
			action: Up, reasons: []string{"zone_floor: zone us-east-1b has no node"}, check: launchesAre(od("b", 1))},
		{name: "scale-up below minNodes reaches it", in: input(sigs(upNormal), workers(2), nil, withGroup(noSpot, func(g *config.NodeGroup) { g.MinNodes = 4 })),
			action: Up, reasons: []string{"below_min: 2 nodes, minNodes=4", "scale_up_step: 1 node for normal urgency (HighCPU)"},
			check: launchesAre(od("a", 1), od("b", 1))},
		{name: "nodes being provisioned count toward the total and their zone",
			in:     input(nil, nodes(node("a1", "a"), node("b1", "b", onSpot)), nil, provisioning),
			decide: func(in Input) Plan { return Replacement(in, "b1") },
			action: None, reasons: []string{"replacement_not_needed: without node b1 the group keeps 2 nodes (1 provisioning), minNodes=2, every zone has a node, and its pods fit on the others"}},
		{name: "without them the same loss needs a replacement",
			in:     input(nil, nodes(node("a1", "a"), node("b1", "b", onSpot)), nil),
			decide: func(in Input) Plan { return Replacement(in, "b1") },
			action: Up, reasons: []string{"replace_interrupted: node b1 (spot t3.small in us-east-1b) is interrupted; without it the group has 1 node, minNodes=2, zone us-east-1b has no node"}},
	})
}

func TestRule2ScaleUpStep(t *testing.T) {
	ds := func(name, on string) Pod { return pod(name, on, owner("DaemonSet"), cpu(300)) }
	var big []Pod
	for i := range 5 {
		big = append(big, pendingPod("big"+string(rune('1'+i)), 1500))
	}
	var nine []Pod
	for i := range 5 {
		nine = append(nine, pendingPod("p"+string(rune('1'+i)), 900))
	}
	var many []Pod
	for i := range 12 {
		many = append(many, pendingPod("huge"+string(rune('a'+i)), 4000))
	}
	tainted := taint("dedicated", "workers", "NoSchedule")
	run(t, []ruleCase{
		{name: "normal urgency adds one node", in: input(sigs(upNormal), workers(4), nil),
			action: Up, reasons: []string{"scale_up_step: 1 node for normal urgency (HighCPU)"},
			check: func(t *testing.T, p Plan) {
				if p.ScaleUp.Count != 1 {
					t.Errorf("count = %d", p.ScaleUp.Count)
				}
			}},
		{name: "high urgency adds two", in: input(sigs(upNormal, upHigh), workers(4), nil),
			action: Up, reasons: []string{"scale_up_step: 2 nodes for high urgency (HighCPU, VeryHighCPU)"},
			check: func(t *testing.T, p Plan) {
				if p.ScaleUp.Count != 2 {
					t.Errorf("count = %d", p.ScaleUp.Count)
				}
			}},
		{name: "raised to what pending pods need, first-fit-decreasing",
			in:     input(sigs(upNormal), workers(4), pods(pendingPod("p1", 600), pendingPod("p2", 1200), pendingPod("p3", 500), pendingPod("p4", 700)), withGroup(noSpot)),
			action: Up, reasons: []string{"pending_pods_need: 4 pending pods need 2 new nodes (first-fit-decreasing onto empty t3.small nodes: 2000m CPU, 2048Mi memory, 110 pods each after DaemonSets)"},
			check: launchesAre(od("a", 1), od("b", 1))},
		{name: "DaemonSet overhead is reserved on new nodes",
			in:     input(sigs(upNormal), workers(4), append(slices.Clone(nine), ds("ds1", "w01"), ds("ds2", "w02")), withGroup(noSpot)),
			action: Up, reasons: []string{"pending_pods_need: 5 pending pods need 5 new nodes (first-fit-decreasing onto empty t3.small nodes: 1700m CPU, 1920Mi memory, 109 pods each after DaemonSets)"},
			check: func(t *testing.T, p Plan) {
				if p.ScaleUp.Count != 5 {
					t.Errorf("count = %d, want 5", p.ScaleUp.Count)
				}
			}},
		{name: "capped by maxNodes", in: input(sigs(upNormal), workers(8), big, withGroup(noSpot)),
			action: Up, reasons: []string{
				"pending_pods_need: 5 pending pods need more than the 2 nodes maxNodes=10 leaves (2 not packed)",
				"capped_at_max: wanted 3 nodes, maxNodes=10 leaves room for 2",
			}, check: launchesAre(od("a", 1), od("b", 1))},
		{name: "pods no new node could run do not drive the scale-up",
			in: input(sigs(upNormal), workers(4), pods(
				pendingPod("huge", 4000),
				pendingPod("ssd", 100, selector("disktype", "ssd")),
				pendingPod("zonec", 100, affinity(labelZone, zc)),
				pendingPod("m5", 100, selector(labelInstanceType, "m5.large")),
				pendingPod("pinned", 100, selector(labelHostname, "w01")),
			), withGroup(noSpot)),
			action: Up, reasons: []string{
				"scale_up_step: 1 node for normal urgency (HighCPU)",
				"unschedulable_by_scale_up: pod default/huge requests 4000m CPU, 128Mi memory, more than an empty t3.small node offers (2000m CPU, 2048Mi memory, 110 pods after DaemonSets)",
				"unschedulable_by_scale_up: pod default/ssd nodeSelector disktype=ssd is not met by a new node of group workers",
				"unschedulable_by_scale_up: pod default/zonec required node affinity topology.kubernetes.io/zone in (us-east-1c) matches none of the group's zones (us-east-1a, us-east-1b)",
				"unschedulable_by_scale_up: pod default/m5 nodeSelector node.kubernetes.io/instance-type=m5.large matches none of the group's instance types (t3.small, t3a.small)",
				"unschedulable_by_scale_up: pod default/pinned nodeSelector kubernetes.io/hostname=w01 is not met by a new node of group workers",
			}, check: func(t *testing.T, p Plan) {
				if p.ScaleUp.Count != 1 || p.Has(CodePendingPodsNeed) {
					t.Errorf("count = %d, pending need reported: %v", p.ScaleUp.Count, p.Has(CodePendingPodsNeed))
				}
			}},
		{name: "a taint every group node has must be tolerated",
			in: input(sigs(upNormal), workers(4, tainted), pods(
				pendingPod("plain", 1500),
				pendingPod("tolerant", 1500, tolerate(Toleration{Key: "dedicated", Operator: "Equal", Value: "workers", Effect: "NoSchedule"})),
				pendingPod("wild", 1500, tolerate(Toleration{Operator: "Exists"})),
			), withGroup(noSpot)),
			action: Up, reasons: []string{
				"unschedulable_by_scale_up: pod default/plain does not tolerate taint dedicated=workers:NoSchedule of group workers",
				"pending_pods_need: 2 pending pods need 2 new nodes (first-fit-decreasing onto empty t3.small nodes: 2000m CPU, 2048Mi memory, 110 pods each after DaemonSets)",
			}},
		{name: "labels the whole group shares satisfy selectors",
			in: input(sigs(upNormal), workers(4), pods(
				pendingPod("g", 1500, selector(labelNodeGroup, "workers")),
				pendingPod("r", 1500, affinity("topology.kubernetes.io/region", "us-east-1", "us-west-2")),
				pendingPod("t", 1500, affinity(labelInstanceType, "t3a.small")),
				pendingPod("s", 1500, selector(labelMarket, "spot")),
			), withGroup(noSpot, func(g *config.NodeGroup) { g.SpotPercentage = 50 })),
			action: Up, reasons: []string{"pending_pods_need: 4 pending pods need 4 new nodes (first-fit-decreasing onto empty t3.small nodes: 2000m CPU, 2048Mi memory, 110 pods each after DaemonSets)"}},
		{name: "a market the group never buys is unschedulable",
			in:     input(sigs(upNormal), workers(4), pods(pendingPod("s", 100, selector(labelCapacityType, "spot"))), withGroup(noSpot)),
			action: Up, reasons: []string{"unschedulable_by_scale_up: pod default/s nodeSelector karpenter.sh/capacity-type=spot matches no market of the group (spotPercentage=0)"}},
		{name: "zone-bound pods get nodes in their zone",
			in: input(sigs(upNormal), workers(4), pods(
				pendingPod("b1", 1500, affinity(labelZone, zb)),
				pendingPod("b2", 1500, affinity(labelZone, zb)),
				pendingPod("b3", 1500, selector(labelZone, zb)),
			), withGroup(noSpot)),
			action: Up, reasons: []string{"pending_pods_need: 3 pending pods need 3 new nodes (first-fit-decreasing onto empty t3.small nodes: 2000m CPU, 2048Mi memory, 110 pods each after DaemonSets)"},
			check: launchesAre(od("b", 3))},
		{name: "no known capacity: pods are not sized",
			in:     input(sigs(upNormal), workers(4, func(n *Node) { n.InstanceType = "m5.large" }), pods(pendingPod("p", 1500)), withGroup(noSpot)),
			action: Up, reasons: []string{"capacity_unknown: 1 pod pending but no allocatable known for t3.small, t3a.small (no such node in the group, none in Capacity)"}},
		{name: "Input.Capacity sizes a type with no node",
			in: input(sigs(upNormal), workers(4, func(n *Node) { n.InstanceType = "m5.large" }), pods(pendingPod("p", 600), pendingPod("q", 600)), withGroup(noSpot),
				func(in *Input) {
					in.Capacity = map[string]Resources{"t3a.small": {MilliCPU: 1000, Memory: 2048 * mi, Pods: 110}}
				}),
			action: Up, reasons: []string{"pending_pods_need: 2 pending pods need 2 new nodes (first-fit-decreasing onto empty t3a.small nodes: 1000m CPU, 2048Mi memory, 110 pods each after DaemonSets)"}},
		{name: "pods not marked unschedulable and DaemonSet pods are not pending work",
			in: input(sigs(upNormal), workers(4), pods(
				pendingPod("fresh", 1500, func(p *Pod) { p.Unschedulable = false }),
				pendingPod("ds", 1500, owner("DaemonSet")),
			)),
			action: Up, check: func(t *testing.T, p Plan) {
				if p.ScaleUp.Count != 1 || p.Has(CodePendingPodsNeed) {
					t.Errorf("count %d; reasons %v", p.ScaleUp.Count, p.Strings())
				}
			}},
		{name: "long lists of pods are summarised", in: input(sigs(upNormal), workers(4), many),
			action: Up, reasons: []string{"unschedulable_by_scale_up: 2 more pending pods no new node could run"},
			check: func(t *testing.T, p Plan) {
				n := 0
				for _, r := range p.Reasons {
					if r.Code == CodeUnschedulableByScaleUp && r.Pod != "" {
						n++
					}
				}
				if n != maxListed {
					t.Errorf("%d pods listed, want %d", n, maxListed)
				}
			}},
	})
}

func TestRule3OneNodePerScaleDown(t *testing.T) {
	busy := pods(
		pod("web-2", "w01"), pod("web-1", "w01"),
		pod("ds", "w01", owner("DaemonSet")),
		pod("static", "w01", owner("Node"), ns("kube-system")),
		pod("done", "w01", func(p *Pod) { p.Phase = "Succeeded"; p.OwnerKind = "" }),
		pod("x1", "w02"), pod("x2", "w02"), pod("x3", "w02"),
		pod("y1", "w03"), pod("y2", "w03"), pod("y3", "w03"),
		pod("z1", "w04"), pod("z2", "w04"), pod("z3", "w04"),
	)
	run(t, []ruleCase{
		{name: "exactly one node even with many removable", in: input(sigs(down), workers(6), nil, withGroup(func(g *config.NodeGroup) { g.ScaleDownStep = 3 })),
			action: Down, reasons: []string{"scale_down_candidate: node w01: 0 non-DaemonSet pods, 0m CPU requested, zone us-east-1a has 3 nodes, on-demand, created 2026-01-01T09:00:00Z; its pods fit on the remaining nodes"},
			check: removes("w01")},
		{name: "evicts the node's workload pods only, sorted", in: input(sigs(down), workers(4), busy),
			action: Down, reasons: []string{"scale_down_candidate: node w01: 2 non-DaemonSet pods, 200m CPU requested, zone us-east-1a has 2 nodes, on-demand, created 2026-01-01T09:00:00Z; its pods fit on the remaining nodes"},
			check: func(t *testing.T, p Plan) {
				want := []PodRef{{"default", "web-1", "uid-web-1"}, {"default", "web-2", "uid-web-2"}}
				if p.ScaleDown == nil || !slices.Equal(p.ScaleDown.Evict, want) {
					t.Errorf("evict = %+v, want %+v", p.ScaleDown, want)
				}
				if d := p.ScaleDown; d.Zone != za || d.InstanceID != "i-w01" || d.InstanceType != "t3.small" || d.Market != OnDemand {
					t.Errorf("scale-down = %+v", d)
				}
			}},
	})
}

func TestRule4Cooldowns(t *testing.T) {
	state := func(up, down time.Duration) func(*Input) {
		s := GroupState{}
		if up > 0 {
			s.LastScaleUpAt = t0.Add(-up)
		}
		if down > 0 {
			s.LastScaleDownAt = t0.Add(-down)
		}
		return withState(s)
	}
	run(t, []ruleCase{
		{name: "no scale-up within 5m of the last", in: input(sigs(upNormal), workers(4), nil, state(2*time.Minute, 0)),
			action: None, reasons: []string{"cooldown_active until=2026-01-01T10:03:00Z: scale-up cooldown 5m0s after the scale-up at 2026-01-01T09:58:00Z"}},
		{name: "scale-up again once 5m have passed", in: input(sigs(upNormal), workers(4), nil, state(5*time.Minute, 0)),
			action: Up},
		{name: "no scale-down within 10m of the last", in: input(sigs(down), workers(4), nil, state(0, 4*time.Minute)),
			action: None, reasons: []string{"cooldown_active until=2026-01-01T10:06:00Z: scale-down cooldown 10m0s after the scale-down at 2026-01-01T09:56:00Z"}},
		{name: "no scale-down within the delay after a scale-up", in: input(sigs(down), workers(4), nil, state(7*time.Minute, time.Hour)),
			action: None, reasons: []string{"cooldown_active until=2026-01-01T10:03:00Z: scale-down delay 10m0s after the scale-up at 2026-01-01T09:53:00Z"}},
		{name: "both scale-down gaps are reported", in: input(sigs(down), workers(4), nil, state(time.Minute, 2*time.Minute)),
			action: None, reasons: []string{
				"cooldown_active until=2026-01-01T10:08:00Z: scale-down cooldown 10m0s after the scale-down at 2026-01-01T09:58:00Z",
				"cooldown_active until=2026-01-01T10:09:00Z: scale-down delay 10m0s after the scale-up at 2026-01-01T09:59:00Z",
			}},
		{name: "scale-down once every gap has passed", in: input(sigs(down), workers(4), nil, state(10*time.Minute, 10*time.Minute)),
			action: Down},
		{name: "a scale-down cooldown does not hold a scale-up", in: input(sigs(upNormal), workers(4), nil, state(0, time.Minute)),
			action: Up},
		{name: "nothing while a scale-up is in flight",
			in:     input(sigs(upNormal), workers(4), nil, withState(GroupState{InFlight: []Operation{{ID: "op-1", Kind: "scale_up", Count: 2, Zones: []string{za, zb}}}})),
			action: None, reasons: []string{"operation_in_flight: scale_up op-1 of 2 nodes"}},
		{name: "nothing while a scale-down is in flight",
			in:     input(sigs(down), workers(6), nil, withState(GroupState{InFlight: []Operation{{ID: "op-2", Kind: "scale_down", Node: "w03"}}})),
			action: None, reasons: []string{"operation_in_flight: scale_down op-2 on node w03"}},
	})
}

func TestRule5ScaleUpWins(t *testing.T) {
	other := sig(alert.ScaleUp, alert.High, "GPUBusy")
	other.NodeGroup = "gpu"
	run(t, []ruleCase{
		{name: "both directions in one notification", in: input(sigs(down, upNormal), workers(4), nil),
			action: Up, reasons: []string{"scale_up_wins: scale-down signal LowCPU dropped: scale-up signal HighCPU is firing"}},
		{name: "the scale-down stays dropped when the scale-up cannot act",
			in:     input(sigs(upHigh, down), workers(4), nil, withState(GroupState{LastScaleUpAt: t0.Add(-time.Minute)})),
			action: None, reasons: []string{
				"scale_up_wins: scale-down signal LowCPU dropped: scale-up signal VeryHighCPU is firing",
				"cooldown_active until=2026-01-01T10:04:00Z: scale-up cooldown 5m0s after the scale-up at 2026-01-01T09:59:00Z",
			}},
		{name: "another group's scale-up does not hold this group's scale-down", in: input(sigs(other, down), workers(4), nil),
			action: Down},
		{name: "no signal for the group", in: input(sigs(other), workers(4), nil),
			action: None, reasons: []string{"no_signal: no scale_up or scale_down signal for node group workers"}},
	})
}

func TestRule6MultiAZ(t *testing.T) {
	three := withGroup(noSpot, func(g *config.NodeGroup) { g.Zones = []string{za, zb, zc} })
	run(t, []ruleCase{
		{name: "new nodes go to the zones with the fewest", in: input(sigs(upHigh), nodes(node("a1", "a"), node("a2", "a"), node("b1", "b"), node("c1", "c")), nil, three),
			action: Up, check: launchesAre(od("b", 1), od("c", 1))},
		{name: "ties go to the zone configured first", in: input(sigs(upNormal), nodes(node("b1", "b"), node("a1", "a")), nil, withGroup(noSpot)),
			action: Up, check: launchesAre(od("a", 1))},
		{name: "a large step spreads evenly", in: input(sigs(upHigh), nodes(node("a1", "a"), node("b1", "b"), node("c1", "c")), pods(
			pendingPod("p1", 1500), pendingPod("p2", 1500), pendingPod("p3", 1500), pendingPod("p4", 1500), pendingPod("p5", 1500)), three),
			action: Up, check: launchesAre(od("a", 2), od("b", 2), od("c", 1))},
		{name: "scale-down takes from the zone with the most nodes",
			in: input(sigs(down), nodes(node("a1", "a"), node("a2", "a", age(2*time.Hour)), node("a3", "a"),
				node("b1", "b", age(5*time.Hour)), node("b2", "b", age(5*time.Hour))), nil),
			action: Down, reasons: []string{"scale_down_candidate: node a2: 0 non-DaemonSet pods, 0m CPU requested, zone us-east-1a has 3 nodes, on-demand, created 2026-01-01T08:00:00Z; its pods fit on the remaining nodes"},
			check: removes("a2")},
	})
}

func TestRule7SpotMix(t *testing.T) {
	pct := func(n int) func(*Input) {
		return withGroup(func(g *config.NodeGroup) { g.SpotPercentage = n })
	}
	run(t, []ruleCase{
		{name: "launch spot to approach 60%", in: input(sigs(upHigh), nodes(node("a1", "a"), node("b1", "b")), nil),
			action: Up, reasons: []string{"spot_mix: 2 spot, 0 on-demand: 2 of 4 nodes on spot after the launch (spotPercentage=60)"},
			check: launchesAre(spot("a", 1), spot("b", 1))},
		{name: "spot goes to the zone with the lowest spot share",
			in:     input(sigs(upHigh), nodes(node("a1", "a", onSpot), node("a2", "a", onSpot), node("a3", "a"), node("b1", "b", onSpot), node("b2", "b")), nil),
			action: Up, reasons: []string{"spot_mix: 1 spot, 1 on-demand: 4 of 7 nodes on spot after the launch (spotPercentage=60)"},
			check: launchesAre(od("a", 1), spot("b", 1))},
		{name: "on-demand when the group is spot-heavy",
			in:     input(sigs(upNormal), nodes(node("a1", "a", onSpot), node("b1", "b", onSpot), node("a2", "a", onSpot)), nil),
			action: Up, reasons: []string{"spot_mix: 0 spot, 1 on-demand: 3 of 4 nodes on spot after the launch (spotPercentage=60)"},
			check: launchesAre(od("b", 1))},
		{name: "an exact half rounds toward on-demand", in: input(sigs(upNormal), nodes(node("a1", "a"), node("b1", "b", onSpot), node("a2", "a", onSpot)), nil, pct(50)),
			action: Up, reasons: []string{"spot_mix: 0 spot, 1 on-demand: 2 of 4 nodes on spot after the launch (spotPercentage=50)"}},
		{name: "0% is all on-demand", in: input(sigs(upHigh), workers(2), nil, pct(0)),
			action: Up, check: launchesAre(od("a", 1), od("b", 1))},
		{name: "100% is all spot", in: input(sigs(upHigh), workers(2), nil, pct(100)),
			action: Up, check: launchesAre(spot("a", 1), spot("b", 1))},
		{name: "instance types in configured order", in: input(sigs(upNormal), workers(2), nil,
			withGroup(func(g *config.NodeGroup) { g.InstanceTypes = []string{"t3a.small", "t3.small", "t2.small"} })),
			action: Up, check: func(t *testing.T, p Plan) {
				if want := []string{"t3a.small", "t3.small", "t2.small"}; !slices.Equal(p.ScaleUp.InstanceTypes, want) {
					t.Errorf("types = %v, want %v", p.ScaleUp.InstanceTypes, want)
				}
			}},
		{name: "scale-down keeps the share nearest the target before age",
			in: input(sigs(down), nodes(node("w01", "a", age(3*time.Hour)), node("w02", "b", onSpot), node("w03", "a", onSpot),
				node("w04", "b", onSpot), node("w05", "a", onSpot)), nil),
			action: Down, check: removes("w03")},
	})
}

func TestRule8Candidates(t *testing.T) {
	// a1 carries what a case is about; a2, b1 and b2 run two pods each, so
	// a1 is the best candidate unless something excludes it.
	cluster := func(a1 []func(*Node), a1Pods ...Pod) ([]Node, []Pod) {
		ns := nodes(node("a1", "a", a1...), node("a2", "a"), node("b1", "b"), node("b2", "b"))
		ps := slices.Clone(a1Pods)
		for _, n := range []string{"a2", "b1", "b2"} {
			ps = append(ps, pod(n+"-x", n), pod(n+"-y", n))
		}
		return ns, ps
	}
	excluded := func(name, reason string, a1 []func(*Node), a1Pods ...Pod) ruleCase {
		n, p := cluster(a1, a1Pods...)
		return ruleCase{name: name, in: input(sigs(down), n, p), action: Down, reasons: []string{reason}, check: keepsNode("a1")}
	}
	allowed := func(name string, a1 []func(*Node), a1Pods ...Pod) ruleCase {
		n, p := cluster(a1, a1Pods...)
		return ruleCase{name: name, in: input(sigs(down), n, p), action: Down, check: removes("a1")}
	}
	withPods := func(extra []Pod, a1Pods ...Pod) ruleCase {
		n, p := cluster(nil, a1Pods...)
		return ruleCase{in: input(sigs(down), n, append(p, extra...))}
	}
	none := []func(*Node){}
	apiPDB := PDB{Namespace: "default", Name: "api-pdb", Selector: map[string]string{"app": "api"}}
	api := pod("api", "a1", func(p *Pod) { p.Labels = map[string]string{"app": "api"} })
	pdbCase := func(name string, b PDB, want ruleCase) ruleCase {
		n, p := cluster(nil, api)
		want.name, want.in = name, input(sigs(down), n, p, withPDB(b))
		return want
	}
	cases := []ruleCase{
		excluded("not Ready", "no_candidate: node a1 is not Ready", []func(*Node){func(n *Node) { n.Ready = false }}),
		excluded("cordoned", "no_candidate: node a1 is cordoned", []func(*Node){func(n *Node) { n.Unschedulable = true }}),
		excluded("younger than minNodeAge", "no_candidate: node a1 is 5m0s old, minNodeAge=10m0s", []func(*Node){age(5 * time.Minute)}),
		excluded("node scale-down-disabled", "no_candidate: node a1 is annotated cluster-autoscaler.kubernetes.io/scale-down-disabled=true",
			[]func(*Node){nodeAnn(annScaleDownDisabled, "true")}),
		excluded("node safe-to-evict false", "no_candidate: node a1 is annotated cluster-autoscaler.kubernetes.io/safe-to-evict=false",
			[]func(*Node){nodeAnn(annSafeToEvict, "false")}),
		excluded("node do-not-disrupt", "no_candidate: node a1 is annotated karpenter.sh/do-not-disrupt=true",
			[]func(*Node){nodeAnn(annDoNotDisrupt, "true")}),
		excluded("StatefulSet pod", "no_candidate: node a1 has StatefulSet pod default/db-0", none, pod("db-0", "a1", owner("StatefulSet"))),
		excluded("kube-system pod not of a DaemonSet", "no_candidate: node a1 has kube-system pod kube-system/coredns not owned by a DaemonSet",
			none, pod("coredns", "a1", ns("kube-system"))),
		excluded("hostPath", "no_candidate: node a1 has pod default/logs with local storage (hostPath volume data)",
			none, pod("logs", "a1", vol(Volume{Name: "data", HostPath: true}))),
		excluded("emptyDir on disk", "no_candidate: node a1 has pod default/cache with local storage (emptyDir volume scratch)",
			none, pod("cache", "a1", vol(Volume{Name: "scratch", EmptyDir: true}))),
		excluded("no controller", "no_candidate: node a1 has pod default/bare with no controller", none, pod("bare", "a1", owner(""))),
		excluded("pod safe-to-evict false", "no_candidate: node a1 has pod default/p annotated cluster-autoscaler.kubernetes.io/safe-to-evict=false",
			none, pod("p", "a1", podAnn(annSafeToEvict, "false"))),
		excluded("pod scale-down-disabled", "no_candidate: node a1 has pod default/p annotated cluster-autoscaler.kubernetes.io/scale-down-disabled=true",
			none, pod("p", "a1", podAnn(annScaleDownDisabled, "true"))),
		excluded("pod do-not-disrupt", "no_candidate: node a1 has pod default/p annotated karpenter.sh/do-not-disrupt=true",
			none, pod("p", "a1", podAnn(annDoNotDisrupt, "true"))),
		excluded("DaemonSet pod do-not-disrupt", "no_candidate: node a1 has pod default/agent annotated karpenter.sh/do-not-disrupt=true",
			none, pod("agent", "a1", owner("DaemonSet"), podAnn(annDoNotDisrupt, "true"))),
		excluded("the first blocking pod by name is reported", "no_candidate: node a1 has StatefulSet pod default/a-db",
			none, pod("z-bare", "a1", owner("")), pod("a-db", "a1", owner("StatefulSet"))),
		allowed("kube-system DaemonSet pod", none, pod("flannel", "a1", ns("kube-system"), owner("DaemonSet"), vol(Volume{Name: "run", HostPath: true}))),
		allowed("emptyDir in memory", none, pod("tmp", "a1", vol(Volume{Name: "tmp", EmptyDir: true, EmptyDirMemory: true}))),
		allowed("mirror pod", none, pod("static", "a1", owner("Node"), ns("kube-system"))),
		allowed("finished pod", none, pod("job", "a1", owner(""), func(p *Pod) { p.Phase = "Succeeded" })),
		allowed("safe-to-evict true overrides everything about the pod", none,
			pod("db-0", "a1", owner("StatefulSet"), vol(Volume{Name: "d", HostPath: true}), podAnn(annSafeToEvict, "true"))),
		pdbCase("PDB with no disruption allowed", apiPDB, ruleCase{action: Down, check: keepsNode("a1"),
			reasons: []string{"no_candidate: node a1 has pod default/api covered by PodDisruptionBudget default/api-pdb with disruptionsAllowed=0"}}),
		pdbCase("PDB allowing a disruption", PDB{Namespace: "default", Name: "api-pdb", Selector: apiPDB.Selector, DisruptionsAllowed: 1},
			ruleCase{action: Down, check: removes("a1")}),
		pdbCase("PDB of another namespace", PDB{Namespace: "other", Name: "api-pdb", Selector: apiPDB.Selector},
			ruleCase{action: Down, check: removes("a1")}),
		pdbCase("PDB with an empty selector covers its namespace", PDB{Namespace: "default", Name: "all"},
			ruleCase{action: None, reasons: []string{"no_candidate: node a1 has pod default/api covered by PodDisruptionBudget default/all with disruptionsAllowed=0"}}),
	}
	rank := withPods(nil, pod("heavy", "a1", cpu(500)))
	rank.in.Snapshot.Pods = append(rank.in.Snapshot.Pods[:1:1], pod("light", "a2", cpu(100)), pod("b1-x", "b1"), pod("b1-y", "b1"), pod("b2-x", "b2"), pod("b2-y", "b2"))
	rank.name, rank.action, rank.check = "fewest pods, then lowest requested CPU", Down, removes("a2")
	rank.reasons = []string{"scale_down_candidate: node a2: 1 non-DaemonSet pod, 100m CPU requested, zone us-east-1a has 2 nodes, on-demand, created 2026-01-01T09:00:00Z; its pods fit on the remaining nodes"}
	cases = append(cases, rank)
	run(t, cases)
}

func TestRule8Rescheduling(t *testing.T) {
	full := func(name, on string) Pod { return pod(name, on, cpu(1500)) }
	ssd := label("disktype", "ssd")
	noisy := taint("dedicated", "batch", "NoSchedule")
	run(t, []ruleCase{
		{name: "no room for the candidate's pods anywhere",
			in:     input(sigs(down), nodes(node("a1", "a"), node("a2", "a"), node("b1", "b")), pods(full("p-a1", "a1"), full("p-a2", "a2"), full("p-b1", "b1"))),
			action: None, reasons: []string{
				"reschedule_check_failed: node a1: pod default/p-a1 (1500m CPU, 128Mi memory) fits on no other Ready, schedulable node",
				"reschedule_check_failed: node a2: pod default/p-a2 (1500m CPU, 128Mi memory) fits on no other Ready, schedulable node",
			}},
		{name: "the next candidate is taken when the first's pods do not fit",
			in: input(sigs(down), nodes(node("a1", "a", ssd), node("a2", "a"), node("b1", "b")),
				pods(pod("ssd", "a1", cpu(100), selector("disktype", "ssd")), pod("web", "a2", cpu(200)))),
			action: Down, reasons: []string{"reschedule_check_failed: node a1: pod default/ssd (100m CPU, 128Mi memory) fits on no other Ready, schedulable node"},
			check: removes("a2")},
		{name: "required node affinity is honoured",
			in: input(sigs(down), nodes(node("a1", "a"), node("a2", "a"), node("b1", "b")),
				pods(pod("pinned", "a1", affinity(labelZone, za)), pod("x", "a2"), pod("y", "a2"), pod("fill", "a2", cpu(1800)), pod("z", "b1"), pod("w", "b1"))),
			action: Down, check: removes("a2"), reasons: []string{"reschedule_check_failed: node a1: pod default/pinned (100m CPU, 128Mi memory) fits on no other Ready, schedulable node"}},
		{name: "NoSchedule taints keep pods off unless tolerated",
			in: input(sigs(down), nodes(node("a1", "a"), node("a2", "a", noisy), node("b1", "b", noisy)),
				pods(pod("p", "a1"), pod("x", "a2"), pod("y", "a2"), pod("z", "b1"), pod("w", "b1"))),
			action: Down, check: removes("a2"), reasons: []string{"reschedule_check_failed: node a1: pod default/p (100m CPU, 128Mi memory) fits on no other Ready, schedulable node"}},
		{name: "a tolerated taint is no obstacle",
			in: input(sigs(down), nodes(node("a1", "a"), node("a2", "a", noisy), node("b1", "b", noisy)),
				pods(pod("p", "a1", tolerate(Toleration{Key: "dedicated", Operator: "Exists"})), pod("x", "a2"), pod("y", "a2"), pod("z", "b1"), pod("w", "b1"))),
			action: Down, check: removes("a1")},
		{name: "NotReady and cordoned nodes take no pods",
			in: input(sigs(down), nodes(node("a1", "a"), node("a2", "a", func(n *Node) { n.Ready = false }), node("b1", "b", func(n *Node) { n.Unschedulable = true }),
				node("b2", "b", alloc(1000))), pods(pod("p", "a1", cpu(1000)), pod("q", "b2", cpu(1000)))),
			action: Down, check: removes("b2"), reasons: []string{"reschedule_check_failed: node a1: pod default/p (1000m CPU, 128Mi memory) fits on no other Ready, schedulable node"}},
		{name: "nodes of other groups take pods",
			in: input(sigs(down), nodes(node("a1", "a"), node("a2", "a", alloc(1500)), node("b1", "b", alloc(1500)), node("sys", "a", inGroup("system"))),
				pods(full("p", "a1"), full("q", "a2"), full("r", "b1"))),
			action: Down, check: removes("a1")},
		{name: "pod slots count", in: input(sigs(down), nodes(node("a1", "a"), node("a2", "a", func(n *Node) { n.Allocatable.Pods = 1 }),
			node("b1", "b", func(n *Node) { n.Allocatable.Pods = 1 })), pods(pod("p", "a1"), pod("q", "a2"), pod("r", "b1"))),
			action: Down, check: removes("a2"), reasons: []string{"reschedule_check_failed: node a1: pod default/p (100m CPU, 128Mi memory) fits on no other Ready, schedulable node"}},
	})
}

func TestRule9DryRunIsNotAnInput(t *testing.T) {
	var walk func(reflect.Type, string)
	seen := map[reflect.Type]bool{}
	walk = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for f := range ty.Fields() {
			if strings.EqualFold(f.Name, "dryRun") {
				t.Errorf("%s.%s: a dry-run setting would let the plan depend on it", path, f.Name)
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	walk(reflect.TypeFor[Input](), "Input")
	// The setting exists, in the configuration the scaler reads.
	if _, ok := reflect.TypeFor[config.Config]().FieldByName("DryRun"); !ok {
		t.Fatal("config.Config has no DryRun: rule 9's premise changed")
	}
	in := input(sigs(down), workers(5), nil)
	if a, b := Decide(in), Decide(in); !reflect.DeepEqual(a, b) || a.Action != Down {
		t.Errorf("plans differ or do nothing: %+v / %+v", a, b)
	}
}

func TestEnforceMinimum(t *testing.T) {
	run(t, []ruleCase{
		{name: "up to minNodes, empty zone first", in: input(nil, nodes(node("a1", "a")), nil, withGroup(noSpot, func(g *config.NodeGroup) { g.MinNodes = 3 })),
			decide: EnforceMinimum, action: Up,
			reasons: []string{"below_min: 1 node, minNodes=3", "zone_floor: zone us-east-1b has no node"},
			check:   launchesAre(od("a", 1), od("b", 1))},
		{name: "an empty zone is filled even at minNodes", in: input(nil, nodes(node("a1", "a"), node("a2", "a"), node("a3", "a")), nil),
			decide: EnforceMinimum, action: Up, reasons: []string{"zone_floor: zone us-east-1b has no node"},
			check: func(t *testing.T, p Plan) {
				if p.ScaleUp.Count != 1 || p.ScaleUp.PerZone[zb] != 1 {
					t.Errorf("scale-up = %+v", p.ScaleUp)
				}
			}},
		{name: "cooldowns do not hold it", in: input(nil, nodes(node("a1", "a")), nil, withState(GroupState{LastScaleUpAt: t0.Add(-time.Minute)})),
			decide: EnforceMinimum, action: Up, reasons: []string{"below_min: 1 node, minNodes=2"}},
		{name: "in-flight operations do", in: input(nil, nodes(node("a1", "a")), nil, withState(GroupState{InFlight: []Operation{{ID: "op-9", Kind: "scale_up", Count: 1, Zones: []string{zb}}}})),
			decide: EnforceMinimum, action: None, reasons: []string{"operation_in_flight: scale_up op-9 of 1 node"}},
		{name: "nothing to do", in: input(nil, workers(2), nil),
			decide: EnforceMinimum, action: None, reasons: []string{"floor_met: 2 nodes, minNodes=2, every zone has a node"}},
		{name: "never above maxNodes", in: input(nil, nodes(node("a1", "a"), node("a2", "a"), node("a3", "a")), nil, withGroup(func(g *config.NodeGroup) { g.MaxNodes = 3 })),
			decide: EnforceMinimum, action: None, reasons: []string{"at_max: 3 nodes, maxNodes=3"}},
	})
}

func TestReplacement(t *testing.T) {
	replace := func(name string) func(Input) Plan { return func(in Input) Plan { return Replacement(in, name) } }
	oneType := withGroup(func(g *config.NodeGroup) { g.InstanceTypes = []string{"t3.small"} })
	run(t, []ruleCase{
		{name: "below minNodes: spot of another type, same zone",
			in:     input(nil, nodes(node("a1", "a", onSpot), node("b1", "b")), nil),
			decide: replace("a1"), action: Up, reasons: []string{
				"replace_interrupted: node a1 (spot t3.small in us-east-1a) is interrupted; without it the group has 1 node, minNodes=2, zone us-east-1a has no node",
				"spot_mix: spot, t3a.small first: 1 of 2 nodes on spot after the launch (spotPercentage=60)",
			}, check: func(t *testing.T, p Plan) {
				launchesAre(spot("a", 1))(t, p)
				if want := []string{"t3a.small", "t3.small"}; !slices.Equal(p.ScaleUp.InstanceTypes, want) {
					t.Errorf("types = %v, want %v", p.ScaleUp.InstanceTypes, want)
				}
			}},
		{name: "one instance type: on-demand", in: input(nil, nodes(node("a1", "a", onSpot), node("b1", "b")), nil, oneType),
			decide: replace("a1"), action: Up,
			reasons: []string{"spot_mix: on-demand: the spot share asks for spot but t3.small is the group's only instance type"},
			check:   launchesAre(od("a", 1))},
		{name: "spot share already met: on-demand",
			in:     input(nil, nodes(node("a1", "a", onSpot), node("a2", "a", onSpot), node("b1", "b", onSpot)), nil, withGroup(func(g *config.NodeGroup) { g.MinNodes = 3 })),
			decide: replace("a1"), action: Up,
			reasons: []string{"spot_mix: on-demand: 2 of 3 nodes on spot after the launch (spotPercentage=60)"},
			check:   launchesAre(od("a", 1))},
		{name: "the zone floor alone asks for it", in: input(nil, nodes(node("a1", "a", onSpot), node("b1", "b"), node("b2", "b")), nil),
			decide: replace("a1"), action: Up,
			reasons: []string{"replace_interrupted: node a1 (spot t3.small in us-east-1a) is interrupted; without it the group has 2 nodes, zone us-east-1a has no node"},
			check:   func(t *testing.T, p Plan) { launchesAre(spot("a", 1))(t, p) }},
		{name: "another zone left empty comes first", in: input(nil, nodes(node("a1", "a"), node("a2", "a", onSpot), node("a3", "a")), nil, oneType),
			decide: replace("a2"), action: Up, check: launchesAre(od("b", 1))},
		{name: "not needed", in: input(nil, workers(4, onSpot), nil),
			decide: replace("w01"), action: None,
			reasons: []string{"replacement_not_needed: without node w01 the group keeps 3 nodes, minNodes=2, every zone has a node, and its pods fit on the others"}},
		{name: "its pods would have no room", in: input(nil, workers(3, onSpot), pods(pod("big1", "w01", cpu(1500)), pod("big2", "w02", cpu(1500)), pod("big3", "w03", cpu(1500)))),
			decide: replace("w01"), action: Up,
			reasons: []string{"replace_interrupted: node w01 (spot t3.small in us-east-1a) is interrupted; without it the group has 2 nodes, and pod default/big1 fits on no other node"}},
		{name: "nodes being removed count as gone",
			in: input(nil, nodes(node("a1", "a", onSpot), node("b1", "b"), node("b2", "b")), nil,
				withState(GroupState{InFlight: []Operation{{ID: "op-3", Kind: "scale_down", Node: "b2"}}})),
			decide: replace("a1"), action: Up,
			reasons: []string{"replace_interrupted: node a1 (spot t3.small in us-east-1a) is interrupted; without it the group has 1 node, minNodes=2, zone us-east-1a has no node"}},
		{name: "never above maxNodes", in: input(nil, nodes(node("a1", "a"), node("a2", "a", onSpot), node("a3", "a")), nil, withGroup(func(g *config.NodeGroup) { g.MaxNodes = 2 })),
			decide: replace("a2"), action: None, reasons: []string{"at_max: without node a2 the group has 2 nodes, maxNodes=2"}},
		{name: "unknown node", in: input(nil, workers(2), nil), decide: replace("zz"), action: None,
			reasons: []string{"unknown_node: node zz is not in the snapshot"}},
		{name: "another group's node", in: input(nil, append(workers(2), node("s1", "a", inGroup("system"))), nil), decide: replace("s1"), action: None,
			reasons: []string{`unknown_node: node s1 belongs to group "system", not workers`}},
	})
}

// TestOrderIndependence shuffles every slice of the input: the plan, and
// its JSON, must not change.
func TestOrderIndependence(t *testing.T) {
	base := input(sigs(down, upNormal), workers(8), pods(pendingPod("p1", 1500, selector(labelZone, zb)), pendingPod("p2", 900), pendingPod("p3", 900),
		pendingPod("bad1", 100, selector("x", "y"), affinity("z", "w")), pendingPod("bad2", 5000),
		pendingPod("bad3", 100, func(p *Pod) { p.NodeSelector = map[string]string{labelZone: za, labelZoneBeta: zb} })), withGroup(func(g *config.NodeGroup) { g.MaxNodes = 20 }))
	downIn := input(sigs(down), workers(8), pods(pod("a", "w01"), pod("b", "w02", owner("")), pod("c", "w03", cpu(900)), pod("d", "w03")),
		withPDB(PDB{Namespace: "default", Name: "x", Selector: map[string]string{"app": "none"}}))
	for _, in := range []Input{base, downIn} {
		want := Decide(in)
		for i := range 50 {
			shuffled := in
			shuffled.Signals = shuffle(in.Signals, i)
			shuffled.Snapshot.Nodes = shuffle(in.Snapshot.Nodes, i)
			shuffled.Snapshot.Pods = shuffle(in.Snapshot.Pods, i)
			if got := Decide(shuffled); !reflect.DeepEqual(got, want) {
				t.Fatalf("order %d changed the plan:\n%v\nwant\n%v", i, got.Strings(), want.Strings())
			}
		}
	}
}

func shuffle[T any](s []T, seed int) []T {
	out := slices.Clone(s)
	r := uint64(seed)*0x9E3779B97F4A7C15 + 1
	for i := len(out) - 1; i > 0; i-- {
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		j := int(r % uint64(i+1))
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func TestLabelsMatchCloud(t *testing.T) {
	for got, want := range maps.All(map[string]string{
		labelZone: cloud.LabelZone, labelInstanceType: cloud.LabelInstanceType,
		labelMarket: cloud.LabelMarket, labelNodeGroup: cloud.LabelNodeGroup,
	}) {
		if got != want {
			t.Errorf("label %q, cloud says %q", got, want)
		}
	}
	if string(Spot) != string(cloud.Spot) || string(OnDemand) != string(cloud.OnDemand) {
		t.Errorf("markets differ from cloud's")
	}
}

func TestReasonString(t *testing.T) {
	for _, c := range []struct {
		r    Reason
		want string
	}{
		{Reason{Code: CodeCooldownActive, Until: time.Date(2026, 1, 1, 10, 5, 0, 0, time.UTC)}, "cooldown_active until=2026-01-01T10:05:00Z"},
		{Reason{Code: CodeNoCandidate, Detail: "node x has StatefulSet pod ns/y"}, "no_candidate: node x has StatefulSet pod ns/y"},
		{Reason{Code: CodeAtMax}, "at_max"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}
