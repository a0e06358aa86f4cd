// Command rss measures what SmartScale's cluster snapshot costs a process:
// it syncs internal/kube's informers against a cluster, as `smartscale
// serve` does at start, and prints one JSON line with the resident set size
// after the sync, the sync time and the time to take snapshots. It runs as
// its own process so the figure is the snapshot's alone, not a test
// harness's; BenchmarkSnapshotMemory (e2e/bench/kube) starts it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/kube"
)

// Result is the JSON line rss prints.
type Result struct {
	Nodes, Pods, PDBs int
	GroupNodes        int
	GroupPods         int
	SyncSeconds       float64
	// RSS right after the caches synced, and after Settle (the runtime
	// returns freed pages to the OS in the background).
	RSSAfterSyncMiB float64
	RSSSettledMiB   float64
	// PeakRSSMiB is VmHWM: the most the process ever held, the initial
	// LIST included.
	PeakRSSMiB      float64
	HeapInuseMiB    float64
	LiveHeapMiB     float64
	SnapshotAllMs   float64
	SnapshotGroupMs float64
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	group := flag.String("group", "", "node group for the per-group snapshot timing")
	settle := flag.Duration("settle", 10*time.Second, "wait before the settled RSS reading")
	heapProfile := flag.String("heapprofile", "", "write a heap profile here after the settled reading")
	flag.Parse()
	if err := run(*kubeconfig, *group, *settle, *heapProfile); err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, group string, settle time.Duration, heapProfile string) error {
	cfg, err := kube.RESTConfig(config.Kube{Kubeconfig: kubeconfig})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c, err := kube.New(cs, kube.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	c.Start(ctx)
	if err := c.WaitForSync(ctx); err != nil {
		return err
	}
	var r Result
	r.SyncSeconds = time.Since(start).Seconds()
	if r.RSSAfterSyncMiB, err = status("VmRSS"); err != nil {
		return err
	}

	// The snapshots are dropped right away, as a request handler would.
	for _, s := range []struct {
		group       string
		ms          *float64
		nodes, pods *int
	}{{"", &r.SnapshotAllMs, &r.Nodes, &r.Pods}, {group, &r.SnapshotGroupMs, &r.GroupNodes, &r.GroupPods}} {
		t := time.Now()
		snap, err := c.Snapshot(s.group)
		if err != nil {
			return err
		}
		*s.ms = float64(time.Since(t).Microseconds()) / 1000
		*s.nodes, *s.pods = len(snap.Nodes), len(snap.Pods)
		r.PDBs = len(snap.PDBs)
	}

	time.Sleep(settle)
	if r.RSSSettledMiB, err = status("VmRSS"); err != nil {
		return err
	}
	if r.PeakRSSMiB, err = status("VmHWM"); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapInuseMiB = float64(ms.HeapInuse) / (1 << 20)
	// The live heap, after the RSS readings so the forced collection does
	// not flatter them.
	runtime.GC()
	runtime.ReadMemStats(&ms)
	r.LiveHeapMiB = float64(ms.HeapAlloc) / (1 << 20)
	if heapProfile != "" {
		f, err := os.Create(heapProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// status reads a "kB" field of /proc/self/status, in MiB.
func status(field string) (float64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", field, err)
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("%s not in /proc/self/status", field)
}
