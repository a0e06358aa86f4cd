package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/smartscale/smartscale/e2e/nodeexporter"
)

func (s *Stack) addKubeStateMetrics(ctx context.Context) error {
	bin, err := ToolPath("kube-state-metrics")
	if err != nil {
		return err
	}
	var port, telemetry int
	alloc := func() error {
		p, err := freePorts(2)
		if err != nil {
			return err
		}
		port, telemetry = p[0], p[1]
		s.KubeStateMetricsURL = "http://" + hostPort(port)
		return nil
	}
	if err := alloc(); err != nil {
		return err
	}
	c := &component{
		name: KubeStateMetrics,
		cfg: func() (ProcessConfig, error) {
			return ProcessConfig{Name: string(KubeStateMetrics), Path: bin, LogPath: s.logFile(KubeStateMetrics), Args: []string{
				"--kubeconfig=" + s.KubeconfigPath,
				"--host=127.0.0.1",
				"--port=" + strconv.Itoa(port),
				"--telemetry-host=127.0.0.1",
				"--telemetry-port=" + strconv.Itoa(telemetry),
				// Every Node label (the node group) on kube_node_labels and
				// every pod label on kube_pod_labels, for rule joins.
				"--metric-labels-allowlist=nodes=[*],pods=[*]",
			}}, nil
		},
		// /metrics answers only once the informers synced.
		ready: func(ctx context.Context) error { return httpOK(ctx, s.KubeStateMetricsURL+"/metrics", "", "") },
	}
	return s.register(ctx, c, alloc)
}

// addNodeExporter runs the node-exporter stand-in in this process on its own
// loopback port; Stop/StartComponent(NodeExporter) close and reopen the
// listener on the same port.
func (s *Stack) addNodeExporter(ctx context.Context) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	addr := hostPort(ports[0])
	s.NodeExporterURL = "http://" + addr
	exp := nodeexporter.New(s.client)
	var (
		mu      sync.Mutex
		srv     *http.Server
		started bool
	)
	c := &component{
		name: NodeExporter,
		startIn: func(ctx context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if !started {
				// Informers live until the stack stops.
				exp.Run(s.bgCtx)
				started = true
			}
			if err := exp.WaitSynced(ctx); err != nil {
				return err
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen %s: %w", addr, err)
			}
			srv = &http.Server{Handler: exp.Handler(), ReadHeaderTimeout: 5 * time.Second}
			go func(srv *http.Server) {
				if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
					s.logf("node-exporter stand-in: %v", err)
				}
			}(srv)
			return nil
		},
		stopIn: func() error {
			mu.Lock()
			defer mu.Unlock()
			if srv == nil {
				return nil
			}
			err := srv.Close()
			srv = nil
			return err
		},
		ready: func(ctx context.Context) error { return httpOK(ctx, s.NodeExporterURL+"/healthz", "", "ok") },
	}
	return s.register(ctx, c, nil)
}
