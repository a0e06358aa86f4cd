package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	cwsink "github.com/smartscale/smartscale/internal/cloudwatch"
	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/server"
)

// Environment variables that may hold secrets instead of files.
const (
	envBearerToken   = "SMARTSCALE_BEARER_TOKEN"
	envBasicPassword = "SMARTSCALE_BASIC_AUTH_PASSWORD"
)

type serveFlags struct {
	configPath     string
	insecureNoAuth bool
	listen         string
	logLevel       string
	cloudwatch     cloudwatchFlags
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Alertmanager webhook receiver",
		Long: `Run the webhook that Alertmanager posts firing scaling alerts to
(POST /v1/alerts), with /v1/decisions, /healthz, /readyz and /metrics.

With --cloudwatch-namespace it also publishes the key figures (decisions,
nodes, scale and drain durations, lock contention, operations in flight,
estimated cost) to CloudWatch every --cloudwatch-interval, with the default
AWS credential chain in cloud.aws.region ($AWS_ENDPOINT_URL_CLOUDWATCH
overrides the endpoint).

Without --config it runs on the embedded example configuration (memory
state, kwok provider). Authentication is required unless --insecure-no-auth
is given: a bearer token (server.auth.bearerTokenFile or $` + envBearerToken + `)
or basic auth (server.auth.basicAuth, password from its file or
$` + envBasicPassword + `).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, f) },
	}
	cmd.Flags().StringVar(&f.configPath, "config", "", "configuration file (default: the embedded example)")
	cmd.Flags().BoolVar(&f.insecureNoAuth, "insecure-no-auth", false, "serve /v1 without authentication (local use only)")
	cmd.Flags().StringVar(&f.listen, "listen", "", "listen address, overrides server.listenAddress")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.cloudwatch.namespace, "cloudwatch-namespace", "",
		"also publish the key figures to CloudWatch (PutMetricData) in this namespace, e.g. SmartScale; empty: off")
	cmd.Flags().DurationVar(&f.cloudwatch.interval, "cloudwatch-interval", cwsink.DefaultInterval,
		"how often to publish to CloudWatch")
	return cmd
}

func loadConfig(path string) (config.Config, error) {
	if path == "" {
		return config.Parse("(embedded example)", config.Example())
	}
	return config.Load(path)
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func runServe(cmd *cobra.Command, f serveFlags) error {
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	if err := f.cloudwatch.validate(); err != nil {
		return err
	}
	cfg, err := loadConfig(f.configPath)
	if err != nil {
		return err
	}
	if f.listen != "" {
		cfg.Server.ListenAddress = f.listen
	}
	creds, err := loadCredentials(cfg.Server.Auth)
	if err != nil {
		return err
	}
	if creds == nil && !f.insecureNoAuth {
		return fmt.Errorf("no authentication configured: set server.auth.bearerTokenFile (or $%s) or server.auth.basicAuth, or pass --insecure-no-auth for local use", envBearerToken)
	}
	if creds == nil {
		log.Warn("serving /v1 WITHOUT authentication (--insecure-no-auth): anyone who reaches this port can trigger scaling")
	} else {
		log.Info("authentication on", "auth", creds.String())
	}

	reg := prometheus.NewRegistry()
	server.RegisterRuntime(reg)
	ctx := cmd.Context()
	a, err := wire(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	if a.sink, err = newCloudWatchSink(ctx, f.cloudwatch, cfg, reg, log); err != nil {
		return err
	}
	a.run(ctx)
	defer a.close()
	if cfg.DryRun {
		log.Warn("dry run: decisions are made and recorded, nothing is launched, drained or removed")
	}
	known := func(g string) bool { _, ok := cfg.Group(g); return ok }
	srv := server.New(server.Options{
		Scaler: a.scaler, Decisions: a.scaler, KnownGroup: known, Auth: creds,
		MaxBodyBytes: cfg.Server.MaxBodyBytes, Registry: reg, Logger: log, Ready: a.ready,
	})
	s := cfg.Server
	return srv.Serve(ctx, server.ListenConfig{
		Address: s.ListenAddress, CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile,
		ReadTimeout: s.ReadTimeout.D(), WriteTimeout: s.WriteTimeout.D(), IdleTimeout: s.IdleTimeout.D(),
		ShutdownTimeout: s.ShutdownTimeout.D(),
	})
}

// loadCredentials reads the auth secret from its file or environment
// variable; nil means no authentication is configured.
func loadCredentials(a config.Auth) (*server.Credentials, error) {
	switch {
	case a.BearerTokenFile != "":
		tok, err := readSecretFile("server.auth.bearerTokenFile", a.BearerTokenFile)
		if err != nil {
			return nil, err
		}
		return &server.Credentials{BearerToken: tok}, nil
	case a.BasicAuth.Username != "":
		pass, err := readSecretFile("server.auth.basicAuth.passwordFile", a.BasicAuth.PasswordFile)
		if err != nil {
			return nil, err
		}
		return &server.Credentials{Username: a.BasicAuth.Username, Password: pass}, nil
	case os.Getenv(envBearerToken) != "":
		return &server.Credentials{BearerToken: strings.TrimSpace(os.Getenv(envBearerToken))}, nil
	}
	return nil, nil
}

func readSecretFile(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return s, nil
}
