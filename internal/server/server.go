// Package server is SmartScale's HTTP front door: the Alertmanager webhook
// receiver (POST /v1/alerts), the decision log (GET /v1/decisions), health
// (/healthz, /readyz) and metrics (/metrics).
//
// HTTP semantics follow what Alertmanager does with answers: 2xx when a
// notification is accepted or deliberately ignored (the reason is in the body
// and the logs), 4xx for bad input (Alertmanager does not retry those), 503
// only when a retry can succeed (a dependency did not answer).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/decision"
)

// Scaler turns one notification's signals into decisions. It answers at
// once; actions run after the reply. An error wrapping
// decision.ErrUnavailable becomes a 503.
type Scaler interface {
	Handle(ctx context.Context, n alert.Notification) ([]decision.Record, error)
}

// DecisionLog lists recent decisions, newest first; group "" means all.
type DecisionLog interface {
	Decisions(ctx context.Context, group string, limit int) ([]decision.Record, error)
}

// Check is one readiness dependency (caches synced, state store answers).
type Check func(ctx context.Context) error

// Options configure a Server.
type Options struct {
	Scaler    Scaler
	Decisions DecisionLog
	// KnownGroup reports whether a node group is configured.
	KnownGroup func(string) bool
	// Auth checks credentials on /v1/*; nil serves without auth.
	Auth         *Credentials
	MaxBodyBytes int64
	Registry     *prometheus.Registry
	Logger       *slog.Logger
	// Ready holds the named checks of /readyz.
	Ready map[string]Check
	// ReadyTimeout bounds each readiness check.
	ReadyTimeout time.Duration
}

// Server is the HTTP front door.
type Server struct {
	echo    *echo.Echo
	opts    Options
	log     *slog.Logger
	metrics *metrics
}

const (
	resultAccepted    = "accepted"
	resultIgnored     = "ignored"
	resultBadRequest  = "bad_request"
	resultUnavailable = "unavailable"
	resultError       = "error"

	maxDecisionLimit = 1000
)

// New builds the routes and middleware.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 2 * time.Second
	}
	if opts.KnownGroup == nil {
		opts.KnownGroup = func(string) bool { return true }
	}
	s := &Server{echo: echo.New(), opts: opts, log: opts.Logger, metrics: newMetrics(opts.Registry)}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler

	e.Use(middleware.RequestID())
	e.Use(s.observe)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic in handler", "route", c.Path(), "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: strconv.FormatInt(opts.MaxBodyBytes, 10) + "B"}))

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry})))

	v1 := e.Group("/v1")
	if opts.Auth != nil {
		v1.Use(s.authenticate)
	}
	v1.POST("/alerts", s.postAlerts)
	v1.GET("/decisions", s.getDecisions)
	return s
}

// Handler returns the routes as an http.Handler (tests, embedding).
func (s *Server) Handler() http.Handler { return s.echo }

// ListenConfig is where and how Serve listens.
type ListenConfig struct {
	Address         string
	CertFile        string
	KeyFile         string
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration
	// Ready, if set, receives the bound address once listening (":0" tests).
	Ready func(addr net.Addr)
}

// Serve listens until ctx is done, then shuts down gracefully: it stops
// accepting and lets in-flight requests finish within ShutdownTimeout.
func (s *Server) Serve(ctx context.Context, lc ListenConfig) error {
	ln, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", lc.Address, err)
	}
	srv := &http.Server{
		Handler:           s.echo,
		ReadTimeout:       lc.ReadTimeout,
		ReadHeaderTimeout: lc.ReadTimeout,
		WriteTimeout:      lc.WriteTimeout,
		IdleTimeout:       lc.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	tlsOn := lc.CertFile != ""
	if tlsOn {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s.log.Info("listening", "address", ln.Addr().String(), "tls", tlsOn)
	if lc.Ready != nil {
		lc.Ready(ln.Addr())
	}

	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- srv.ServeTLS(ln, lc.CertFile, lc.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing in-flight requests", "timeout", lc.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), lc.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// observe records request metrics and one JSON access-log line per request.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			// Let the error handler write the response now, so the code is known.
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		code := c.Response().Status
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(code)).Inc()
		s.metrics.latency.WithLabelValues(route, c.Request().Method).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if code >= 500 {
			level = slog.LevelError
		} else if route == "/healthz" || route == "/readyz" || route == "/metrics" {
			level = slog.LevelDebug
		}
		s.log.Log(c.Request().Context(), level, "http request",
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", c.Request().Method, "route", route, "code", code,
			"duration_ms", float64(elapsed.Microseconds())/1000, "remote", c.RealIP(),
			"bytes_in", c.Request().ContentLength, "bytes_out", c.Response().Size)
		return nil
	}
}

