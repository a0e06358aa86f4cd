package policy

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/config"
)

// propertyChecks is the number of random sequences TestPropertySequences
// runs unless -rapid.checks or RAPID_CHECKS says otherwise.
const propertyChecks = 10000

func TestMain(m *testing.M) {
	flag.Parse()
	set := os.Getenv("RAPID_CHECKS") != ""
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		n := propertyChecks
		if testing.Short() {
			n *= 5 // rapid runs a fifth of the checks under -short
		}
		if err := flag.Set("rapid.checks", fmt.Sprint(n)); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// sim is a node group and its cluster that a sequence of decisions is
// applied to, with operations that finish at random later steps.
type sim struct {
	g     config.NodeGroup
	now   time.Time
	nodes []Node
	pods  []Pod
	pdbs  []PDB
	state GroupState
	ops   []simOp
	seq   int
	// ups and downs are the times of the scale-ups and scale-downs Decide
	// planned, to check the cooldowns over the whole sequence.
	ups, downs []time.Time
	seen       map[string]int // plans produced, by function and action
}

type simOp struct {
	op       Operation
	launches []Launch
}

var (
	simZones = []string{za, zb, zc}
	simTypes = []string{"t3.small", "t3a.small"}
	simSteps = []time.Duration{0, 30 * time.Second, time.Minute, 4*time.Minute + 59*time.Second, 5 * time.Minute,
		5*time.Minute + time.Second, 9*time.Minute + 59*time.Second, 10 * time.Minute, 20 * time.Minute}
	simDurations = []time.Duration{0, time.Minute, 5 * time.Minute, 10 * time.Minute}
)

func newSim(t *rapid.T) *sim {
	nz := rapid.IntRange(1, 3).Draw(t, "zones")
	g := config.DefaultNodeGroup("workers")
	g.Zones = simZones[:nz]
	g.InstanceTypes = simTypes[:rapid.IntRange(1, 2).Draw(t, "types")]
	g.MinNodes = rapid.IntRange(nz, nz+2).Draw(t, "min")
	g.MaxNodes = rapid.IntRange(g.MinNodes, g.MinNodes+5).Draw(t, "max")
	g.SpotPercentage = rapid.SampledFrom([]int{0, 25, 50, 60, 100}).Draw(t, "spot")
	g.ScaleUpStep.Normal = rapid.IntRange(1, 2).Draw(t, "normal")
	g.ScaleUpStep.High = g.ScaleUpStep.Normal + rapid.IntRange(0, 2).Draw(t, "high")
	g.Cooldowns.ScaleUp = config.Duration(rapid.SampledFrom(simDurations[1:]).Draw(t, "cdUp"))
	g.Cooldowns.ScaleDown = config.Duration(rapid.SampledFrom(simDurations[1:]).Draw(t, "cdDown"))
	g.ScaleDownDelayAfterScaleUp = config.Duration(rapid.SampledFrom(simDurations).Draw(t, "delay"))
	g.MinNodeAge = config.Duration(rapid.SampledFrom(simDurations).Draw(t, "minAge"))
	s := &sim{g: g, now: t0}
	// Start anywhere, bounds and zone floor included or not.
	for range rapid.IntRange(0, g.MaxNodes+1).Draw(t, "nodes") {
		s.addNode(t, rapid.SampledFrom(append(slices.Clone(g.Zones), "us-west-2a")).Draw(t, "zone"),
			rapid.SampledFrom([]Market{Spot, OnDemand}).Draw(t, "market"), t0.Add(-rapid.SampledFrom(simDurations).Draw(t, "age")))
	}
	if rapid.Bool().Draw(t, "system") {
		s.nodes = append(s.nodes, node("sys", "a", inGroup("system")))
	}
	for range rapid.IntRange(0, 8).Draw(t, "pods") {
		s.addPod(t)
	}
	if rapid.Bool().Draw(t, "pdb") {
		s.pdbs = append(s.pdbs, PDB{Namespace: "default", Name: "web", Selector: map[string]string{"app": "web"},
			DisruptionsAllowed: int32(rapid.IntRange(0, 1).Draw(t, "allowed"))})
	}
	if rapid.Bool().Draw(t, "lastUp") {
		s.state.LastScaleUpAt = t0.Add(-rapid.SampledFrom(simSteps).Draw(t, "sinceUp"))
	}
	if rapid.Bool().Draw(t, "lastDown") {
		s.state.LastScaleDownAt = t0.Add(-rapid.SampledFrom(simSteps).Draw(t, "sinceDown"))
	}
	return s
}

func (s *sim) addNode(t *rapid.T, zone string, market Market, created time.Time) {
	s.seq++
	n := node(fmt.Sprintf("n%02d", s.seq), zone, func(n *Node) {
		n.Created = created
		n.InstanceType = rapid.SampledFrom(s.g.InstanceTypes).Draw(t, "type")
		n.Ready = rapid.IntRange(0, 9).Draw(t, "ready") > 0
	})
	if market == Spot {
		onSpot(&n)
	}
	if rapid.IntRange(0, 9).Draw(t, "annotated") == 0 {
		n.Annotations = map[string]string{rapid.SampledFrom([]string{annScaleDownDisabled, annDoNotDisrupt}).Draw(t, "ann"): "true"}
	}
	s.nodes = append(s.nodes, n)
}

func (s *sim) addPod(t *rapid.T) {
	s.seq++
	name := fmt.Sprintf("p%02d", s.seq)
	cpu := rapid.SampledFrom([]int64{0, 100, 500, 1000, 1500, 2500}).Draw(t, "cpu")
	var p Pod
	if len(s.nodes) == 0 || rapid.IntRange(0, 3).Draw(t, "pending") == 0 {
		p = pendingPod(name, cpu)
		if rapid.IntRange(0, 3).Draw(t, "zoned") == 0 {
			p.NodeSelector = map[string]string{labelZone: rapid.SampledFrom(simZones).Draw(t, "podZone")}
		}
	} else {
		p = pod(name, rapid.SampledFrom(s.nodes).Draw(t, "on").Name, func(p *Pod) { p.Requests.MilliCPU = cpu })
	}
	p.OwnerKind = rapid.SampledFrom([]string{"ReplicaSet", "ReplicaSet", "ReplicaSet", "DaemonSet", "StatefulSet", "", "Node", "Job"}).Draw(t, "kind")
	if rapid.IntRange(0, 4).Draw(t, "system") == 0 {
		p.Namespace = "kube-system"
	}
	switch rapid.IntRange(0, 7).Draw(t, "extra") {
	case 0:
		p.Volumes = []Volume{{Name: "v", HostPath: true}}
	case 1:
		p.Volumes = []Volume{{Name: "v", EmptyDir: true, EmptyDirMemory: rapid.Bool().Draw(t, "memory")}}
	case 2:
		p.Annotations = map[string]string{annSafeToEvict: rapid.SampledFrom([]string{"true", "false"}).Draw(t, "safe")}
	}
	s.pods = append(s.pods, p)
}

func (s *sim) input(signals []alert.Signal) Input {
	return Input{Signals: signals, Snapshot: Snapshot{Nodes: s.nodes, Pods: s.pods, PDBs: s.pdbs}, Group: s.g, State: s.state, Now: s.now}
}

// count is the group's size as the rules define it, computed independently
// of the package: members plus provisioning, and per configured zone.
func (s *sim) count(leaving map[string]bool) (int, map[string]int) {
	total, zones := 0, map[string]int{}
	for _, n := range s.nodes {
		if n.NodeGroup == s.g.Name && !leaving[n.Name] {
			total++
			zones[n.Zone]++
		}
	}
	for _, o := range s.state.InFlight {
		if o.Kind == "scale_up" {
			total += o.Count
			for _, z := range o.Zones {
				zones[z]++
			}
		}
	}
	return total, zones
}

func (s *sim) emptyZones(zones map[string]int) int {
	n := 0
	for _, z := range s.g.Zones {
		if zones[z] == 0 {
			n++
		}
	}
	return n
}

// finish ends some in-flight operations: launched nodes join, removed nodes
// and their pods go.
func (s *sim) finish(t *rapid.T) {
	var keep []simOp
	for _, o := range s.ops {
		if !rapid.Bool().Draw(t, "finish") {
			keep = append(keep, o)
			continue
		}
		switch o.op.Kind {
		case "scale_up":
			for _, l := range o.launches {
				for range l.Count {
					s.addNode(t, l.Zone, l.Market, s.now)
				}
			}
		default:
			s.nodes = slices.DeleteFunc(s.nodes, func(n Node) bool { return n.Name == o.op.Node })
			s.pods = slices.DeleteFunc(s.pods, func(p Pod) bool { return p.NodeName == o.op.Node })
		}
	}
	s.ops = keep
	s.state.InFlight = nil
	for _, o := range s.ops {
		s.state.InFlight = append(s.state.InFlight, o.op)
	}
}

func (s *sim) launch(p Plan) {
	s.seq++
	op := Operation{ID: fmt.Sprintf("op-%d", s.seq), Kind: "scale_up", Count: p.ScaleUp.Count}
	for _, l := range p.ScaleUp.Launches {
		for range l.Count {
			op.Zones = append(op.Zones, l.Zone)
		}
	}
	s.ops = append(s.ops, simOp{op: op, launches: p.ScaleUp.Launches})
	s.state.InFlight = append(s.state.InFlight, op)
}

func (s *sim) remove(kind, name string) {
	s.seq++
	op := Operation{ID: fmt.Sprintf("op-%d", s.seq), Kind: kind, Node: name}
	s.ops = append(s.ops, simOp{op: op})
	s.state.InFlight = append(s.state.InFlight, op)
}

// TestPropertySequences applies random sequences of signals, cluster
// changes and clock steps, with every plan executed on the simulated
// cluster, and checks after each decision that bounds, the one-node-per-zone
// floor and the cooldowns hold and that the plan depends on nothing but its
// input: not on the order of slices, not on map iteration, not on a previous
// call (the input is left unchanged).
func TestPropertySequences(t *testing.T) {
	seen := map[string]int{}
	rapid.Check(t, func(t *rapid.T) {
		s := newSim(t)
		s.seen = seen
		for range rapid.IntRange(1, 8).Draw(t, "steps") {
			s.now = s.now.Add(rapid.SampledFrom(simSteps).Draw(t, "dt"))
			s.finish(t)
			s.perturb(t)
			switch rapid.IntRange(0, 5).Draw(t, "call") {
			case 0:
				s.enforce(t)
			case 1:
				s.replace(t)
			default:
				s.decide(t)
			}
		}
	})
	// The generator must reach every kind of plan, or the checks above
	// would hold vacuously.
	for _, k := range []string{"decide scale_up", "decide scale_down", "decide none", "enforce scale_up", "enforce none", "replace scale_up", "replace none"} {
		if seen[k] == 0 {
			t.Errorf("no sequence produced a %s plan", k)
		}
	}
	t.Logf("plans: %v", seen)
}

func (s *sim) perturb(t *rapid.T) {
	switch rapid.IntRange(0, 4).Draw(t, "perturb") {
	case 0:
		s.addPod(t)
	case 1:
		if len(s.pods) > 0 {
			i := rapid.IntRange(0, len(s.pods)-1).Draw(t, "podGone")
			s.pods = slices.Delete(slices.Clone(s.pods), i, i+1)
		}
	case 2:
		if len(s.nodes) > 0 {
			s.nodes = slices.Clone(s.nodes)
			n := &s.nodes[rapid.IntRange(0, len(s.nodes)-1).Draw(t, "flip")]
			if rapid.Bool().Draw(t, "cordon") {
				n.Unschedulable = !n.Unschedulable
			} else {
				n.Ready = !n.Ready
			}
		}
	}
}

// call runs f and checks it is a pure function of its input: it leaves its
// input as it was, and gives the same plan for a copy and for a copy whose
// slices are reordered.
func call(t *rapid.T, in Input, f func(Input) Plan) Plan {
	c := cloneInput(in)
	first := f(c)
	if !sameInput(in, c) {
		t.Fatalf("the decision changed its input")
	}
	p := f(in)
	if !samePlan(p, first) {
		t.Fatalf("same input, different plan:\n%v\n%v", p.Strings(), first.Strings())
	}
	seed := rapid.IntRange(0, 1<<20).Draw(t, "shuffle")
	c.Snapshot.Nodes = shuffle(c.Snapshot.Nodes, seed)
	c.Snapshot.Pods = shuffle(c.Snapshot.Pods, seed)
	c.Signals = shuffle(c.Signals, seed)
	if again := f(c); !samePlan(p, again) {
		t.Fatalf("reordered input, different plan:\n%v\n%v", p.Strings(), again.Strings())
	}
	checkShape(t, p)
	if len(p.Reasons) == 0 {
		t.Fatalf("plan without reasons")
	}
	if p.ScaleUp != nil {
		for _, l := range p.ScaleUp.Launches {
			if !slices.Contains(s0(in).Zones, l.Zone) {
				t.Fatalf("launch into %s, not a zone of the group", l.Zone)
			}
		}
	}
	return p
}

func s0(in Input) config.NodeGroup { return in.Group }

func (s *sim) decide(t *rapid.T) {
	var signals []alert.Signal
	for range rapid.IntRange(0, 3).Draw(t, "signals") {
		sg := rapid.SampledFrom([]alert.Signal{upNormal, upHigh, down, down}).Draw(t, "signal")
		if rapid.IntRange(0, 4).Draw(t, "otherGroup") == 0 {
			sg.NodeGroup = "other"
		}
		signals = append(signals, sg)
	}
	in := s.input(signals)
	p := call(t, in, Decide)
	s.seen["decide "+string(p.Action)]++
	var up, dn bool
	for _, sg := range signals {
		if sg.NodeGroup == s.g.Name {
			up = up || sg.Action == alert.ScaleUp
			dn = dn || sg.Action == alert.ScaleDown
		}
	}
	total, zones := s.count(nil)
	inCooldown := !s.state.LastScaleUpAt.IsZero() && s.now.Before(s.state.LastScaleUpAt.Add(s.g.Cooldowns.ScaleUp.D()))
	switch p.Action {
	case None:
		if up && len(s.state.InFlight) == 0 && !inCooldown && total < s.g.MaxNodes {
			t.Fatalf("a scale-up signal, room and no cooldown, but no scale-up: %v", p.Strings())
		}
	case Up:
		if !up {
			t.Fatalf("scale-up without a scale-up signal")
		}
		if len(s.state.InFlight) > 0 || inCooldown {
			t.Fatalf("scale-up during an in-flight operation or the cooldown: %v", p.Strings())
		}
		if after := total + p.ScaleUp.Count; after > s.g.MaxNodes {
			t.Fatalf("scale-up to %d nodes, maxNodes=%d", after, s.g.MaxNodes)
		}
		empty := s.emptyZones(zones)
		for z, n := range p.ScaleUp.PerZone {
			if zones[z] == 0 && n > 0 {
				empty--
			}
		}
		if want := max(0, s.emptyZones(zones)-p.ScaleUp.Count); empty != want {
			t.Fatalf("%d zones left empty after the scale-up, want %d", empty, want)
		}
		if p.ScaleUp.Count < min(s.g.ScaleUpStep.Normal, s.g.MaxNodes-total) {
			t.Fatalf("scale-up of %d below the step", p.ScaleUp.Count)
		}
		s.ups = append(s.ups, s.now)
		s.state.LastScaleUpAt = s.now
		s.launch(p)
	case Down:
		if !dn || up {
			t.Fatalf("scale-down without a scale-down signal, or with a scale-up one")
		}
		if len(s.state.InFlight) > 0 {
			t.Fatalf("scale-down during an in-flight operation")
		}
		if !s.state.LastScaleDownAt.IsZero() && s.now.Before(s.state.LastScaleDownAt.Add(s.g.Cooldowns.ScaleDown.D())) {
			t.Fatalf("scale-down within the scale-down cooldown")
		}
		if !s.state.LastScaleUpAt.IsZero() && s.now.Before(s.state.LastScaleUpAt.Add(s.g.ScaleDownDelayAfterScaleUp.D())) {
			t.Fatalf("scale-down within the delay after a scale-up")
		}
		if total-1 < s.g.MinNodes {
			t.Fatalf("scale-down to %d nodes, minNodes=%d", total-1, s.g.MinNodes)
		}
		i := slices.IndexFunc(s.nodes, func(n Node) bool { return n.Name == p.ScaleDown.Node })
		if i < 0 {
			t.Fatalf("scale-down of unknown node %s", p.ScaleDown.Node)
		}
		n := s.nodes[i]
		if n.NodeGroup != s.g.Name || !n.Ready || n.Unschedulable || s.now.Sub(n.Created) < s.g.MinNodeAge.D() || len(n.Annotations) > 0 {
			t.Fatalf("node %s is no candidate: %+v", n.Name, n)
		}
		if slices.Contains(s.g.Zones, n.Zone) && zones[n.Zone] < 2 {
			t.Fatalf("scale-down empties zone %s", n.Zone)
		}
		for _, pd := range s.pods {
			if pd.NodeName != n.Name || terminal(&pd) || pd.Annotations[annSafeToEvict] == "true" || pd.OwnerKind == "Node" {
				continue
			}
			if pd.OwnerKind == "StatefulSet" || pd.OwnerKind == "" || (pd.Namespace == "kube-system" && pd.OwnerKind != "DaemonSet") ||
				(pd.OwnerKind != "DaemonSet" && len(pd.Volumes) > 0 && !pd.Volumes[0].EmptyDirMemory) {
				t.Fatalf("node %s runs pod %s/%s (%s) that keeps it", n.Name, pd.Namespace, pd.Name, pd.OwnerKind)
			}
		}
		for _, u := range s.ups { // every scale-up so far came before this scale-down
			if s.now.Sub(u) < s.g.ScaleDownDelayAfterScaleUp.D() {
				t.Fatalf("scale-down %s after a scale-up, delay %s", s.now.Sub(u), s.g.ScaleDownDelayAfterScaleUp)
			}
		}
		s.downs = append(s.downs, s.now)
		s.state.LastScaleDownAt = s.now
		s.remove("scale_down", n.Name)
	}
	s.checkHistory(t)
}

// checkHistory checks the cooldowns over every action of the sequence.
func (s *sim) checkHistory(t *rapid.T) {
	for i := 1; i < len(s.ups); i++ {
		if gap := s.ups[i].Sub(s.ups[i-1]); gap < s.g.Cooldowns.ScaleUp.D() {
			t.Fatalf("scale-ups %s apart, cooldown %s", gap, s.g.Cooldowns.ScaleUp)
		}
	}
	for i, d := range s.downs {
		if i > 0 && d.Sub(s.downs[i-1]) < s.g.Cooldowns.ScaleDown.D() {
			t.Fatalf("scale-downs %s apart, cooldown %s", d.Sub(s.downs[i-1]), s.g.Cooldowns.ScaleDown)
		}
	}
}

func (s *sim) enforce(t *rapid.T) {
	p := call(t, s.input(nil), EnforceMinimum)
	s.seen["enforce "+string(p.Action)]++
	total, zones := s.count(nil)
	switch p.Action {
	case None:
		if len(s.state.InFlight) == 0 && total < s.g.MaxNodes && (total < s.g.MinNodes || s.emptyZones(zones) > 0) {
			t.Fatalf("below the floor with room, but nothing planned: %v", p.Strings())
		}
	case Up:
		after := total + p.ScaleUp.Count
		if len(s.state.InFlight) > 0 || after > s.g.MaxNodes {
			t.Fatalf("enforce to %d nodes (max %d) or during an operation", after, s.g.MaxNodes)
		}
		if after < s.g.MinNodes && after != s.g.MaxNodes {
			t.Fatalf("enforce stops at %d nodes, minNodes=%d", after, s.g.MinNodes)
		}
		for _, z := range s.g.Zones {
			if zones[z]+p.ScaleUp.PerZone[z] == 0 && after != s.g.MaxNodes {
				t.Fatalf("enforce leaves zone %s empty", z)
			}
		}
		s.launch(p)
	default:
		t.Fatalf("enforce planned %s", p.Action)
	}
}

func (s *sim) replace(t *rapid.T) {
	var names []string
	for _, n := range s.nodes {
		names = append(names, n.Name)
	}
	victim := rapid.SampledFrom(append(names, "gone")).Draw(t, "victim")
	p := call(t, s.input(nil), func(in Input) Plan { return Replacement(in, victim) })
	s.seen["replace "+string(p.Action)]++
	leaving := map[string]bool{victim: true}
	for _, o := range s.state.InFlight {
		if o.Node != "" {
			leaving[o.Node] = true
		}
	}
	total, _ := s.count(leaving)
	if p.Action == Up {
		if p.ScaleUp.Count != 1 || total+1 > s.g.MaxNodes {
			t.Fatalf("replacement of %d with %d nodes left, maxNodes=%d", p.ScaleUp.Count, total, s.g.MaxNodes)
		}
		s.launch(p)
	} else if p.Action != None {
		t.Fatalf("replacement planned %s", p.Action)
	}
	if slices.Contains(names, victim) {
		s.remove("interruption", victim)
	}
}

func cloneInput(in Input) Input {
	out := in
	out.Signals = slices.Clone(in.Signals)
	out.Snapshot.Nodes = slices.Clone(in.Snapshot.Nodes)
	for i, n := range in.Snapshot.Nodes {
		n.Labels, n.Annotations, n.Taints = maps.Clone(n.Labels), maps.Clone(n.Annotations), slices.Clone(n.Taints)
		out.Snapshot.Nodes[i] = n
	}
	out.Snapshot.Pods = slices.Clone(in.Snapshot.Pods)
	for i, p := range in.Snapshot.Pods {
		p.Labels, p.Annotations, p.NodeSelector = maps.Clone(p.Labels), maps.Clone(p.Annotations), maps.Clone(p.NodeSelector)
		p.Tolerations, p.Volumes = slices.Clone(p.Tolerations), slices.Clone(p.Volumes)
		if p.RequiredNodeAffinity != nil {
			aff := map[string][]string{}
			for k, v := range p.RequiredNodeAffinity {
				aff[k] = slices.Clone(v)
			}
			p.RequiredNodeAffinity = aff
		}
		out.Snapshot.Pods[i] = p
	}
	out.Snapshot.PDBs = slices.Clone(in.Snapshot.PDBs)
	for i := range out.Snapshot.PDBs {
		out.Snapshot.PDBs[i].Selector = maps.Clone(in.Snapshot.PDBs[i].Selector)
	}
	out.Group.Zones, out.Group.InstanceTypes = slices.Clone(in.Group.Zones), slices.Clone(in.Group.InstanceTypes)
	out.State.InFlight = slices.Clone(in.State.InFlight)
	for i := range out.State.InFlight {
		out.State.InFlight[i].Zones = slices.Clone(in.State.InFlight[i].Zones)
	}
	out.Capacity = maps.Clone(in.Capacity)
	return out
}

// sameInput is reflect.DeepEqual for inputs, written out: under -race the
// reflective walk would take most of the property test's time.
func sameInput(a, b Input) bool {
	return slices.Equal(a.Signals, b.Signals) && a.Now.Equal(b.Now) && sameGroup(a.Group, b.Group) &&
		a.State.LastScaleUpAt.Equal(b.State.LastScaleUpAt) && a.State.LastScaleDownAt.Equal(b.State.LastScaleDownAt) &&
		slices.EqualFunc(a.State.InFlight, b.State.InFlight, func(x, y Operation) bool {
			return x.ID == y.ID && x.Kind == y.Kind && x.Node == y.Node && x.Count == y.Count && slices.Equal(x.Zones, y.Zones)
		}) &&
		maps.Equal(a.Capacity, b.Capacity) &&
		slices.EqualFunc(a.Snapshot.Nodes, b.Snapshot.Nodes, func(x, y Node) bool {
			return x.Name == y.Name && x.NodeGroup == y.NodeGroup && x.InstanceID == y.InstanceID && x.Zone == y.Zone &&
				x.Market == y.Market && x.InstanceType == y.InstanceType && x.Allocatable == y.Allocatable &&
				x.Created.Equal(y.Created) && x.Ready == y.Ready && x.Unschedulable == y.Unschedulable &&
				maps.Equal(x.Labels, y.Labels) && maps.Equal(x.Annotations, y.Annotations) && slices.Equal(x.Taints, y.Taints)
		}) &&
		slices.EqualFunc(a.Snapshot.Pods, b.Snapshot.Pods, func(x, y Pod) bool {
			return x.Namespace == y.Namespace && x.Name == y.Name && x.UID == y.UID && x.NodeName == y.NodeName &&
				x.Phase == y.Phase && x.OwnerKind == y.OwnerKind && x.OwnerName == y.OwnerName && x.Requests == y.Requests &&
				x.Priority == y.Priority && x.Unschedulable == y.Unschedulable &&
				maps.Equal(x.Labels, y.Labels) && maps.Equal(x.Annotations, y.Annotations) && maps.Equal(x.NodeSelector, y.NodeSelector) &&
				maps.EqualFunc(x.RequiredNodeAffinity, y.RequiredNodeAffinity, slices.Equal) &&
				slices.Equal(x.Tolerations, y.Tolerations) && slices.Equal(x.Volumes, y.Volumes)
		}) &&
		slices.EqualFunc(a.Snapshot.PDBs, b.Snapshot.PDBs, func(x, y PDB) bool {
			return x.Namespace == y.Namespace && x.Name == y.Name && x.DisruptionsAllowed == y.DisruptionsAllowed && maps.Equal(x.Selector, y.Selector)
		})
}

func sameGroup(a, b config.NodeGroup) bool {
	return a.Name == b.Name && a.MinNodes == b.MinNodes && a.MaxNodes == b.MaxNodes && slices.Equal(a.Zones, b.Zones) &&
		slices.Equal(a.InstanceTypes, b.InstanceTypes) && a.SpotPercentage == b.SpotPercentage && a.ScaleUpStep == b.ScaleUpStep &&
		a.ScaleDownStep == b.ScaleDownStep && a.Cooldowns == b.Cooldowns && a.ScaleDownDelayAfterScaleUp == b.ScaleDownDelayAfterScaleUp &&
		a.NodeReadyTimeout == b.NodeReadyTimeout && a.DrainTimeout == b.DrainTimeout && a.MinNodeAge == b.MinNodeAge
}

// samePlan is reflect.DeepEqual for plans, written out for speed under -race
// (nil and empty slices and maps compare equal; Decide's are never nil where
// it matters to a reader).
func samePlan(a, b Plan) bool {
	if a.NodeGroup != b.NodeGroup || a.Action != b.Action || (a.ScaleUp == nil) != (b.ScaleUp == nil) || (a.ScaleDown == nil) != (b.ScaleDown == nil) {
		return false
	}
	if !slices.EqualFunc(a.Reasons, b.Reasons, func(x, y Reason) bool {
		return x.Code == y.Code && x.Until.Equal(y.Until) && x.Node == y.Node && x.Pod == y.Pod && x.Detail == y.Detail
	}) {
		return false
	}
	if u, v := a.ScaleUp, b.ScaleUp; u != nil && (u.Count != v.Count || !slices.Equal(u.Launches, v.Launches) ||
		!maps.Equal(u.PerZone, v.PerZone) || !maps.Equal(u.PerMarket, v.PerMarket) || !slices.Equal(u.InstanceTypes, v.InstanceTypes)) {
		return false
	}
	if u, v := a.ScaleDown, b.ScaleDown; u != nil && (u.Node != v.Node || u.Zone != v.Zone || u.InstanceID != v.InstanceID ||
		u.InstanceType != v.InstanceType || u.Market != v.Market || !slices.Equal(u.Evict, v.Evict)) {
		return false
	}
	return true
}

// TestComparersCoverEveryField keeps sameInput and samePlan honest: a field
// added to a type they compare must be added to them too.
func TestComparersCoverEveryField(t *testing.T) {
	for ty, n := range map[reflect.Type]int{
		reflect.TypeFor[Input](): 6, reflect.TypeFor[Snapshot](): 3, reflect.TypeFor[Node](): 13, reflect.TypeFor[Pod](): 16,
		reflect.TypeFor[PDB](): 4, reflect.TypeFor[GroupState](): 3, reflect.TypeFor[Operation](): 5,
		reflect.TypeFor[config.NodeGroup](): 13, reflect.TypeFor[Plan](): 5, reflect.TypeFor[Reason](): 5,
		reflect.TypeFor[ScaleUp](): 5, reflect.TypeFor[ScaleDown](): 6,
	} {
		if ty.NumField() != n {
			t.Errorf("%s has %d fields, the comparers know %d: update sameInput/samePlan", ty, ty.NumField(), n)
		}
	}
}
