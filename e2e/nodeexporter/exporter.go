// Package nodeexporter is a stand-in for Prometheus node-exporter on kwok
// nodes, which have no kernel to measure.
//
// What it simulates: for every Node in the cluster it serves the metrics a
// real node-exporter on that node would serve, with node-exporter's own
// metric names and labels, so the project's real recording and alert rules
// apply unchanged. The numbers are not measured; they are computed from the
// pods bound to the node (spec.nodeName, phase Running) and a usage the
// scenario declares on each pod through annotations:
//
//	smartscale.io/cpu-usage: "0.5"            cores (a Kubernetes quantity: "500m" works)
//	smartscale.io/memory-usage: "256Mi"       bytes in use
//	smartscale.io/network-receive-bytes-per-second: "1e6"
//	smartscale.io/network-transmit-bytes-per-second: "1e6"
//	smartscale.io/disk-read-bytes-per-second: "1e6"
//	smartscale.io/disk-write-bytes-per-second: "1e6"
//	smartscale.io/disk-usage: "1Gi"           bytes used on the root filesystem
//
// and, on the Node, smartscale.io/cpu-steal: "0.3" (cores of CPU steal, to
// simulate a throttled burstable instance). A pod without annotations uses
// nothing: an idle cluster reads as idle, whatever the pods request.
// Changing an annotation changes the rates from the next scrape on.
//
// Per node it serves (N = CPU capacity rounded up, one cpu label each):
//
//	node_cpu_seconds_total{cpu, mode}   counters; mode user (85% of busy),
//	                                    system (15%), steal, idle, and iowait,
//	                                    irq, nice, softirq at 0; busy is the sum
//	                                    of cpu-usage capped at capacity, spread
//	                                    evenly over the cpus
//	node_memory_MemTotal_bytes          status.capacity.memory
//	node_memory_MemAvailable_bytes      total minus the sum of memory-usage
//	node_memory_MemFree_bytes, node_memory_Buffers_bytes, node_memory_Cached_bytes
//	node_network_receive_bytes_total{device="eth0"}, node_network_transmit_bytes_total{device="eth0"}
//	node_disk_read_bytes_total{device="nvme0n1"}, node_disk_written_bytes_total{device="nvme0n1"}
//	node_filesystem_size_bytes, node_filesystem_avail_bytes, node_filesystem_free_bytes
//	                                    {device="/dev/nvme0n1p1", fstype="xfs", mountpoint="/"},
//	                                    size from status.capacity.ephemeral-storage (20Gi if unset)
//	node_load1, node_load5, node_load15 busy cores
//	node_boot_time_seconds              the Node's creation time
//	node_uname_info{nodename, sysname, release, machine, version, domainname}
//
// Counters start at zero when the exporter first sees a node and advance at
// every scrape by the current rates times the time since the last scrape.
//
// How a series is tied to its Node: like a real node-exporter, a node's
// metrics carry no node label of their own; the node is the scrape target.
// GET /nodes/{node}/metrics serves one node, and GET /targets is a
// Prometheus HTTP service-discovery document listing one target per node
// with labels instance=<node name> and node=<node name>. Scrape it with:
//
//	scrape_configs:
//	  - job_name: node-exporter
//	    http_sd_configs:
//	      - url: http://127.0.0.1:PORT/targets
//	        refresh_interval: 2s
//
// and join node metrics to kube-state-metrics on the node label, e.g. the node
// group: kube_node_labels{node, label_smartscale_io_nodegroup} (with
// kube-state-metrics run with --metric-labels-allowlist=nodes=[*]).
package nodeexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Annotations a scenario sets; see the package doc.
const (
	AnnotationCPUUsage        = "smartscale.io/cpu-usage"
	AnnotationMemoryUsage     = "smartscale.io/memory-usage"
	AnnotationNetworkReceive  = "smartscale.io/network-receive-bytes-per-second"
	AnnotationNetworkTransmit = "smartscale.io/network-transmit-bytes-per-second"
	AnnotationDiskRead        = "smartscale.io/disk-read-bytes-per-second"
	AnnotationDiskWrite       = "smartscale.io/disk-write-bytes-per-second"
	AnnotationDiskUsage       = "smartscale.io/disk-usage"
	AnnotationCPUSteal        = "smartscale.io/cpu-steal" // on the Node
)

