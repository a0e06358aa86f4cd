package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

func decideDown(p *Plan, in *Input) {
	c1 := cooldown(p, in.Now, in.State.LastScaleDownAt, in.Group.Cooldowns.ScaleDown.D(), "scale-down cooldown", "scale-down")
	c2 := cooldown(p, in.Now, in.State.LastScaleUpAt, in.Group.ScaleDownDelayAfterScaleUp.D(), "scale-down delay", "scale-up")
	if c1 || c2 {
		return
	}
	g := newGroup(in, nil)
	if g.total-1 < in.Group.MinNodes {
		p.add(Reason{Code: CodeAtMin, Detail: fmt.Sprintf("%s, minNodes=%d", g.describe(), in.Group.MinNodes)})
		return
	}
	x := newIndex(in)
	cands, refused := x.candidates(g)
	var failed []Reason
	// Pods are checked in rank order and only until a node is found: the
	// ranking needs nothing but the index's counts, so a large cluster
	// costs one pass over its pods plus the pods of the nodes examined.
	sortRefused := func() {
		slices.SortStableFunc(refused, func(a, b Reason) int { return strings.Compare(a.Node, b.Node) })
	}
	for _, c := range cands {
		if why, ok := x.podsAllow(&c); !ok {
			refused = append(refused, Reason{Code: CodeNoCandidate, Node: c.node.Name, Detail: "node " + c.node.Name + " " + why})
			continue
		}
		if pi, ok := x.reschedule(c); !ok {
			r := Reason{Code: CodeRescheduleFailed, Node: c.node.Name}
			if len(failed) < maxListed { // the rest are only counted
				p := &in.Snapshot.Pods[pi]
				r.Detail = fmt.Sprintf("node %s: pod %s (%s) fits on no other Ready, schedulable node", c.node.Name, podName(p), fmtRes(request(p), false))
			}
			failed = append(failed, r)
			continue
		}
		sortRefused()
		appendCapped(p, refused, CodeNoCandidate, "more nodes excluded")
		appendCapped(p, failed, CodeRescheduleFailed, "more candidates whose pods do not fit elsewhere")
		n := c.node
		down := ScaleDown{Node: n.Name, Zone: n.Zone, InstanceID: n.InstanceID, InstanceType: n.InstanceType, Market: n.Market}
		down.Evict = make([]PodRef, 0, len(c.evict))
		for _, pi := range c.evict {
			pod := &in.Snapshot.Pods[pi]
			down.Evict = append(down.Evict, PodRef{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID})
		}
		slices.SortFunc(down.Evict, func(a, b PodRef) int { return byName(a.Namespace, a.Name, b.Namespace, b.Name) })
		p.add(Reason{Code: CodeCandidate, Node: n.Name, Detail: fmt.Sprintf(
			"node %s: %s, %dm CPU requested, zone %s has %s, %s, created %s; its pods fit on the remaining nodes",
			n.Name, plural(c.pods, "non-DaemonSet pod"), c.cpu, n.Zone, plural(c.zoneNodes, "node"), n.Market,
			n.Created.UTC().Format(time.RFC3339))})
		p.ScaleDown = &down
		p.Action = Down
		return
	}
	if len(cands) == 0 && len(refused) == 0 {
		p.add(Reason{Code: CodeNoCandidate, Detail: "node group " + in.Group.Name + " has no node in the snapshot"})
	}
	sortRefused()
	appendCapped(p, refused, CodeNoCandidate, "more nodes excluded")
	appendCapped(p, failed, CodeRescheduleFailed, "more candidates whose pods do not fit elsewhere")
}

// appendCapped adds the first maxListed reasons and one summary for the rest.
func appendCapped(p *Plan, rs []Reason, code Code, more string) {
	for i, r := range rs {
		if i == maxListed {
			p.add(Reason{Code: code, Detail: fmt.Sprintf("%d %s", len(rs)-maxListed, more)})
			return
		}
		p.add(r)
	}
}

