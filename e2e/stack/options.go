package stack

import (
	"time"
)

// Options chooses the components and their configuration. Components
// imply what they need: Kwok, KubeStateMetrics and NodeExporter imply Kube;
// AlertmanagerReplicas > 0 implies Alertmanager.
type Options struct {
	// Dynalite starts dynalite (DynamoDB API), in memory unless
	// DynalitePersist, which keeps tables on disk across StopDynalite /
	// StartDynalite.
	Dynalite        bool
	DynalitePersist bool

	// Kube starts etcd, kube-apiserver, kube-controller-manager and
	// kube-scheduler.
	Kube bool
	// Kwok starts kwok, which makes Nodes annotated kwok.x-k8s.io/node=fake
	// Ready (with leases) and runs the pods bound to them. Nodes without the
	// annotation are left alone (they stay NotReady), which tests can use.
	Kwok bool
	// KwokNodes are created (and waited Ready) before Start returns.
	KwokNodes []NodeSpec

	// KubeStateMetrics starts kube-state-metrics with all Node labels
	// exported on kube_node_labels (--metric-labels-allowlist=nodes=[*],
	// pods=[*]): label smartscale.io/nodegroup becomes
	// label_smartscale_io_nodegroup.
	KubeStateMetrics bool
	// NodeExporter runs the node-exporter stand-in (package
	// e2e/nodeexporter) in this process.
	NodeExporter bool

	// Prometheus starts Prometheus scraping itself and whichever of
	// kube-state-metrics (job kube-state-metrics, honor_labels), the
	// node-exporter stand-in (job node-exporter, one target per Node with
	// instance and node = node name) and Alertmanager run, plus
	// ScrapeTargets and ExtraScrapeConfigs, evaluating RuleFiles and sending
	// alerts to every Alertmanager replica.
	Prometheus bool
	// RuleFiles are Prometheus rule files, referenced by absolute path (a
	// test may rewrite them and call ReloadPrometheus).
	RuleFiles []string
	// ScrapeTargets are extra static scrape jobs (e.g. a test exporter or a
	// `smartscale serve` process).
	ScrapeTargets []ScrapeTarget
	// ExtraScrapeConfigs is raw YAML: a list of scrape_config entries
	// appended to scrape_configs, for anything ScrapeTargets cannot say.
	ExtraScrapeConfigs string
	// ScrapeInterval and EvaluationInterval default to 1s, so tests see
	// changes quickly.
	ScrapeInterval     time.Duration
	EvaluationInterval time.Duration

	// Alertmanager starts AlertmanagerReplicas (default 1) Alertmanagers
	// with AlertmanagerConfig (YAML; default: route everything to a
	// receiver with no integrations). With 2 or more replicas they form a
	// gossip cluster on loopback, as an HA pair does.
	Alertmanager         bool
	AlertmanagerReplicas int
	AlertmanagerConfig   string

	// Logf receives progress lines (component ready times). Start uses t.Logf
	// when nil.
	Logf func(format string, args ...any)
}

// ScrapeTarget is a static Prometheus scrape job.
type ScrapeTarget struct {
	JobName     string
	Targets     []string // host:port
	MetricsPath string   // default /metrics
	// Labels are added to every series of the job.
	Labels map[string]string
	// HonorLabels keeps the target's own job/instance labels.
	HonorLabels bool
}

// All returns options that start every component, with one Alertmanager.
func All() Options {
	return Options{
		Dynalite:         true,
		Kube:             true,
		Kwok:             true,
		KubeStateMetrics: true,
		NodeExporter:     true,
		Prometheus:       true,
		Alertmanager:     true,
	}
}

func (o Options) normalized() Options {
	if o.Kwok || o.KubeStateMetrics || o.NodeExporter || len(o.KwokNodes) > 0 {
		o.Kube = true
	}
	if len(o.KwokNodes) > 0 {
		o.Kwok = true
	}
	if o.AlertmanagerReplicas > 0 {
		o.Alertmanager = true
	}
	if o.Alertmanager && o.AlertmanagerReplicas == 0 {
		o.AlertmanagerReplicas = 1
	}
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	if o.EvaluationInterval == 0 {
		o.EvaluationInterval = time.Second
	}
	return o
}
