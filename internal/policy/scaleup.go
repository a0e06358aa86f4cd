package policy

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// newNode is a new node of the group as the scheduler would see it: the
// smallest allocatable among the group's instance types, less the largest
// DaemonSet overhead seen on a node of the group, with the labels and
// NoSchedule/NoExecute taints every node of the group shares.
type newNode struct {
	types    []string // instance types whose capacity is known
	alloc    Resources
	overhead Resources
	free     Resources
	labels   map[string]string
	taints   []Taint
}

// perNodeLabels differ on every node, so they are never part of what a new
// node is known to carry; the zone, instance-type and market labels are
// checked against the group's zones, types and spot share instead.
var perNodeLabels = []string{
	labelHostname, "k3s.io/hostname", "k3s.io/internal-ip", "k3s.io/external-ip",
	labelZone, labelZoneBeta, labelInstanceType, labelInstanceTypeBeta, labelMarket, labelCapacityType,
}

// transientTaint reports taints that come and go with a node's condition
// or its removal rather than with the group.
func transientTaint(t Taint) bool {
	return strings.HasPrefix(t.Key, "node.kubernetes.io/") ||
		strings.HasPrefix(t.Key, "node.cloudprovider.kubernetes.io/") ||
		t.Key == "ToBeDeletedByClusterAutoscaler" || t.Key == "DeletionCandidateOfClusterAutoscaler" ||
		t.Key == "karpenter.sh/disrupted"
}

func minRes(a, b Resources) Resources {
	return Resources{MilliCPU: min(a.MilliCPU, b.MilliCPU), Memory: min(a.Memory, b.Memory), Pods: min(a.Pods, b.Pods)}
}

func maxRes(a, b Resources) Resources {
	return Resources{MilliCPU: max(a.MilliCPU, b.MilliCPU), Memory: max(a.Memory, b.Memory), Pods: max(a.Pods, b.Pods)}
}

// typeCapacity is the allocatable of a node of type typ: the smallest seen
// on a node of the group of that type, else in.Capacity.
func typeCapacity(in *Input, g *group, typ string) (Resources, bool) {
	var out Resources
	found := false
	for _, m := range g.members {
		n := &in.Snapshot.Nodes[m]
		if n.InstanceType != typ || (n.Allocatable.MilliCPU == 0 && n.Allocatable.Memory == 0) {
			continue
		}
		a := podSlots(n.Allocatable)
		if !found {
			out, found = a, true
		} else {
			out = minRes(out, a)
		}
	}
	if found {
		return out, true
	}
	if r, ok := in.Capacity[typ]; ok && (r.MilliCPU > 0 || r.Memory > 0) {
		return podSlots(r), true
	}
	return Resources{}, false
}

// newNodeOf describes a new node of the group; daemons are the indices of
// the snapshot's bound DaemonSet pods.
func newNodeOf(in *Input, g *group, daemons []int) (newNode, bool) {
	var t newNode
	for _, typ := range in.Group.InstanceTypes {
		r, ok := typeCapacity(in, g, typ)
		if !ok {
			continue
		}
		if len(t.types) == 0 {
			t.alloc = r
		} else {
			t.alloc = minRes(t.alloc, r)
		}
		t.types = append(t.types, typ)
	}
	if len(t.types) == 0 {
		return t, false
	}

	pos := make(map[string]int, len(g.members))
	for i, m := range g.members {
		pos[in.Snapshot.Nodes[m].Name] = i
	}
	ds := make([]Resources, len(g.members))
	for _, i := range daemons {
		p := &in.Snapshot.Pods[i]
		if j, ok := pos[p.NodeName]; ok {
			ds[j] = ds[j].add(request(p))
		}
	}
	for _, r := range ds {
		t.overhead = maxRes(t.overhead, r)
	}
	t.free = t.alloc.sub(t.overhead)

	for i, m := range g.members {
		n := &in.Snapshot.Nodes[m]
		if i == 0 {
			t.labels = make(map[string]string, len(n.Labels)+1)
			for k, v := range n.Labels {
				if !slices.Contains(perNodeLabels, k) {
					t.labels[k] = v
				}
			}
			for _, taint := range n.Taints {
				if blocks(taint) && !transientTaint(taint) {
					t.taints = append(t.taints, taint)
				}
			}
			continue
		}
		for k, v := range t.labels {
			if got, ok := n.Labels[k]; !ok || got != v {
				delete(t.labels, k)
			}
		}
		t.taints = slices.DeleteFunc(t.taints, func(taint Taint) bool { return !slices.Contains(n.Taints, taint) })
	}
	slices.SortFunc(t.taints, func(a, b Taint) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value), strings.Compare(a.Effect, b.Effect))
	})
	if t.labels == nil {
		t.labels = map[string]string{}
	}
	t.labels[labelNodeGroup] = in.Group.Name
	return t, true
}

