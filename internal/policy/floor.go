package policy

import (
	"fmt"
	"slices"
)

// EnforceMinimum plans the launches that bring the group up to minNodes and
// one node in every zone: the reconciler's periodic repair. Cooldowns do not
// apply (a group below its floor must not wait), but an in-flight operation
// does: nothing is planned until it ends, and nodes it is provisioning count.
// The new nodes go first to the empty zones, then to the zones with the
// fewest nodes, with the spot share of Decide, and never above maxNodes.
func EnforceMinimum(in Input) Plan {
	p := Plan{NodeGroup: in.Group.Name, Action: None}
	if inFlight(&p, &in) {
		return p
	}
	g := newGroup(&in, nil)
	if len(g.zones) == 0 {
		p.add(Reason{Code: CodeNoZones, Detail: "node group " + in.Group.Name + " has no zones configured"})
		return p
	}
	short := in.Group.MinNodes - g.total
	empty := g.emptyZones()
	if short <= 0 && len(empty) == 0 {
		p.add(Reason{Code: CodeFloorMet, Detail: fmt.Sprintf("%s, minNodes=%d, every zone has a node", g.describe(), in.Group.MinNodes)})
		return p
	}
	room := in.Group.MaxNodes - g.total
	if room <= 0 {
		p.add(Reason{Code: CodeAtMax, Detail: fmt.Sprintf("%s, maxNodes=%d", g.describe(), in.Group.MaxNodes)})
		return p
	}
	if short > 0 {
		p.add(Reason{Code: CodeBelowMin, Detail: fmt.Sprintf("%s, minNodes=%d", g.describe(), in.Group.MinNodes)})
	}
	up := placement{g: g, room: room, want: max(short, 0)}.place(&p)
	p.ScaleUp = &up
	p.Action = Up
	return p
}

// Replacement plans one node to replace the interrupted node when, without
// it, the group would have fewer than minNodes, leave a zone empty, or
// leave some of its pods without room on the other nodes. Nodes
// that in-flight scale-down or interruption operations are removing are
// counted as gone; nodes being provisioned count. Cooldowns and in-flight
// operations do not hold it back: a spot interruption leaves two minutes.
//
// The replacement goes to the interrupted node's zone, unless another zone
// is left empty and that one is not. It is spot only when the spot share
// asks for spot and the group has another instance type; it is on-demand
// otherwise. Either way the interrupted node's instance type moves to the
// end of the preference order, away from the pool that was just reclaimed.
func Replacement(in Input, interrupted string) Plan {
	p := Plan{NodeGroup: in.Group.Name, Action: None}
	var lost *Node
	for i := range in.Snapshot.Nodes {
		if in.Snapshot.Nodes[i].Name == interrupted {
			lost = &in.Snapshot.Nodes[i]
			break
		}
	}
	switch {
	case lost == nil:
		p.add(Reason{Code: CodeUnknownNode, Node: interrupted, Detail: "node " + interrupted + " is not in the snapshot"})
		return p
	case lost.NodeGroup != in.Group.Name:
		p.add(Reason{Code: CodeUnknownNode, Node: interrupted, Detail: fmt.Sprintf("node %s belongs to group %q, not %s", interrupted, lost.NodeGroup, in.Group.Name)})
		return p
	}
	if len(in.Group.Zones) == 0 {
		p.add(Reason{Code: CodeNoZones, Detail: "node group " + in.Group.Name + " has no zones configured"})
		return p
	}
	leaving := map[string]bool{interrupted: true}
	for _, op := range in.State.InFlight {
		if (op.Kind == opScaleDown || op.Kind == opInterruption) && op.Node != "" {
			leaving[op.Node] = true
		}
	}
	g := newGroup(&in, leaving)
	lostZone := g.zoneIndex(lost.Zone)
	empty := g.emptyZones()
	homeless := ""
	if g.total >= in.Group.MinNodes && len(empty) == 0 {
		homeless = newIndex(&in).homeless(interrupted)
		if homeless == "" {
			p.add(Reason{Code: CodeReplacementNotNeeded, Node: interrupted, Detail: fmt.Sprintf(
				"without node %s the group keeps %s, minNodes=%d, every zone has a node, and its pods fit on the others", interrupted, g.describe(), in.Group.MinNodes)})
			return p
		}
	}
	if g.total >= in.Group.MaxNodes {
		p.add(Reason{Code: CodeAtMax, Detail: fmt.Sprintf("without node %s the group has %s, maxNodes=%d", interrupted, g.describe(), in.Group.MaxNodes)})
		return p
	}
	zone := lostZone
	if len(empty) > 0 && !slices.Contains(empty, lostZone) {
		zone = empty[0]
	}
	if zone < 0 {
		zone = fewest(g.zoneN, nil)
	}
	why := fmt.Sprintf("node %s (%s %s in %s) is interrupted; without it the group has %s", interrupted, lost.Market, lost.InstanceType, lost.Zone, g.describe())
	if g.total < in.Group.MinNodes {
		why += fmt.Sprintf(", minNodes=%d", in.Group.MinNodes)
	}
	if len(empty) > 0 {
		why += ", zone " + g.zones[empty[0]] + " has no node"
	}
	if homeless != "" {
		why += ", and pod " + homeless + " fits on no other node"
	}
	p.add(Reason{Code: CodeReplaceInterrupted, Node: interrupted, Detail: why})

	types := slices.Clone(in.Group.InstanceTypes)
	if i := slices.Index(types, lost.InstanceType); i >= 0 {
		types = append(slices.Delete(types, i, i+1), lost.InstanceType)
	}
	market := OnDemand
	wantSpot := spotTarget(g.total+1, in.Group.SpotPercentage) > g.spot
	otherType := slices.ContainsFunc(in.Group.InstanceTypes, func(t string) bool { return t != lost.InstanceType })
	switch {
	case wantSpot && otherType:
		market = Spot
		p.add(Reason{Code: CodeSpotMix, Detail: fmt.Sprintf("spot, %s first: %d of %s on spot after the launch (spotPercentage=%d)",
			types[0], g.spot+1, plural(g.total+1, "node"), in.Group.SpotPercentage)})
	case wantSpot:
		p.add(Reason{Code: CodeSpotMix, Detail: fmt.Sprintf("on-demand: the spot share asks for spot but %s is the group's only instance type", lost.InstanceType)})
	default:
		p.add(Reason{Code: CodeSpotMix, Detail: fmt.Sprintf("on-demand: %d of %s on spot after the launch (spotPercentage=%d)",
			g.spot, plural(g.total+1, "node"), in.Group.SpotPercentage)})
	}
	p.ScaleUp = &ScaleUp{
		Count:         1,
		Launches:      []Launch{{Zone: g.zones[zone], Market: market, Count: 1}},
		PerZone:       map[string]int{g.zones[zone]: 1},
		PerMarket:     map[Market]int{market: 1},
		InstanceTypes: types,
	}
	p.Action = Up
	return p
}