const (
	netDevice   = "eth0"
	diskDevice  = "nvme0n1"
	fsDevice    = "/dev/nvme0n1p1"
	defaultDisk = 20 << 30
	podsByNode  = "nodeName"
)

// Exporter serves simulated node-exporter metrics for every Node.
type Exporter struct {
	factory informers.SharedInformerFactory
	nodes   cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	now     func() time.Time

	mu       sync.Mutex
	counters map[string]*nodeCounters
}

// nodeCounters holds a node's counters and when they last advanced.
type nodeCounters struct {
	last       time.Time
	cpu        [][numModes]float64 // per cpu, per mode
	rx, tx     float64
	read, writ float64
}

const (
	modeUser = iota
	modeSystem
	modeSteal
	modeIdle
	modeIowait
	modeIrq
	modeNice
	modeSoftirq
	numModes
)

var modeNames = [numModes]string{"user", "system", "steal", "idle", "iowait", "irq", "nice", "softirq"}

// New builds an exporter over client. Call Start before serving.
func New(client kubernetes.Interface) *Exporter {
	f := informers.NewSharedInformerFactory(client, 0)
	e := &Exporter{
		factory:  f,
		nodes:    f.Core().V1().Nodes().Informer(),
		pods:     f.Core().V1().Pods().Informer(),
		now:      time.Now,
		counters: map[string]*nodeCounters{},
	}
	_ = e.pods.AddIndexers(cache.Indexers{podsByNode: func(obj any) ([]string, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return nil, nil
		}
		return []string{p.Spec.NodeName}, nil
	}})
	return e
}

// Start runs the informers until ctx ends and waits for their first sync.
func (e *Exporter) Start(ctx context.Context) error {
	e.Run(ctx)
	return e.WaitSynced(ctx)
}

// Run starts the informers, which run until ctx ends, without waiting.
func (e *Exporter) Run(ctx context.Context) {
	e.factory.Start(ctx.Done())
}

// WaitSynced waits until the informers hold every Node and Pod, or ctx ends.
func (e *Exporter) WaitSynced(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), e.nodes.HasSynced, e.pods.HasSynced) {
		return fmt.Errorf("node-exporter stand-in: informer sync: %w", context.Cause(ctx))
	}
	return nil
}

