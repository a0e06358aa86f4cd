package scaler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/policy"
)

type metrics struct {
	decisions      *prometheus.CounterVec
	nodes          *prometheus.GaugeVec
	scaleDuration  *prometheus.HistogramVec
	drainDuration  *prometheus.HistogramVec
	lockContention *prometheus.CounterVec
	inFlight       *prometheus.GaugeVec
	hourlyCost     *prometheus.GaugeVec
	reconciles     *prometheus.CounterVec
	interruptions  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, groups []config.NodeGroup) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_decisions_total",
			Help: "Decisions and action outcomes by node group, action and result (accepted, ignored, dry_run, succeeded, partial, failed, rolled_back).",
		}, []string{"group", "action", "result"}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smartscale_nodes",
			Help: "Nodes of each group by zone and market, as the cluster reports them.",
		}, []string{"group", "zone", "market"}),
		scaleDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smartscale_scale_duration_seconds",
			Help:    "Time from the start of an action to its end, by action and result.",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 180, 300, 600, 900},
		}, []string{"action", "result"}),
		drainDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smartscale_drain_duration_seconds",
			Help:    "Time a successful drain took, by operation kind (scale_down, interruption).",
			Buckets: []float64{1, 5, 10, 30, 60, 90, 120, 180, 300},
		}, []string{"action"}),
		lockContention: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_lock_contention_total",
			Help: "Notifications and reconciles that found the group's lock held by another replica.",
		}, []string{"group"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smartscale_operations_in_flight",
			Help: "Operations this replica is executing now.",
		}, []string{"group"}),
		hourlyCost: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smartscale_estimated_hourly_cost_dollars",
			Help: "Estimated cost of the group's nodes per hour, from the configured price table.",
		}, []string{"group"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_reconcile_actions_total",
			Help: "What the reconciler did: resumed, adopted, uncordoned, enforced_minimum, orphan_terminated, orphan_node_deleted, failed.",
		}, []string{"group", "action"}),
		interruptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_interruptions_total",
			Help: "Spot interruptions and rebalance recommendations handled, by kind and result.",
		}, []string{"group", "kind", "result"}),
	}
	reg.MustRegister(m.decisions, m.nodes, m.scaleDuration, m.drainDuration, m.lockContention,
		m.inFlight, m.hourlyCost, m.reconciles, m.interruptions)
	// Every series people alert or graph on exists from the start, at 0,
	// so rate() and increase() see the first event.
	for _, g := range groups {
		m.inFlight.WithLabelValues(g.Name)
		m.lockContention.WithLabelValues(g.Name)
		m.hourlyCost.WithLabelValues(g.Name)
		for _, z := range g.Zones {
			for _, mk := range []policy.Market{policy.Spot, policy.OnDemand} {
				m.nodes.WithLabelValues(g.Name, z, string(mk))
			}
		}
		for _, a := range []string{kindScaleUp, kindScaleDown} {
			for _, r := range []string{"accepted", "ignored", resultSucceeded, resultFailed} {
				m.decisions.WithLabelValues(g.Name, a, r)
			}
		}
	}
	for _, a := range []string{kindScaleUp, kindScaleDown, kindInterruption} {
		for _, r := range []string{resultSucceeded, resultPartial, resultFailed, resultRolledBack} {
			m.scaleDuration.WithLabelValues(a, r)
		}
	}
	for _, a := range []string{kindScaleDown, kindInterruption} {
		m.drainDuration.WithLabelValues(a)
	}
	return m
}

// updateNodeMetrics sets the node and cost gauges of a group from a snapshot.
func (s *Scaler) updateNodeMetrics(group string, snap policy.Snapshot) {
	m := s.metrics
	m.nodes.DeletePartialMatch(prometheus.Labels{"group": group})
	counts := map[[2]string]int{}
	for _, z := range s.groups[group].Zones {
		counts[[2]string{z, string(policy.Spot)}] = 0
		counts[[2]string{z, string(policy.OnDemand)}] = 0
	}
	cost := 0.0
	for _, n := range snap.Nodes {
		if n.NodeGroup != group {
			continue
		}
		counts[[2]string{n.Zone, string(n.Market)}]++
		if n.Market == policy.Spot {
			cost += s.opts.Pricing.SpotHourly[n.InstanceType]
		} else {
			cost += s.opts.Pricing.OnDemandHourly[n.InstanceType]
		}
	}
	for k, v := range counts {
		m.nodes.WithLabelValues(group, k[0], k[1]).Set(float64(v))
	}
	m.hourlyCost.WithLabelValues(group).Set(cost)
}
