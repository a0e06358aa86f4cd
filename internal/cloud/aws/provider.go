// Package aws launches and terminates SmartScale's worker nodes on EC2.
//
// A launch is one CreateFleet request of type instant, as Karpenter does it:
// the node group's launch template with an override for every (instance type
// × zone subnet) pair, spot capacity bought with price-capacity-optimized and
// on-demand capacity in the configured type order (prioritized). When the
// spot part comes up short for capacity reasons only, the shortfall is
// launched on-demand in a second request; any other per-override error
// (permissions, a broken template) fails the launch at once.
//
// Every instance is tagged at launch (instance and volume): Project,
// ManagedBy=smartscale, ScalingGroup=<group>, Name, and smartscale/market
// when the request buys one market only (tags are per request, so a mixed
// spot + on-demand request cannot carry a per-instance market tag; EC2's own
// instance-lifecycle attribute says which is which, and List reads that).
// Terminate refuses, before any TerminateInstances call, every instance that
// DescribeInstances does not show tagged ManagedBy=smartscale and with the
// group's ScalingGroup: a guard in code, not only in IAM.
package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartscale/smartscale/internal/config"
)

// Tags SmartScale puts on every instance and volume it launches.
const (
	TagProject      = "Project"
	TagManagedBy    = "ManagedBy"
	TagScalingGroup = "ScalingGroup"
	TagMarket       = "smartscale/market"
	TagName         = "Name"

	// ManagedByValue marks SmartScale's instances; the IAM policy from infra/
	// conditions TerminateInstances on it too.
	ManagedByValue = "smartscale"
)

// EC2 is the part of the EC2 API the provider uses; *ec2.Client has it.
type EC2 interface {
	CreateFleet(ctx context.Context, in *ec2.CreateFleetInput, opts ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

// Options configure a Provider.
type Options struct {
	// LaunchTemplateID is the worker launch template (from infra/).
	LaunchTemplateID string
	// LaunchTemplateVersion defaults to "$Latest", so a template updated by
	// `pulumi up` is used without also promoting its default version.
	LaunchTemplateVersion string
	// Subnets maps every zone a group launches into to its subnet.
	Subnets map[string]string
	// Project is the Project tag's value; default "smartscale".
	Project string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the provider's metrics when set.
	Registerer prometheus.Registerer
	// Now defaults to time.Now; CreateFleet does not return launch times.
	Now func() time.Time
	// DescribePageSize bounds one DescribeInstances page (5–1000); default 500.
	DescribePageSize int32
}

// Provider launches, lists and terminates a node group's EC2 instances.
type Provider struct {
	ec2     EC2
	opts    Options
	log     *slog.Logger
	zoneOf  map[string]string // subnet → zone
	metrics metrics
}

type metrics struct {
	launchErrors *prometheus.CounterVec
	launched     *prometheus.CounterVec
}

// New returns a Provider that talks to EC2 through client.
func New(client EC2, opts Options) (*Provider, error) {
	if client == nil {
		return nil, errors.New("aws provider: nil EC2 client")
	}
	if opts.LaunchTemplateID == "" {
		return nil, errors.New("aws provider: launch template id is empty")
	}
	if len(opts.Subnets) == 0 {
		return nil, errors.New("aws provider: no subnets")
	}
	if opts.LaunchTemplateVersion == "" {
		opts.LaunchTemplateVersion = "$Latest"
	}
	if opts.Project == "" {
		opts.Project = "smartscale"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DescribePageSize == 0 {
		opts.DescribePageSize = 500
	}
	if opts.DescribePageSize < 5 || opts.DescribePageSize > 1000 {
		return nil, fmt.Errorf("aws provider: describe page size %d is outside 5–1000", opts.DescribePageSize)
	}
	zoneOf := make(map[string]string, len(opts.Subnets))
	for zone, subnet := range opts.Subnets {
		if zone == "" || subnet == "" {
			return nil, fmt.Errorf("aws provider: subnet map entry %q → %q is incomplete", zone, subnet)
		}
		zoneOf[subnet] = zone
	}
	p := &Provider{ec2: client, opts: opts, log: opts.Logger, zoneOf: zoneOf, metrics: metrics{
		launchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_cloud_launch_errors_total",
			Help: "Per-override launch failures EC2 reported, by error code and market.",
		}, []string{"code", "market"}),
		launched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_cloud_instances_launched_total",
			Help: "Instances launched, by market and path (planned or on-demand fallback).",
		}, []string{"market", "path"}),
	}}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{p.metrics.launchErrors, p.metrics.launched} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("aws provider: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// NewFromConfig builds the EC2 client from the default credential chain
// (environment, shared config, IMDS role) for cfg.Region, pointed at
// cfg.Endpoint when set, and returns a Provider on it. opts supplies what the
// configuration file does not (logger, metrics, project tag).
func NewFromConfig(ctx context.Context, cfg config.AWS, opts Options) (*Provider, error) {
	sdkCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("aws provider: load AWS config: %w", err)
	}
	client := ec2.NewFromConfig(sdkCfg, func(o *ec2.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(cfg.Endpoint)
		}
	})
	opts.LaunchTemplateID = cfg.LaunchTemplateID
	opts.Subnets = cfg.Subnets
	return New(client, opts)
}
