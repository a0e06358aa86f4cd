// Command fake-node-exporter serves the node-exporter stand-in (package
// e2e/nodeexporter) for every Node of the cluster in -kubeconfig: simulated
// node-exporter metrics computed from the pods on each node and their
// smartscale.io/*-usage annotations. GET /targets is a Prometheus HTTP SD
// document; GET /nodes/{node}/metrics serves one node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smartscale/smartscale/e2e/nodeexporter"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	listen := flag.String("listen", "127.0.0.1:9100", "listen address")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*kubeconfig, *listen, log); err != nil {
		log.Error("fake-node-exporter", "err", err)
		os.Exit(1)
	}
}

func run(kubeconfig, listen string, log *slog.Logger) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	exp := nodeexporter.New(client)
	if err := exp.Start(ctx); err != nil {
		return err
	}
	srv := &http.Server{Addr: listen, Handler: exp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving", "addr", listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
