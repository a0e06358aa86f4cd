package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/config"
)

const (
	benchNodes   = 1000
	benchPods    = 30000
	benchPending = 500
)

// benchInput is a 1000-node, 30 000-pod cluster in three zones: 29 500 bound
// pods (two DaemonSet pods per node, a StatefulSet pod on every tenth node,
// hostPath on every 25th, 100 services with PodDisruptionBudgets, one of
// which, running on every 7th node, allows no disruption) and 500 pending pods of mixed sizes, some bound
// to a zone and some no new node could run. The 20 nodes with the fewest
// pods each run a pod pinned to them by hostname, so a scale-down first
// fails 20 rescheduling checks before it finds its node.
func benchInput(b *testing.B, signal alert.Signal) Input {
	b.Helper()
	zones := []string{za, zb, zc}
	g := config.DefaultNodeGroup("workers")
	g.Zones, g.MinNodes, g.MaxNodes = zones, 3, 1500
	in := Input{Signals: []alert.Signal{signal}, Group: g, Now: t0}
	for i := range benchNodes {
		n := node(fmt.Sprintf("ip-10-0-%d-%d", i/250, i%250), "a", func(n *Node) {
			n.Zone = zones[i%3]
			n.Labels[labelZone] = n.Zone
			n.Allocatable = Resources{MilliCPU: 8000, Memory: 32 << 30, Pods: 110}
			n.Created = t0.Add(-time.Duration(i+60) * time.Minute)
		})
		if i%2 == 0 {
			onSpot(&n)
		}
		in.Snapshot.Nodes = append(in.Snapshot.Nodes, n)
	}
	for i := range 100 {
		in.Snapshot.PDBs = append(in.Snapshot.PDBs, PDB{Namespace: fmt.Sprintf("team-%d", i%10), Name: fmt.Sprintf("svc-%d", i),
			Selector: map[string]string{"app": fmt.Sprintf("svc-%d", i)}, DisruptionsAllowed: int32(min(99-i, 1))})
	}
	// The 20 pinned nodes run 25 pods each; the rest share what is left.
	const pinned, pinnedPods = 20, 25
	rest := benchPods - benchPending - pinned*pinnedPods
	base, extra := rest/(benchNodes-pinned), rest%(benchNodes-pinned)
	k := 0
	for i, n := range in.Snapshot.Nodes {
		count := pinnedPods
		if i >= pinned {
			count = base
			if i-pinned < extra {
				count++
			}
		}
		for j := range count {
			k++
			svc := k % 99
			if j == 5 && i%7 == 0 && i >= pinned {
				svc = 99
			}
			p := pod(fmt.Sprintf("svc-%d-%05d", svc, k), n.Name, func(p *Pod) {
				p.Namespace = fmt.Sprintf("team-%d", svc%10)
				p.Labels = map[string]string{"app": fmt.Sprintf("svc-%d", svc), "pod-template-hash": "abc"}
				p.Requests = Resources{MilliCPU: int64(50 + k%5*50), Memory: int64(64+k%4*64) << 20, Pods: 1}
				p.Tolerations = []Toleration{{Key: "node.kubernetes.io/not-ready", Operator: "Exists", Effect: "NoExecute"}}
			})
			switch {
			case j < 2:
				p.Namespace, p.OwnerKind, p.Name = "kube-system", "DaemonSet", fmt.Sprintf("ds-%d-%s", j, n.Name)
				p.Volumes = []Volume{{Name: "proc", HostPath: true}}
			case j == 2 && i%10 == 5 && i >= pinned:
				p.OwnerKind = "StatefulSet"
			case j == 3 && i%25 == 7 && i >= pinned:
				p.Volumes = []Volume{{Name: "data", HostPath: true}}
			case j == 4 && i < pinned:
				p.NodeSelector = map[string]string{labelHostname: n.Name}
			}
			in.Snapshot.Pods = append(in.Snapshot.Pods, p)
		}
	}
	for i := range benchPending {
		p := pendingPod(fmt.Sprintf("burst-%04d", i), int64(250+i%8*250), mem(int64(256+i%6*512)<<20))
		switch i % 20 {
		case 0:
			p.NodeSelector = map[string]string{labelZone: zones[i%3]}
		case 1:
			p.RequiredNodeAffinity = map[string][]string{labelZone: {za, zb}}
		case 2:
			p.NodeSelector = map[string]string{"gpu": "true"}
		case 3:
			p.Requests.MilliCPU = 16000
		}
		in.Snapshot.Pods = append(in.Snapshot.Pods, p)
	}
	if len(in.Snapshot.Pods) != benchPods {
		b.Fatalf("%d pods, want %d", len(in.Snapshot.Pods), benchPods)
	}
	return in
}

// BenchmarkDecide measures one decision over the 1000-node, 30 000-pod
// snapshot. Goal: ≤ 20 ms and ≤ 50 MB allocated per decision. Besides the
// wall time (ns/op) it reports the process's CPU time per decision
// (cpu-ns/op), which a busy shared machine inflates far less.
func BenchmarkDecide(b *testing.B) {
	for _, c := range []struct {
		name   string
		signal alert.Signal
		full   bool
		want   Action
	}{
		{"scale_up", upHigh, false, Up},
		{"scale_down", down, false, Down},
		// The worst case: every node is full, so every candidate's pods
		// are checked and fail to reschedule.
		{"scale_down_none_fits", down, true, None},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := benchInput(b, c.signal)
			if c.full {
				fill(in)
			}
			p := Decide(in)
			if p.Action != c.want {
				b.Fatalf("action %s, want %s: %v", p.Action, c.want, p.Strings())
			}
			switch c.want {
			case Up:
				if !p.Has(CodePendingPodsNeed) || !p.Has(CodeUnschedulableByScaleUp) || p.ScaleUp.Count <= 2 {
					b.Fatalf("the scale-up did not size the pending pods: %v", p.Strings())
				}
			case None:
				if !p.Has(CodeRescheduleFailed) {
					b.Fatalf("no rescheduling failure: %v", p.Strings())
				}
			case Down:
				if n := countCode(p, CodeRescheduleFailed); n != maxListed+1 {
					b.Fatalf("%d rescheduling failures reported, want %d: %v", n, maxListed+1, p.Strings())
				}
			}
			b.ReportAllocs()
			cpu0, ok := cpuTime()
			for b.Loop() {
				Decide(in)
			}
			if cpu1, ok1 := cpuTime(); ok && ok1 {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

func countCode(p Plan, c Code) int {
	n := 0
	for _, r := range p.Reasons {
		if r.Code == c {
			n++
		}
	}
	return n
}

// fill sets every node's allocatable CPU to what its pods request.
func fill(in Input) {
	used := map[string]int64{}
	for _, p := range in.Snapshot.Pods {
		used[p.NodeName] += p.Requests.MilliCPU
	}
	for i := range in.Snapshot.Nodes {
		in.Snapshot.Nodes[i].Allocatable.MilliCPU = used[in.Snapshot.Nodes[i].Name]
	}
}