// zoneMask is a set of the group's zones by index; a region has a handful,
// so the first 64 configured zones are what constraints can select.
type zoneMask uint64

func allZones(n int) zoneMask {
	if n >= 64 {
		return ^zoneMask(0)
	}
	return zoneMask(1)<<n - 1
}

func (m zoneMask) list(n int) []int {
	var out []int
	for z := range min(n, 64) {
		if m&(1<<z) != 0 {
			out = append(out, z)
		}
	}
	return out
}

// admit checks a pending pod against a new node of the group. It returns the
// zones the pod may run in, or why no new node could run it. When several
// constraints fail, the one with the smallest label key is reported, so the
// reason does not depend on map order.
func (t *newNode) admit(in *Input, g *group, p *Pod) (zoneMask, string) {
	mask := allZones(len(g.zones))
	failKey, why := "", ""
	fail := func(key, msg string) {
		if why == "" || key < failKey {
			failKey, why = key, msg
		}
	}
	check := func(key string, vals []string, selector bool) {
		desc := func() string {
			if selector {
				return "nodeSelector " + key + "=" + vals[0]
			}
			if len(vals) == 0 {
				return "required node affinity on " + key
			}
			return "required node affinity " + key + " in (" + strings.Join(vals, ", ") + ")"
		}
		anyOf := func(allowed []string) bool {
			if len(vals) == 0 {
				return len(allowed) > 0
			}
			for _, v := range vals {
				if slices.Contains(allowed, v) {
					return true
				}
			}
			return false
		}
		switch key {
		case labelZone, labelZoneBeta:
			var m zoneMask
			for z, name := range g.zones {
				if z < 64 && (len(vals) == 0 || slices.Contains(vals, name)) {
					m |= 1 << z
				}
			}
			if mask&m == 0 {
				fail(key, desc()+" matches none of the group's zones ("+strings.Join(g.zones, ", ")+")")
			}
			mask &= m
		case labelInstanceType, labelInstanceTypeBeta:
			if !anyOf(in.Group.InstanceTypes) {
				fail(key, desc()+" matches none of the group's instance types ("+strings.Join(in.Group.InstanceTypes, ", ")+")")
			}
		case labelMarket, labelCapacityType:
			var markets []string
			if in.Group.SpotPercentage > 0 {
				markets = append(markets, string(Spot))
			}
			if in.Group.SpotPercentage < 100 {
				markets = append(markets, string(OnDemand))
			}
			if !anyOf(markets) {
				fail(key, desc()+fmt.Sprintf(" matches no market of the group (spotPercentage=%d)", in.Group.SpotPercentage))
			}
		default:
			got, ok := t.labels[key]
			if !ok || (len(vals) > 0 && !slices.Contains(vals, got)) {
				fail(key, desc()+" is not met by a new node of group "+in.Group.Name)
			}
		}
	}
	// Keys in a fixed order: two zone labels that disagree fail on the
	// same one whatever the maps' order.
	var one [1]string
	for _, k := range keysInOrder(p.NodeSelector) {
		one[0] = p.NodeSelector[k]
		check(k, one[:], true)
	}
	for _, k := range keysInOrder(p.RequiredNodeAffinity) {
		check(k, p.RequiredNodeAffinity[k], false)
	}
	if why != "" {
		return 0, why
	}
	if taint, ok := untolerated(p, t.taints); ok {
		return 0, "does not tolerate taint " + fmtTaint(taint) + " of group " + in.Group.Name
	}
	if req := request(p); !fits(req, t.free) {
		return 0, fmt.Sprintf("requests %s, more than an empty %s node offers (%s after DaemonSets)",
			fmtRes(req, false), t.types[0], fmtRes(t.free, true))
	}
	return mask, ""
}