// index is the snapshot arranged for scale-down: pods by node, what each
// node has free, and the PodDisruptionBudgets that allow no disruption.
// Building it is linear in nodes plus pods.
type index struct {
	in     *Input
	nodeOf map[string]int
	// podsOn[n] are the running (non-terminal) pods bound to node n, as
	// indices into Snapshot.Pods; one backing array for all nodes.
	podsOn [][]int32
	free   []Resources
	// workload and workloadCPU count, per node, the pods a drain evicts
	// (neither DaemonSet nor mirror pods) and their CPU requests.
	workload    []int
	workloadCPU []int64
	// blocked are, per namespace, the PDBs with disruptionsAllowed ≤ 0.
	blocked map[string][]blockingPDB
	// eligible caches, per scheduling constraint, the nodes a pod may move
	// to; built on first use.
	eligible map[targetKey]*targets
	dest     []int // Ready, schedulable nodes; sorted on first use
	// taints are the distinct NoSchedule/NoExecute taints of dest, and
	// taintMask[n] the ones node n carries (manyTaints: more than 64, so
	// tolerations are checked one by one instead).
	taints     []Taint
	taintMask  []uint64
	manyTaints bool
	rank       []int // position of each node in the sorted dest
	// labels indexes dest by label key, then value; built per key on use.
	labels map[string]map[string][]int
}

type targets struct {
	nodes  []int // in the order of dest: most free CPU first
	maxMem int64
}

func newIndex(in *Input) *index {
	nodes, pods := in.Snapshot.Nodes, in.Snapshot.Pods
	x := &index{in: in, nodeOf: make(map[string]int, len(nodes)), free: make([]Resources, len(nodes)),
		workload: make([]int, len(nodes)), workloadCPU: make([]int64, len(nodes))}
	for i := range nodes {
		if _, dup := x.nodeOf[nodes[i].Name]; !dup {
			x.nodeOf[nodes[i].Name] = i
		}
	}
	at := make([]int32, len(pods))
	count := make([]int32, len(nodes)+1)
	// One pass over the pods (they are the bulk of the snapshot's memory);
	// the second pass below reads only at.
	for i := range pods {
		at[i] = -1
		p := &pods[i]
		if p.NodeName == "" || terminal(p) {
			continue
		}
		n, ok := x.nodeOf[p.NodeName]
		if !ok {
			continue
		}
		at[i] = int32(n)
		count[n]++
		x.free[n] = x.free[n].add(request(p))
		if p.OwnerKind != kindDaemonSet && p.OwnerKind != kindNode {
			x.workload[n]++
			x.workloadCPU[n] += p.Requests.MilliCPU
		}
	}
	flat := make([]int32, 0, len(pods))
	x.podsOn = make([][]int32, len(nodes))
	start := 0
	for n := range nodes {
		x.podsOn[n] = flat[start : start : start+int(count[n])]
		start += int(count[n])
	}
	for i, n := range at {
		if n >= 0 {
			x.podsOn[n] = append(x.podsOn[n], int32(i))
		}
	}
	for n := range nodes {
		x.free[n] = podSlots(nodes[n].Allocatable).sub(x.free[n])
		if nodes[n].Ready && !nodes[n].Unschedulable && x.nodeOf[nodes[n].Name] == n {
			x.dest = append(x.dest, n)
		}
	}
	for i := range in.Snapshot.PDBs {
		b := &in.Snapshot.PDBs[i]
		if b.DisruptionsAllowed <= 0 {
			if x.blocked == nil {
				x.blocked = map[string][]blockingPDB{}
			}
			bp := blockingPDB{pdb: b}
			for _, k := range sortedKeys(b.Selector) {
				bp.selector = append(bp.selector, [2]string{k, b.Selector[k]})
			}
			x.blocked[b.Namespace] = append(x.blocked[b.Namespace], bp)
		}
	}
	return x
}