// Handler serves GET /nodes/{node}/metrics, GET /targets (HTTP SD) and
// GET /healthz.
func (e *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nodes/{node}/metrics", e.serveNode)
	mux.HandleFunc("GET /targets", e.serveTargets)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

func (e *Exporter) serveTargets(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		http.Error(w, "request needs a host:port Host header", http.StatusBadRequest)
		return
	}
	groups := []targetGroup{}
	for _, obj := range e.nodes.GetStore().List() {
		n := obj.(*corev1.Node)
		groups = append(groups, targetGroup{
			Targets: []string{host},
			Labels: map[string]string{
				"__metrics_path__": "/nodes/" + n.Name + "/metrics",
				"instance":         n.Name,
				"node":             n.Name,
			},
		})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(groups)
}

func (e *Exporter) serveNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("node")
	obj, ok, err := e.nodes.GetStore().GetByKey(name)
	if err != nil || !ok {
		http.Error(w, "no such node: "+name, http.StatusNotFound)
		return
	}
	node := obj.(*corev1.Node)
	pods, err := e.pods.GetIndexer().ByIndex(podsByNode, name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	running := make([]*corev1.Pod, 0, len(pods))
	for _, o := range pods {
		if p := o.(*corev1.Pod); p.Status.Phase == corev1.PodRunning {
			running = append(running, p)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.snapshot(node, running))
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// usage is what a node's pods declare.
type usage struct {
	cpu, mem, rx, tx, read, write, disk float64
}

func podUsage(pods []*corev1.Pod) usage {
	var u usage
	for _, p := range pods {
		a := p.Annotations
		u.cpu += quantity(a[AnnotationCPUUsage])
		u.mem += quantity(a[AnnotationMemoryUsage])
		u.rx += quantity(a[AnnotationNetworkReceive])
		u.tx += quantity(a[AnnotationNetworkTransmit])
		u.read += quantity(a[AnnotationDiskRead])
		u.write += quantity(a[AnnotationDiskWrite])
		u.disk += quantity(a[AnnotationDiskUsage])
	}
	return u
}

// quantity parses a Kubernetes quantity ("500m", "256Mi") or a float
// ("1e6"); anything unparsable counts as zero.
func quantity(s string) float64 {
	if s == "" {
		return 0
	}
	if q, err := resource.ParseQuantity(s); err == nil {
		return q.AsApproximateFloat64()
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && !math.IsInf(f, 0) {
		return f
	}
	return 0
}

// snapshot advances the node's counters to now at the current rates and
// returns a collector of the node's metrics.
func (e *Exporter) snapshot(node *corev1.Node, pods []*corev1.Pod) prometheus.Collector {
	capCPU := node.Status.Capacity.Cpu().AsApproximateFloat64()
	ncpu := int(math.Ceil(capCPU))
	if ncpu < 1 {
		ncpu = 1
	}
	memTotal := node.Status.Capacity.Memory().AsApproximateFloat64()
	diskTotal := float64(defaultDisk)
	if q, ok := node.Status.Capacity[corev1.ResourceEphemeralStorage]; ok {
		diskTotal = q.AsApproximateFloat64()
	}
	u := podUsage(pods)
	busy := math.Min(u.cpu, float64(ncpu))
	steal := math.Min(quantity(node.Annotations[AnnotationCPUSteal]), float64(ncpu)-busy)

	var rates [numModes]float64 // per cpu, seconds per second
	rates[modeUser] = 0.85 * busy / float64(ncpu)
	rates[modeSystem] = 0.15 * busy / float64(ncpu)
	rates[modeSteal] = steal / float64(ncpu)
	rates[modeIdle] = math.Max(0, 1-rates[modeUser]-rates[modeSystem]-rates[modeSteal])

	now := e.now()
	e.mu.Lock()
	c := e.counters[node.Name]
	if c == nil || len(c.cpu) != ncpu {
		c = &nodeCounters{last: now, cpu: make([][numModes]float64, ncpu)}
		e.counters[node.Name] = c
	}
	dt := now.Sub(c.last).Seconds()
	if dt > 0 {
		for i := range c.cpu {
			for m := range numModes {
				c.cpu[i][m] += rates[m] * dt
			}
		}
		c.rx += u.rx * dt
		c.tx += u.tx * dt
		c.read += u.read * dt
		c.writ += u.write * dt
		c.last = now
	}
	cpu := make([][numModes]float64, ncpu)
	copy(cpu, c.cpu)
	snap := nodeSnapshot{
		node: node.Name, cpu: cpu,
		rx: c.rx, tx: c.tx, read: c.read, write: c.writ,
		memTotal: memTotal, memAvail: math.Max(0, memTotal-u.mem),
		diskTotal: diskTotal, diskAvail: math.Max(0, diskTotal-u.disk),
		load: busy, boot: float64(node.CreationTimestamp.Unix()),
	}
	e.mu.Unlock()
	return snap
}

// nodeSnapshot is one scrape's worth of a node's values.
type nodeSnapshot struct {
	node                 string
	cpu                  [][numModes]float64
	rx, tx, read, write  float64
	memTotal, memAvail   float64
	diskTotal, diskAvail float64
	load, boot           float64
}

var (
	descCPU       = prometheus.NewDesc("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", []string{"cpu", "mode"}, nil)
	descMemTotal  = prometheus.NewDesc("node_memory_MemTotal_bytes", "Memory information field MemTotal_bytes.", nil, nil)
	descMemAvail  = prometheus.NewDesc("node_memory_MemAvailable_bytes", "Memory information field MemAvailable_bytes.", nil, nil)
	descMemFree   = prometheus.NewDesc("node_memory_MemFree_bytes", "Memory information field MemFree_bytes.", nil, nil)
	descBuffers   = prometheus.NewDesc("node_memory_Buffers_bytes", "Memory information field Buffers_bytes.", nil, nil)
	descCached    = prometheus.NewDesc("node_memory_Cached_bytes", "Memory information field Cached_bytes.", nil, nil)
	descRx        = prometheus.NewDesc("node_network_receive_bytes_total", "Network device statistic receive_bytes.", []string{"device"}, nil)
	descTx        = prometheus.NewDesc("node_network_transmit_bytes_total", "Network device statistic transmit_bytes.", []string{"device"}, nil)
	descRead      = prometheus.NewDesc("node_disk_read_bytes_total", "The total number of bytes read successfully.", []string{"device"}, nil)
	descWritten   = prometheus.NewDesc("node_disk_written_bytes_total", "The total number of bytes written successfully.", []string{"device"}, nil)
	fsLabels      = []string{"device", "fstype", "mountpoint"}
	descFSSize    = prometheus.NewDesc("node_filesystem_size_bytes", "Filesystem size in bytes.", fsLabels, nil)
	descFSAvail   = prometheus.NewDesc("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.", fsLabels, nil)
	descFSFree    = prometheus.NewDesc("node_filesystem_free_bytes", "Filesystem free space in bytes.", fsLabels, nil)
	descLoad1     = prometheus.NewDesc("node_load1", "1m load average.", nil, nil)
	descLoad5     = prometheus.NewDesc("node_load5", "5m load average.", nil, nil)
	descLoad15    = prometheus.NewDesc("node_load15", "15m load average.", nil, nil)
	descBoot      = prometheus.NewDesc("node_boot_time_seconds", "Node boot time, in unixtime.", nil, nil)
	descUname     = prometheus.NewDesc("node_uname_info", "Labeled system information as provided by the uname system call.", []string{"domainname", "machine", "nodename", "release", "sysname", "version"}, nil)
	allNodeDescs  = []*prometheus.Desc{descCPU, descMemTotal, descMemAvail, descMemFree, descBuffers, descCached, descRx, descTx, descRead, descWritten, descFSSize, descFSAvail, descFSFree, descLoad1, descLoad5, descLoad15, descBoot, descUname}
	fsLabelValues = []string{fsDevice, "xfs", "/"}
)

func (s nodeSnapshot) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allNodeDescs {
		ch <- d
	}
}

func (s nodeSnapshot) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	for i, modes := range s.cpu {
		for m, v := range modes {
			counter(descCPU, v, strconv.Itoa(i), modeNames[m])
		}
	}
	gauge(descMemTotal, s.memTotal)
	gauge(descMemAvail, s.memAvail)
	gauge(descMemFree, s.memAvail)
	gauge(descBuffers, 0)
	gauge(descCached, 0)
	counter(descRx, s.rx, netDevice)
	counter(descTx, s.tx, netDevice)
	counter(descRead, s.read, diskDevice)
	counter(descWritten, s.write, diskDevice)
	gauge(descFSSize, s.diskTotal, fsLabelValues...)
	gauge(descFSAvail, s.diskAvail, fsLabelValues...)
	gauge(descFSFree, s.diskAvail, fsLabelValues...)
	gauge(descLoad1, s.load)
	gauge(descLoad5, s.load)
	gauge(descLoad15, s.load)
	gauge(descBoot, s.boot)
	gauge(descUname, 1, "(none)", "x86_64", s.node, "6.1.0-kwok", "Linux", "#1 SMP kwok")
}