// keysInOrder is sortedKeys without the sort (or its allocation) for the
// usual map of at most one key.
func keysInOrder[V any](m map[string]V) []string {
	if len(m) > 1 {
		return sortedKeys(m)
	}
	for k := range m {
		return []string{k}
	}
	return nil
}

func fmtTaint(t Taint) string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	return s + ":" + t.Effect
}

// fmtRes is "500m CPU, 256Mi memory" and, with pods, ", 3 pods".
func fmtRes(r Resources, pods bool) string {
	s := fmt.Sprintf("%dm CPU, %dMi memory", r.MilliCPU, r.Memory>>20)
	if pods && r.Pods < unlimitedPods/2 {
		s += ", " + plural(int(r.Pods), "pod")
	}
	return s
}

// pending reports whether p is a pod a scale-up is for: not bound, marked
// unschedulable by the scheduler, and not a DaemonSet's (those follow nodes).
func pending(p *Pod) bool {
	return p.NodeName == "" && (p.Phase == "Pending" || p.Phase == "") && p.Unschedulable && p.OwnerKind != kindDaemonSet
}

// zoneClass gathers pending pods that may run in the same zones, and how
// many new nodes they fill.
type zoneClass struct {
	mask  zoneMask
	zones []int // nil when any zone will do
	items []item
	bins  int
}

type item struct {
	pod  *Pod
	req  Resources
	size float64
}

// sizing is what the pending pods ask of a scale-up.
type sizing struct {
	classes []zoneClass
	reasons []Reason
}

// size packs the pending pods, first-fit-decreasing, onto empty new nodes,
// per zone class. It opens at most room+1 nodes: past that the scale-up is
// capped by maxNodes whatever the rest need.
func size(in *Input, g *group, room int) sizing {
	var sz sizing
	// One pass over the pods, the bulk of the snapshot's memory.
	var pods []*Pod
	var daemons []int
	for i := range in.Snapshot.Pods {
		p := &in.Snapshot.Pods[i]
		switch {
		case pending(p):
			pods = append(pods, p)
		case p.OwnerKind == kindDaemonSet && p.NodeName != "" && !terminal(p):
			daemons = append(daemons, i)
		}
	}
	if len(pods) == 0 {
		return sz
	}
	t, ok := newNodeOf(in, g, daemons)
	if !ok {
		sz.reasons = append(sz.reasons, Reason{Code: CodeCapacityUnknown, Detail: fmt.Sprintf(
			"%s pending but no allocatable known for %s (no such node in the group, none in Capacity)",
			plural(len(pods), "pod"), strings.Join(in.Group.InstanceTypes, ", "))})
		return sz
	}

	type unsched struct {
		ref PodRef
		why string
	}
	var refused []unsched
	byMask := map[zoneMask]int{}
	full := allZones(len(g.zones))
	for _, p := range pods {
		mask, why := t.admit(in, g, p)
		if why != "" {
			refused = append(refused, unsched{PodRef{p.Namespace, p.Name, p.UID}, why})
			continue
		}
		ci, ok := byMask[mask]
		if !ok {
			ci = len(sz.classes)
			byMask[mask] = ci
			c := zoneClass{mask: mask}
			if mask != full {
				c.zones = mask.list(len(g.zones))
			}
			sz.classes = append(sz.classes, c)
		}
		req := request(p)
		sz.classes[ci].items = append(sz.classes[ci].items, item{pod: p, req: req, size: share(req, t.free)})
	}
	// Most constrained classes first: they are packed and placed first.
	slices.SortFunc(sz.classes, func(a, b zoneClass) int {
		return cmp.Or(cmp.Compare(bits.OnesCount64(uint64(a.mask)), bits.OnesCount64(uint64(b.mask))), cmp.Compare(a.mask, b.mask))
	})

	bins, admitted, overflow := 0, 0, 0
	for ci := range sz.classes {
		c := &sz.classes[ci]
		admitted += len(c.items)
		n, over := ffd(c.items, t.free, room+1-bins)
		c.bins = n
		bins += n
		overflow += over
	}
	if admitted > 0 {
		d := fmt.Sprintf("%s need %s (first-fit-decreasing onto empty %s nodes: %s each after DaemonSets)",
			plural(admitted, "pending pod"), plural(bins, "new node"), strings.Join(t.types, "/"), fmtRes(t.free, true))
		if overflow > 0 {
			d = fmt.Sprintf("%s need more than the %s maxNodes=%d leaves (%d not packed)",
				plural(admitted, "pending pod"), plural(room, "node"), in.Group.MaxNodes, overflow)
		}
		sz.reasons = append(sz.reasons, Reason{Code: CodePendingPodsNeed, Detail: d})
	}

	slices.SortFunc(refused, func(a, b unsched) int {
		return byName(a.ref.Namespace, a.ref.Name, b.ref.Namespace, b.ref.Name)
	})
	for i, u := range refused {
		if i == maxListed {
			sz.reasons = append(sz.reasons, Reason{Code: CodeUnschedulableByScaleUp,
				Detail: fmt.Sprintf("%d more pending pods no new node could run", len(refused)-maxListed)})
			break
		}
		sz.reasons = append(sz.reasons, Reason{Code: CodeUnschedulableByScaleUp, Pod: u.ref.String(),
			Detail: "pod " + u.ref.String() + " " + u.why})
	}
	return sz
}

