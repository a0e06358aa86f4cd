// Package stack starts the real components SmartScale is tested against on
// 127.0.0.1: dynalite (DynamoDB API), etcd + kube-apiserver +
// kube-controller-manager + kube-scheduler, kwok (fake kubelets),
// kube-state-metrics, a node-exporter stand-in for kwok nodes (package
// e2e/nodeexporter), Prometheus and Alertmanager (one or an HA cluster).
// Binaries come from the tool cache that `make tools`
// (e2e/tools/install.sh) fills, at the versions in e2e/tools/versions.env.
//
// # Tests
//
//	s := stack.Start(t, stack.Options{Dynalite: true})
//	db := s.DynamoClient()            // or your own client on s.DynamoEndpoint
//	s.StopDynalite()                  // connection refused from now on
//	s.StartDynalite(ctx)              // same port; DynalitePersist keeps the tables
//
//	s := stack.Start(t, stack.Options{Kwok: true, KwokNodes: []stack.NodeSpec{
//		{Name: "n1", Zone: "us-east-1a", NodeGroup: "workers", CPU: "2", Memory: "2Gi"},
//	}})
//	s.Client()                        // kubernetes.Interface (admin)
//	s.RESTConfig()                    // *rest.Config (admin)
//	s.KubeconfigPath, s.Token, s.APIServerURL
//	s.CreateNodes(ctx, spec...)       // more kwok nodes, waited Ready
//
//	s := stack.Start(t, stack.All())  // everything, one Alertmanager
//	s.PrometheusURL, s.AlertmanagerURLs, s.NodeExporterURL, s.KubeStateMetricsURL
//	s.Query(ctx, `up`)                // instant PromQL query
//
// Start picks free ports, works in t.TempDir(), waits until each component
// is ready (/readyz, /-/ready, /healthz, a DynamoDB ListTables, nodes Ready)
// and registers a t.Cleanup that stops exactly the processes it started, by
// PID (SIGTERM, SIGKILL after DefaultGrace), printing every component's log
// tail first if the test failed. Set SMARTSCALE_KEEP_STACK=1 to keep the
// folder (configs, data, logs/<component>.log). Children also get SIGKILL if
// the test process dies (Linux parent-death signal), so nothing outlives a
// crashed test.
//
// Launch(ctx, opts, dir) + (*Stack).Stop() do the same outside a test
// (`make stack-up`, e2e/cmd/stack).
//
// Other helpers: DynamoClient(), Query(ctx, promql), ReloadPrometheus(ctx)
// after rewriting a rule file, ReloadAlertmanagers(ctx) after rewriting
// AlertmanagerConfigPath(), PrometheusConfigPath(), NodeSpec.Node() (the
// Node object CreateNodes creates), WaitNodeReady, PIDs(), LogTails(n).
//
// kwok nodes: kwok renders a new node's status from the object it last saw,
// so a capacity patched right after create can be overwritten with kwok's
// default (1k CPU); CreateNodes waits Ready and re-patches until the
// allocatable matches the NodeSpec. Code that creates kwok nodes itself must
// do the same.
//
// # One component at a time
//
// StopComponent(name), KillComponent(name) (SIGKILL, a crash),
// StartComponent(ctx, name) (same ports, arguments and data, waits ready) and
// RestartComponent(ctx, name) work on Dynalite, Etcd, APIServer,
// ControllerManager, Scheduler, Kwok, KubeStateMetrics, NodeExporter,
// Prometheus and AlertmanagerReplica(i). StopDynalite/StartDynalite are
// shorthands. Process(name) gives the *Process (PID, log) of a child.
//
// # Your own processes
//
// StartTestProcess(t, ProcessConfig{...}) runs any binary (say `smartscale
// serve`) with its output in a log file, stops it by PID at cleanup and
// prints its log tail on failure; (*Process).Kill sends SIGKILL for crash
// tests, Stop sends SIGTERM then SIGKILL, Wait returns the exit status.
//
// # What Prometheus sees
//
// Jobs: prometheus, kube-state-metrics (honor_labels, so namespace/pod/node
// are KSM's own), node-exporter (HTTP SD from the stand-in: one target per
// Node, labels instance=<node> and node=<node>), alertmanager, plus
// Options.ScrapeTargets and Options.ExtraScrapeConfigs. kube-state-metrics
// runs with --metric-labels-allowlist=nodes=[*],pods=[*], so a node's group
// is kube_node_labels{node="n1", label_smartscale_io_nodegroup="workers"} and
// node metrics join it on the node label. Scrape and evaluation intervals
// default to 1s; Prometheus re-sends firing alerts every second.
//
// # Tools
//
// ToolPath(name) returns a pinned binary's path (kube-apiserver, kubectl,
// promtool, amtool, helm, golangci-lint, ...) or an error telling to run
// `make tools`; e2e/tools/path.sh NAME is the shell equivalent.
package stack
