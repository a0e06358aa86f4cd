// Package cloudwatch publishes SmartScale's key figures from the process's
// Prometheus registry to Amazon CloudWatch with PutMetricData, for people
// who watch (and alarm on) CloudWatch rather than, or besides, Prometheus.
//
// Every interval the sink gathers the registry and sends each Figure:
// gauges as their value, counters as the increase since the last publish
// CloudWatch accepted, histograms as a statistic set of the observations
// since then (Minimum and Maximum from bucket bounds, see statistics).
// Dimensions come from labels (group → NodeGroup, action → Action, …) plus
// fixed ones such as ClusterID. A failed call is logged and counted in
// smartscale_cloudwatch_publish_failures_total, never returned to serving.
package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"
)

// Client is the part of the CloudWatch API the sink uses; *cloudwatch.Client
// has it.
type Client interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Defaults of Options.
const (
	DefaultInterval     = time.Minute
	DefaultTimeout      = 10 * time.Second
	DefaultFinalTimeout = 5 * time.Second
)

// CloudWatch's namespace rule: 1–255 of these characters, not starting
// with "AWS/" (reserved for AWS services).
var namespacePattern = regexp.MustCompile(`^[A-Za-z0-9._/#: -]{1,255}$`)

// maxDimensions is CloudWatch's limit per datum.
const maxDimensions = 30

// Options configure a Sink.
type Options struct {
	// Namespace receives every metric. Required.
	Namespace string
	// Dimensions are added to every datum (serve adds ClusterID).
	Dimensions map[string]string
	// Interval between publishes; default DefaultInterval.
	Interval time.Duration
	// Timeout bounds one publish (all its calls, retries included);
	// default DefaultTimeout.
	Timeout time.Duration
	// FinalTimeout bounds the publish Run makes when it stops; default
	// DefaultFinalTimeout.
	FinalTimeout time.Duration
	// Figures are what is published; default KeyFigures().
	Figures []Figure
	Logger  *slog.Logger
	// Registerer receives smartscale_cloudwatch_publish_failures_total;
	// nil: not registered.
	Registerer prometheus.Registerer
	// Now stamps the datums; default time.Now.
	Now func() time.Time
	// NewTicker paces Run; default a time.Ticker. Tests send on the
	// channel themselves.
	NewTicker func(time.Duration) (ticks <-chan time.Time, stop func())
}

// Sink publishes gathered metrics to CloudWatch.
type Sink struct {
	client   Client
	gatherer prometheus.Gatherer
	opts     Options
	log      *slog.Logger
	failures prometheus.Counter

	mu   sync.Mutex // one publish at a time: the converter's baselines
	conv *converter
}

// New checks opts and registers the failure counter.
func New(client Client, gatherer prometheus.Gatherer, opts Options) (*Sink, error) {
	if err := ValidateNamespace(opts.Namespace); err != nil {
		return nil, err
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("cloudwatch: interval %s is not positive", opts.Interval)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.FinalTimeout <= 0 {
		opts.FinalTimeout = DefaultFinalTimeout
	}
	if opts.Figures == nil {
		opts.Figures = KeyFigures()
	}
	for name, value := range opts.Dimensions {
		if name == "" || value == "" {
			return nil, fmt.Errorf("cloudwatch: dimension %q=%q: name and value must not be empty", name, value)
		}
	}
	for _, f := range opts.Figures {
		if f.Metric == "" || f.Name == "" {
			return nil, fmt.Errorf("cloudwatch: figure %+v needs a metric and a name", f)
		}
		if n := len(opts.Dimensions) + len(f.By); n > maxDimensions {
			return nil, fmt.Errorf("cloudwatch: figure %s has %d dimensions, CloudWatch takes at most %d", f.Name, n, maxDimensions)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewTicker == nil {
		opts.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	s := &Sink{
		client: client, gatherer: gatherer, opts: opts,
		log: opts.Logger.With("namespace", opts.Namespace),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartscale_cloudwatch_publish_failures_total",
			Help: "PutMetricData calls to CloudWatch that failed (their figures go with the next successful call).",
		}),
		conv: newConverter(opts.Figures, opts.Dimensions),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.failures); err != nil {
			return nil, fmt.Errorf("cloudwatch: register metrics: %w", err)
		}
	}
	return s, nil
}

// ValidateNamespace applies CloudWatch's rules for a namespace.
func ValidateNamespace(ns string) error {
	switch {
	case strings.TrimSpace(ns) == "":
		return errors.New("cloudwatch: namespace is empty")
	case !namespacePattern.MatchString(ns):
		return fmt.Errorf("cloudwatch: namespace %q: want 1-255 letters, digits or . - _ / # : and space", ns)
	case strings.HasPrefix(ns, "AWS/"):
		return fmt.Errorf("cloudwatch: namespace %q: AWS/ is reserved for AWS services", ns)
	}
	return nil
}

// Run publishes every interval until ctx is done, then once more within
// FinalTimeout, so the figures of the last interval are not lost on
// shutdown. It returns after that last publish. Publish failures are
// logged and counted, never returned: the sink must not stop serving.
func (s *Sink) Run(ctx context.Context) {
	ticks, stop := s.opts.NewTicker(s.opts.Interval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FinalTimeout)
			_ = s.Publish(fctx)
			cancel()
			return
		case <-ticks:
			// Not cancelled with ctx: a publish under way finishes (within
			// Timeout) and the final one then sends only what is left.
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.Timeout)
			_ = s.Publish(pctx)
			cancel()
		}
	}
}

// Publish gathers, converts and sends once, in as many calls as the API's
// limits need. Each failed call is logged and counted; the error joins
// them for callers that want it.
func (s *Sink) Publish(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	families, err := s.gatherer.Gather()
	if err != nil {
		// Gather returns what it could collect alongside the error.
		s.log.Warn("cloudwatch: metrics gathered with errors", "reason", err.Error())
	}
	pend := s.conv.convert(families, s.opts.Now(), err == nil)
	ns := s.opts.Namespace
	var errs []error
	sent := 0
	for _, b := range batches(pend, ns) {
		data := make([]types.MetricDatum, len(b))
		for i, p := range b {
			data[i] = p.datum
		}
		_, err := s.client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: data})
		if err != nil {
			s.failures.Inc()
			s.log.Error("cloudwatch publish failed", "datums", len(data), "reason", err.Error())
			errs = append(errs, fmt.Errorf("put %d datums into CloudWatch namespace %s: %w", len(data), ns, err))
			if ctx.Err() != nil {
				break // the rest would fail the same way
			}
			continue
		}
		for _, p := range b {
			s.conv.apply(p.advance)
		}
		sent += len(data)
	}
	s.log.Debug("cloudwatch published", "datums", sent, "failed_calls", len(errs))
	return errors.Join(errs...)
}