// share is the larger of the CPU and memory fractions of capacity a request
// takes: the "size" first-fit-decreasing sorts by.
func share(req, capacity Resources) float64 {
	var s float64
	if capacity.MilliCPU > 0 {
		s = float64(req.MilliCPU) / float64(capacity.MilliCPU)
	}
	if capacity.Memory > 0 {
		s = max(s, float64(req.Memory)/float64(capacity.Memory))
	}
	return s
}

// ffd packs items first-fit-decreasing onto nodes of free capacity each and
// returns how many nodes it opened, never more than limit, and how many
// items did not fit in those. Bins that can no longer hold the smallest
// item leave the scan, so identical pods pack in linear time.
func ffd(items []item, free Resources, limit int) (int, int) {
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.size != b.size:
			return cmp.Compare(b.size, a.size)
		case a.req.MilliCPU != b.req.MilliCPU:
			return cmp.Compare(b.req.MilliCPU, a.req.MilliCPU)
		case a.req.Memory != b.req.Memory:
			return cmp.Compare(b.req.Memory, a.req.Memory)
		}
		return byName(a.pod.Namespace, a.pod.Name, b.pod.Namespace, b.pod.Name)
	})
	least := Resources{MilliCPU: items[0].req.MilliCPU, Memory: items[0].req.Memory, Pods: 1}
	for _, it := range items {
		least.MilliCPU = min(least.MilliCPU, it.req.MilliCPU)
		least.Memory = min(least.Memory, it.req.Memory)
	}
	var bins []Resources
	var active []int
	overflow := 0
	for _, it := range items {
		placed := false
		w, i := 0, 0
		for ; i < len(active); i++ {
			b := active[i]
			if fits(it.req, bins[b]) {
				bins[b] = bins[b].sub(it.req)
				placed = true
			}
			if fits(least, bins[b]) {
				active[w] = b
				w++
			}
			if placed {
				i++
				break
			}
		}
		w += copy(active[w:], active[i:])
		active = active[:w]
		if placed {
			continue
		}
		if len(bins) >= limit {
			overflow++
			continue
		}
		bins = append(bins, free.sub(it.req))
		if fits(least, bins[len(bins)-1]) {
			active = append(active, len(bins)-1)
		}
	}
	return len(bins), overflow
}

