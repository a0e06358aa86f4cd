// Command demoapp is the application of the end-to-end scenarios and of
// `make demo`: an HTTP service with a latency histogram, a request counter,
// a CPU-burn endpoint and run-time knobs for latency and errors (see package
// cmd/demoapp/app for the endpoints and metrics).
//
//	demoapp --listen 127.0.0.1:8081 --latency 2500ms --error-rate 0.1
//
// With --listen 127.0.0.1:0 it picks a free port; the log line
// {"msg":"serving","addr":"127.0.0.1:PORT"} on stderr names it. SIGTERM or
// SIGINT stops it gracefully: in-flight requests get up to --shutdown-grace.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/smartscale/smartscale/cmd/demoapp/app"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], log); err != nil {
		log.Error("demoapp", "err", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("demoapp", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on (port 0 picks a free one)")
	latency := fs.Duration("latency", 0, "latency added to every / request at start, e.g. 2500ms (0..1m)")
	errorRate := fs.Float64("error-rate", 0, "fraction of / requests answering 500 at start (0..1)")
	grace := fs.Duration("shutdown-grace", 10*time.Second, "how long in-flight requests may finish after SIGTERM")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("flags: unexpected arguments %q", fs.Args())
	}
	a, err := app.New(app.Config{Latency: *latency, ErrorRate: *errorRate, Log: log})
	if err != nil {
		return fmt.Errorf("flags: %w", err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	knobs := a.Knobs()
	log.Info("serving", "addr", ln.Addr().String(), "latency_ms", knobs.LatencyMS, "error_rate", knobs.ErrorRate)

	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("stopping", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still sleeping through an injected latency: cut them.
		_ = srv.Close()
		log.Warn("in-flight requests cut at shutdown", "err", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