// blockingPDB is a PodDisruptionBudget that allows no disruption, with its
// selector flattened so that matching a pod iterates no map.
type blockingPDB struct {
	pdb      *PDB
	selector [][2]string
}

// covers reports whether the PDB selects a pod with labels; an empty
// selector selects every pod of its namespace.
func (b blockingPDB) covers(labels map[string]string) bool {
	for _, kv := range b.selector {
		if got, ok := labels[kv[0]]; !ok || got != kv[1] {
			return false
		}
	}
	return true
}

// candidate is a removable node with what ranks it.
type candidate struct {
	idx       int
	node      *Node
	pods      int   // non-DaemonSet pods
	cpu       int64 // CPU their requests add up to
	zoneNodes int
	marketDev int // distance of the spot share from the target after removal
	evict     []int32
}

// candidates returns the group's nodes that pass the node-level checks, in
// rank order (fewest non-DaemonSet pods, lowest requested CPU, zone with most
// nodes, market that keeps the spot share nearest its target, oldest, name),
// and a reason for each node that does not.
func (x *index) candidates(g *group) ([]candidate, []Reason) {
	in := x.in
	others := map[string]int{} // members per zone outside the configured ones
	for _, m := range g.members {
		if z := in.Snapshot.Nodes[m].Zone; g.zoneIndex(z) < 0 {
			others[z]++
		}
	}
	pct := in.Group.SpotPercentage
	var cands []candidate
	var refused []Reason
	refuse := func(n *Node, code Code, detail string) {
		refused = append(refused, Reason{Code: code, Node: n.Name, Detail: "node " + n.Name + " " + detail})
	}
	for _, m := range g.members {
		n := &in.Snapshot.Nodes[m]
		if x.nodeOf[n.Name] != m {
			continue
		}
		switch {
		case !n.Ready:
			refuse(n, CodeNoCandidate, "is not Ready")
			continue
		case n.Unschedulable:
			refuse(n, CodeNoCandidate, "is cordoned")
			continue
		}
		if age := in.Now.Sub(n.Created); age < in.Group.MinNodeAge.D() {
			refuse(n, CodeNoCandidate, fmt.Sprintf("is %s old, minNodeAge=%s", age.Round(time.Second), in.Group.MinNodeAge.D()))
			continue
		}
		if k, v, ok := keeps(n.Annotations); ok {
			refuse(n, CodeNoCandidate, "is annotated "+k+"="+v)
			continue
		}
		zoneNodes := others[n.Zone]
		if z := g.zoneIndex(n.Zone); z >= 0 {
			zoneNodes = g.zoneN[z]
			if zoneNodes <= 1 {
				refuse(n, CodeZoneFloor, "is the last node in zone "+n.Zone)
				continue
			}
		}
		c := candidate{idx: m, node: n, zoneNodes: zoneNodes, pods: x.workload[m], cpu: x.workloadCPU[m]}
		spot := g.spot
		if n.Market == Spot {
			spot--
		}
		c.marketDev = abs(100*spot - pct*(g.total-1))
		cands = append(cands, c)
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		switch {
		case a.pods != b.pods:
			return cmp.Compare(a.pods, b.pods)
		case a.cpu != b.cpu:
			return cmp.Compare(a.cpu, b.cpu)
		case a.zoneNodes != b.zoneNodes:
			return cmp.Compare(b.zoneNodes, a.zoneNodes)
		case a.marketDev != b.marketDev:
			return cmp.Compare(a.marketDev, b.marketDev)
		case !a.node.Created.Equal(b.node.Created):
			return a.node.Created.Compare(b.node.Created)
		}
		return strings.Compare(a.node.Name, b.node.Name)
	})
	return cands, refused
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// keeps reports the first annotation (in a fixed order) that keeps a node or
// pod from being disrupted.
func keeps(ann map[string]string) (string, string, bool) {
	switch {
	case ann[annScaleDownDisabled] == "true":
		return annScaleDownDisabled, "true", true
	case ann[annSafeToEvict] == "false":
		return annSafeToEvict, "false", true
	case ann[annDoNotDisrupt] == "true":
		return annDoNotDisrupt, "true", true
	}
	return "", "", false
}

