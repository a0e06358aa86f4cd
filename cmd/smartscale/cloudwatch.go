package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus"

	cwsink "github.com/smartscale/smartscale/internal/cloudwatch"
	"github.com/smartscale/smartscale/internal/config"
)

// cloudwatchFlags turn on the CloudWatch sink. They are flags, not
// configuration keys: they say where this process reports, not how the
// cluster scales. The endpoint follows the AWS SDK's own override,
// $AWS_ENDPOINT_URL_CLOUDWATCH (tests, LocalStack).
type cloudwatchFlags struct {
	namespace string
	interval  time.Duration
}

func (f cloudwatchFlags) validate() error {
	if f.namespace == "" {
		return nil
	}
	if err := cwsink.ValidateNamespace(f.namespace); err != nil {
		return fmt.Errorf("--cloudwatch-namespace: %w", err)
	}
	if f.interval < time.Second {
		return fmt.Errorf("--cloudwatch-interval: %s is below 1s", f.interval)
	}
	return nil
}

// newCloudWatchSink builds the sink on reg, publishing with the default
// credential chain in cloud.aws.region, every datum dimensioned by
// ClusterID (as infra/'s alarms expect). nil when the namespace is empty.
func newCloudWatchSink(ctx context.Context, f cloudwatchFlags, cfg config.Config, reg *prometheus.Registry, log *slog.Logger) (*cwsink.Sink, error) {
	if f.namespace == "" {
		return nil, nil
	}
	awsCfg, err := loadAWSConfig(ctx, cfg.Cloud.AWS.Region)
	if err != nil {
		return nil, fmt.Errorf("--cloudwatch-namespace: %w", err)
	}
	sink, err := cwsink.New(cloudwatch.NewFromConfig(awsCfg), reg, cwsink.Options{
		Namespace:  f.namespace,
		Dimensions: map[string]string{"ClusterID": cfg.ClusterID},
		Interval:   f.interval,
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	log.Info("publishing key figures to CloudWatch", "namespace", f.namespace, "interval", f.interval.String(), "region", awsCfg.Region)
	return sink, nil
}

// loadAWSConfig reads the default credential chain (environment, shared
// config and credentials files, web identity, instance role) for region;
// an empty region leaves it to the chain ($AWS_REGION, the profile).
func loadAWSConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}