// errorBody is every error answer's shape.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, body := http.StatusInternalServerError, errorBody{Error: "internal error"}
	var he *echo.HTTPError
	var de *alert.DecodeError
	switch {
	case errors.As(err, &de):
		code, body = http.StatusBadRequest, errorBody{Error: de.Error(), Field: de.Field}
	case errors.As(err, &he):
		code = he.Code
		body = errorBody{Error: fmt.Sprint(he.Message)}
		if code == http.StatusRequestEntityTooLarge {
			body = errorBody{Error: fmt.Sprintf("body larger than %d bytes", s.opts.MaxBodyBytes), Field: "body"}
		}
	default:
		s.log.Error("request failed", "route", c.Path(), "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	if err := c.JSON(code, body); err != nil {
		s.log.Warn("write error response", "err", err)
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	failed := map[string]string{}
	for name, check := range s.opts.Ready {
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.opts.ReadyTimeout)
		err := check(ctx)
		cancel()
		if err != nil {
			failed[name] = err.Error()
		}
	}
	if len(failed) > 0 {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failed": failed})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// alertsReply is the body of every 2xx answer to a notification.
type alertsReply struct {
	Status    string            `json:"status"` // accepted | ignored
	Decisions []decision.Record `json:"decisions"`
	Ignored   []alert.Ignored   `json:"ignored"`
}

func (s *Server) postAlerts(c echo.Context) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationJSON {
			s.metrics.notifications.WithLabelValues(resultBadRequest).Inc()
			return c.JSON(http.StatusUnsupportedMediaType, errorBody{
				Error: fmt.Sprintf("content type %q, want application/json", ct), Field: "Content-Type"})
		}
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		s.metrics.notifications.WithLabelValues(resultBadRequest).Inc()
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return he // 413 from the body limit
		}
		return echo.NewHTTPError(http.StatusBadRequest, "read body: "+err.Error())
	}
	msg, err := alert.Decode(body)
	if err != nil {
		s.metrics.notifications.WithLabelValues(resultBadRequest).Inc()
		s.log.Warn("bad webhook payload", "reason", err.Error())
		return err
	}
	n := alert.Contract(msg, s.opts.KnownGroup)
	for _, a := range msg.Alerts {
		s.metrics.alertsReceived.WithLabelValues(a.Status).Inc()
	}
	if n.TruncatedAlerts > 0 {
		s.metrics.truncatedAlerts.Add(float64(n.TruncatedAlerts))
		s.log.Warn("alertmanager truncated the notification", "truncated_alerts", n.TruncatedAlerts, "group_key", n.GroupKey)
	}
	for _, ig := range n.Ignored {
		s.metrics.alertsIgnored.WithLabelValues(ig.Reason).Inc()
		s.log.Info("alert ignored", "alertname", ig.AlertName, "fingerprint", ig.Fingerprint,
			"nodegroup", ig.NodeGroup, "reason", ig.Reason, "detail", ig.Detail)
	}

	records, err := s.opts.Scaler.Handle(c.Request().Context(), n)
	if err != nil {
		if errors.Is(err, decision.ErrUnavailable) {
			s.metrics.notifications.WithLabelValues(resultUnavailable).Inc()
			s.log.Error("notification not handled, dependency unavailable: Alertmanager will retry", "reason", err.Error(), "group_key", n.GroupKey)
			return c.JSON(http.StatusServiceUnavailable, errorBody{Error: err.Error()})
		}
		s.metrics.notifications.WithLabelValues(resultError).Inc()
		return fmt.Errorf("handle notification: %w", err)
	}
	reply := alertsReply{Status: resultIgnored, Decisions: records, Ignored: n.Ignored}
	if reply.Decisions == nil {
		reply.Decisions = []decision.Record{}
	}
	code := http.StatusOK
	for _, r := range records {
		if r.Outcome == decision.Accepted || r.Outcome == decision.DryRun {
			reply.Status, code = resultAccepted, http.StatusAccepted
		}
	}
	s.metrics.notifications.WithLabelValues(reply.Status).Inc()
	return c.JSON(code, reply)
}

func (s *Server) getDecisions(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDecisionLimit {
			return c.JSON(http.StatusBadRequest, errorBody{
				Error: fmt.Sprintf("limit must be an integer within 1..%d, got %q", maxDecisionLimit, v), Field: "limit"})
		}
		limit = n
	}
	group := c.QueryParam("group")
	if group != "" && !s.opts.KnownGroup(group) {
		return c.JSON(http.StatusNotFound, errorBody{Error: fmt.Sprintf("node group %q is not configured", group), Field: "group"})
	}
	records, err := s.opts.Decisions.Decisions(c.Request().Context(), group, limit)
	if err != nil {
		if errors.Is(err, decision.ErrUnavailable) {
			return c.JSON(http.StatusServiceUnavailable, errorBody{Error: err.Error()})
		}
		return fmt.Errorf("list decisions: %w", err)
	}
	if records == nil {
		records = []decision.Record{}
	}
	return c.JSON(http.StatusOK, map[string]any{"decisions": records})
}