// podsAllow checks the pods of c's node and fills c's evictions. When a pod
// keeps the node, it reports the one that sorts first by namespace/name, so
// the reason does not depend on the pods' order.
func (x *index) podsAllow(c *candidate) (string, bool) {
	pods := x.in.Snapshot.Pods
	c.evict = make([]int32, 0, x.workload[c.idx])
	var worst *Pod
	why := ""
	for _, pi := range x.podsOn[c.idx] {
		p := &pods[pi]
		if p.OwnerKind == kindNode {
			continue // a mirror pod lives and dies with its node
		}
		var pdbs []blockingPDB
		if x.blocked != nil {
			pdbs = x.blocked[p.Namespace]
		}
		if r := blocker(p, pdbs); r != "" {
			if worst == nil || p.Namespace < worst.Namespace || (p.Namespace == worst.Namespace && p.Name < worst.Name) {
				worst, why = p, r
			}
			continue
		}
		if p.OwnerKind == kindDaemonSet {
			continue
		}
		c.evict = append(c.evict, pi)
	}
	if worst != nil {
		return why, false
	}
	return "", true
}

// blocker says why pod p keeps its node, or "" when it does not.
func blocker(p *Pod, pdbs []blockingPDB) string {
	if len(p.Annotations) > 0 {
		if p.Annotations[annSafeToEvict] == "true" {
			return ""
		}
		if k, v, ok := keeps(p.Annotations); ok {
			return "has pod " + podName(p) + " annotated " + k + "=" + v
		}
	}
	if p.OwnerKind == kindDaemonSet {
		return ""
	}
	switch {
	case p.OwnerKind == kindStatefulSet:
		return "has StatefulSet pod " + podName(p)
	case p.Namespace == nsKubeSystem:
		return "has kube-system pod " + podName(p) + " not owned by a DaemonSet"
	case p.OwnerKind == "":
		return "has pod " + podName(p) + " with no controller"
	}
	for _, v := range p.Volumes {
		if v.HostPath {
			return "has pod " + podName(p) + " with local storage (hostPath volume " + v.Name + ")"
		}
		if v.EmptyDir && !v.EmptyDirMemory {
			return "has pod " + podName(p) + " with local storage (emptyDir volume " + v.Name + ")"
		}
	}
	for _, b := range pdbs {
		if b.covers(p.Labels) {
			return fmt.Sprintf("has pod %s covered by PodDisruptionBudget %s/%s with disruptionsAllowed=%d",
				podName(p), b.pdb.Namespace, b.pdb.Name, b.pdb.DisruptionsAllowed)
		}
	}
	return ""
}

func podName(p *Pod) string { return p.Namespace + "/" + p.Name }

// homeless returns the name of a pod on node name (DaemonSet and mirror
// pods aside) that fits on no other Ready, schedulable node, or "" when
// they all fit.
func (x *index) homeless(name string) string {
	m, ok := x.nodeOf[name]
	if !ok {
		return ""
	}
	pods := x.in.Snapshot.Pods
	c := candidate{idx: m, node: &x.in.Snapshot.Nodes[m]}
	for _, pi := range x.podsOn[m] {
		if k := pods[pi].OwnerKind; k != kindNode && k != kindDaemonSet {
			c.evict = append(c.evict, pi)
		}
	}
	if pi, fit := x.reschedule(c); !fit {
		return podName(&pods[pi])
	}
	return ""
}