// placement turns a scale-up's needs into zones: first one node for every
// empty zone, then the pending pods' nodes (most zone-constrained first),
// then whatever the step or minNodes still asks for, each to the zone with
// the fewest nodes; the tail past room is cut.
type placement struct {
	g       *group
	room    int
	want    int // nodes asked for by the step and minNodes
	classes []zoneClass
}

func (pl placement) place(p *Plan) ScaleUp {
	g := pl.g
	counts := slices.Clone(g.zoneN)
	bins := make([]int, len(pl.classes))
	for i, c := range pl.classes {
		bins[i] = c.bins
	}
	var slots []int
	put := func(z int) {
		slots = append(slots, z)
		counts[z]++
	}
	for _, z := range g.emptyZones() {
		p.add(Reason{Code: CodeZoneFloor, Detail: "zone " + g.zones[z] + " has no node"})
		// A node for an empty zone also serves a class that may run there.
		for i, c := range pl.classes {
			if bins[i] > 0 && (c.zones == nil || slices.Contains(c.zones, z)) {
				bins[i]--
				break
			}
		}
		put(z)
	}
	for i, c := range pl.classes {
		for range bins[i] {
			put(fewest(counts, c.zones))
		}
	}
	for len(slots) < pl.want {
		put(fewest(counts, nil))
	}
	if len(slots) > pl.room {
		p.add(Reason{Code: CodeCappedAtMax, Detail: fmt.Sprintf("wanted %s, maxNodes=%d leaves room for %d",
			plural(len(slots), "node"), g.in.Group.MaxNodes, pl.room)})
		slots = slots[:pl.room]
	}
	perZone := make([]int, len(g.zones))
	for _, z := range slots {
		perZone[z]++
	}
	return launches(p, g, perZone, slices.Clone(g.in.Group.InstanceTypes))
}

// launches splits the new nodes of each zone between spot and on-demand so
// that the group's spot share after the launch is the nearest to
// spotPercentage, spreading spot over the zones with the lowest spot share.
func launches(p *Plan, g *group, perZone []int, types []string) ScaleUp {
	count := 0
	for _, n := range perZone {
		count += n
	}
	pct := g.in.Group.SpotPercentage
	after := g.total + count
	spotNew := min(max(spotTarget(after, pct)-g.spot, 0), count)

	zoneSpot := make([]int, len(g.zones))
	for _, m := range g.members {
		n := &g.in.Snapshot.Nodes[m]
		if z := g.zoneIndex(n.Zone); z >= 0 && n.Market == Spot {
			zoneSpot[z]++
		}
	}
	spotZ := make([]int, len(g.zones))
	for range spotNew {
		best := -1
		for z := range g.zones {
			if perZone[z]-spotZ[z] == 0 {
				continue
			}
			// Compare (spot_z)/(total_z) across zones without division.
			if best < 0 || (zoneSpot[z]+spotZ[z])*(g.zoneN[best]+perZone[best]) < (zoneSpot[best]+spotZ[best])*(g.zoneN[z]+perZone[z]) {
				best = z
			}
		}
		spotZ[best]++
	}

	up := ScaleUp{Count: count, PerZone: map[string]int{}, PerMarket: map[Market]int{}, InstanceTypes: types}
	for z, name := range g.zones {
		if s := spotZ[z]; s > 0 {
			up.Launches = append(up.Launches, Launch{Zone: name, Market: Spot, Count: s})
		}
		if od := perZone[z] - spotZ[z]; od > 0 {
			up.Launches = append(up.Launches, Launch{Zone: name, Market: OnDemand, Count: od})
		}
		if perZone[z] > 0 {
			up.PerZone[name] = perZone[z]
		}
	}
	if spotNew > 0 {
		up.PerMarket[Spot] = spotNew
	}
	if count-spotNew > 0 {
		up.PerMarket[OnDemand] = count - spotNew
	}
	p.add(Reason{Code: CodeSpotMix, Detail: fmt.Sprintf("%d spot, %d on-demand: %d of %s on spot after the launch (spotPercentage=%d)",
		spotNew, count-spotNew, g.spot+spotNew, plural(after, "node"), pct)})
	return up
}
