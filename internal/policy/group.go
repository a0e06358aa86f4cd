package policy

import (
	"fmt"
	"slices"
)

// group is the node group as the bounds see it: which snapshot nodes are its
// members, how many nodes each configured zone has, and how many are spot.
// Nodes being provisioned (in-flight scale-up operations) count toward the
// total and their zones; nodes being removed can be left out (Replacement).
type group struct {
	in *Input
	// members are the indices of the group's snapshot nodes, in snapshot
	// order: whatever reads them must not depend on that order.
	members []int
	// zones are the configured zones; zoneN[i] counts nodes in zones[i],
	// provisioning included. Nodes in other zones count toward total only.
	zones []string
	zoneN []int
	// total counts members plus provisioning.
	total        int
	provisioning int
	// spot counts members on spot; provisioning nodes have no known market.
	spot int
}

func newGroup(in *Input, leaving map[string]bool) *group {
	g := &group{in: in, zones: in.Group.Zones, zoneN: make([]int, len(in.Group.Zones))}
	seen := make(map[string]bool)
	for i := range in.Snapshot.Nodes {
		n := &in.Snapshot.Nodes[i]
		if n.NodeGroup != in.Group.Name || leaving[n.Name] || seen[n.Name] {
			continue
		}
		seen[n.Name] = true
		g.members = append(g.members, i)
		g.total++
		if z := g.zoneIndex(n.Zone); z >= 0 {
			g.zoneN[z]++
		}
		if n.Market == Spot {
			g.spot++
		}
	}
	for _, op := range in.State.InFlight {
		if op.Kind != opScaleUp {
			continue
		}
		n := max(op.Count, len(op.Zones))
		g.total += n
		g.provisioning += n
		for _, z := range op.Zones {
			if i := g.zoneIndex(z); i >= 0 {
				g.zoneN[i]++
			}
		}
	}
	return g
}

// Operation kinds the policy reads.
const (
	opScaleUp      = "scale_up"
	opScaleDown    = "scale_down"
	opInterruption = "interruption"
)

func (g *group) zoneIndex(z string) int { return slices.Index(g.zones, z) }

// emptyZones are the configured zones without a node, in configured order.
func (g *group) emptyZones() []int {
	var out []int
	for i, n := range g.zoneN {
		if n == 0 {
			out = append(out, i)
		}
	}
	return out
}

// describe is "5 nodes" or "5 nodes (2 provisioning)".
func (g *group) describe() string {
	s := plural(g.total, "node")
	if g.provisioning > 0 {
		s += fmt.Sprintf(" (%d provisioning)", g.provisioning)
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// fewest returns the zone, among allowed (nil: every zone), with the fewest
// nodes in counts; ties go to the zone configured first.
func fewest(counts []int, allowed []int) int {
	best := -1
	consider := func(z int) {
		if best < 0 || counts[z] < counts[best] || (counts[z] == counts[best] && z < best) {
			best = z
		}
	}
	if allowed == nil {
		for z := range counts {
			consider(z)
		}
	} else {
		for _, z := range allowed {
			consider(z)
		}
	}
	return best
}

// spotTarget is the number of spot nodes, out of total, nearest to pct
// percent; an exact half rounds toward on-demand, the safer market.
func spotTarget(total, pct int) int {
	pct = min(max(pct, 0), 100)
	// nearest integer to total*pct/100, halves down: ceil(x - 0.5).
	return (2*total*pct + 99) / 200
}