// reschedule checks that c's evictable pods fit, by requests, on the other
// Ready, schedulable nodes they may run on (nodeSelector, required node
// affinity, NoSchedule/NoExecute taints), largest pod first, each on the
// node with the most free CPU that takes it. When they do not, it returns
// the pod that does not fit.
func (x *index) reschedule(c candidate) (int32, bool) {
	pods := x.in.Snapshot.Pods
	larger := func(a, b int32) int {
		pa, pb := &pods[a], &pods[b]
		switch {
		case pa.Requests.MilliCPU != pb.Requests.MilliCPU:
			return cmp.Compare(pb.Requests.MilliCPU, pa.Requests.MilliCPU)
		case pa.Requests.Memory != pb.Requests.Memory:
			return cmp.Compare(pb.Requests.Memory, pa.Requests.Memory)
		}
		return byName(pa.Namespace, pa.Name, pb.Namespace, pb.Name)
	}
	fail := func(pi int32) (int32, bool) { return pi, false }
	// First the cheap necessary condition: a pod larger than any one node's
	// free room fails whatever the packing; on a full cluster this settles
	// most candidates without sorting or packing.
	ts := make([]*targets, len(c.evict))
	worst := int32(-1)
	for i, pi := range c.evict {
		p := &pods[pi]
		ts[i] = x.targetsFor(p)
		room := int64(-1)
		for _, d := range ts[i].nodes {
			if d != c.idx {
				room = x.free[d].MilliCPU
				break
			}
		}
		if req := request(p); (req.MilliCPU > room || req.Memory > ts[i].maxMem) && (worst < 0 || larger(pi, worst) < 0) {
			worst = pi
		}
	}
	if worst >= 0 {
		return fail(worst)
	}
	order := make([]int, len(c.evict))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return larger(c.evict[a], c.evict[b]) })
	taken := map[int]Resources{}
	for _, i := range order {
		p := &pods[c.evict[i]]
		req := request(p)
		placed := false
		for _, d := range ts[i].nodes {
			if d == c.idx {
				continue
			}
			base := x.free[d]
			if base.MilliCPU < req.MilliCPU {
				break // sorted by free CPU: no later node has enough
			}
			if fits(req, base.sub(taken[d])) {
				taken[d] = taken[d].add(req)
				placed = true
				break
			}
		}
		if !placed {
			return fail(c.evict[i])
		}
	}
	return -1, true
}

// targetsFor returns the nodes pod p may be scheduled on, cached by what
// decides it: its label terms and which of the cluster's taints it tolerates.
func (x *index) targetsFor(p *Pod) *targets {
	x.prepare()
	k := targetKey{terms: termsKey(p)}
	if x.manyTaints {
		k.terms += tolerationsKey(p)
	} else {
		k.tol = x.tolerated(p)
	}
	if t, ok := x.eligible[k]; ok {
		return t
	}
	nodes := x.in.Snapshot.Nodes
	t := &targets{}
	terms := nodeTerms(p)
	from := x.dest
	if len(terms) > 0 {
		// Start from the nodes that carry the first term's label, found
		// through an index, rather than from every node: a pod pinned to
		// one node by hostname then costs one lookup, not a scan.
		from = x.withLabel(terms[0])
	}
	for _, n := range from {
		if !labelsMatch(terms, nodes[n].Labels) {
			continue
		}
		if x.manyTaints {
			if _, bad := untolerated(p, nodes[n].Taints); bad {
				continue
			}
		} else if x.taintMask[n]&^k.tol != 0 {
			continue
		}
		t.nodes = append(t.nodes, n)
		t.maxMem = max(t.maxMem, x.free[n].Memory)
	}
	x.eligible[k] = t
	return t
}

// targetKey is what decides where a pod may run.
type targetKey struct {
	terms string // nodeSelector and required affinity; "" for none
	tol   uint64 // bit i: the pod tolerates x.taints[i]
}

// prepare sorts the destinations (most free CPU first, then most free
// memory; every target list keeps this order) and collects the blocking
// taints they carry, once per decision.
func (x *index) prepare() {
	if x.eligible != nil {
		return
	}
	nodes := x.in.Snapshot.Nodes
	// Ties, frequent among identical nodes, go by a hash of the name (then
	// the name): independent of snapshot order, and cheaper than comparing
	// names that share long prefixes.
	hash := make([]uint64, len(nodes))
	for _, n := range x.dest {
		hash[n] = fnv64a(nodes[n].Name)
	}
	slices.SortFunc(x.dest, func(a, b int) int {
		fa, fb := x.free[a], x.free[b]
		switch {
		case fa.MilliCPU != fb.MilliCPU:
			return cmp.Compare(fb.MilliCPU, fa.MilliCPU)
		case fa.Memory != fb.Memory:
			return cmp.Compare(fb.Memory, fa.Memory)
		case hash[a] != hash[b]:
			return cmp.Compare(hash[a], hash[b])
		}
		return strings.Compare(nodes[a].Name, nodes[b].Name)
	})
	x.eligible = map[targetKey]*targets{}
	x.rank = make([]int, len(nodes))
	x.taintMask = make([]uint64, len(nodes))
	for i, n := range x.dest {
		x.rank[n] = i
		for _, t := range nodes[n].Taints {
			if !blocks(t) {
				continue
			}
			b := slices.Index(x.taints, t)
			if b < 0 {
				b = len(x.taints)
				x.taints = append(x.taints, t)
			}
			if b >= 64 {
				x.manyTaints = true
				continue
			}
			x.taintMask[n] |= 1 << b
		}
	}
}

// tolerated is the set of x.taints that p tolerates.
func (x *index) tolerated(p *Pod) uint64 {
	var m uint64
	for i, t := range x.taints {
		for _, tol := range p.Tolerations {
			if tolerates(tol, t) {
				m |= 1 << i
				break
			}
		}
	}
	return m
}

// withLabel returns the destinations whose label term.key has one of
// term.vals (any value when there are none), in the order of dest.
func (x *index) withLabel(term nodeTerm) []int {
	byValue, ok := x.labels[term.key]
	if !ok {
		byValue = map[string][]int{}
		for _, n := range x.dest {
			if v, ok := x.in.Snapshot.Nodes[n].Labels[term.key]; ok {
				byValue[v] = append(byValue[v], n)
			}
		}
		if x.labels == nil {
			x.labels = map[string]map[string][]int{}
		}
		x.labels[term.key] = byValue
	}
	if len(term.vals) == 1 {
		return byValue[term.vals[0]]
	}
	var out []int
	if len(term.vals) == 0 {
		for _, ns := range byValue {
			out = append(out, ns...)
		}
	} else {
		for _, v := range slices.Compact(slices.Sorted(slices.Values(term.vals))) {
			out = append(out, byValue[v]...)
		}
	}
	slices.SortFunc(out, func(a, b int) int { return cmp.Compare(x.rank[a], x.rank[b]) })
	return out
}

// termsKey identifies a pod's nodeSelector and required node affinity.
func termsKey(p *Pod) string {
	if len(p.NodeSelector) == 0 && len(p.RequiredNodeAffinity) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range sortedKeys(p.NodeSelector) {
		b.WriteString("s\x00" + k + "\x00" + p.NodeSelector[k] + "\x00")
	}
	for _, k := range sortedKeys(p.RequiredNodeAffinity) {
		b.WriteString("a\x00" + k + "\x00" + strings.Join(p.RequiredNodeAffinity[k], "\x01") + "\x00")
	}
	return b.String()
}

// tolerationsKey identifies a pod's tolerations, for clusters with more
// distinct taints than a mask holds.
func tolerationsKey(p *Pod) string {
	var b strings.Builder
	for _, t := range p.Tolerations {
		b.WriteString("t\x00" + t.Key + "\x00" + t.Operator + "\x00" + t.Value + "\x00" + t.Effect + "\x00")
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// byName orders pods by namespace, then name.
func byName(ans, an, bns, bn string) int {
	if ans != bns {
		return strings.Compare(ans, bns)
	}
	return strings.Compare(an, bn)
}

// fnv64a is the 64-bit FNV-1a hash of s.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
