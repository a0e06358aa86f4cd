package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const logRetentionDays = 30

// SmartScale's CloudWatch metrics, as the alarms expect them: namespace
// cloudwatchNamespace (default SmartScale), dimensions ClusterID and
// NodeGroup, published by serve --cloudwatch-namespace (internal/cloudwatch)
// with PutMetricData (see README).
const (
	metricScalingFailures = "ScalingFailures"       // count of failed scale actions
	metricClusterCPU      = "ClusterCPUUtilization" // percent, busy incl. steal
	metricNodeCount       = "NodeCount"             // nodes of the group
	cpuOverloadPercent    = 85
)

// newLogGroup holds the nodes' bootstrap and agent logs.
func newLogGroup(ctx *pulumi.Context, s settings) (*cloudwatch.LogGroup, error) {
	lg, err := cloudwatch.NewLogGroup(ctx, "smartscale", &cloudwatch.LogGroupArgs{
		Name:            pulumi.String("/smartscale/" + s.ClusterID),
		RetentionInDays: pulumi.Int(logRetentionDays),
		Tags:            s.tags("logs"),
	})
	if err != nil {
		return nil, fmt.Errorf("log group: %w", err)
	}
	return lg, nil
}

type alarm struct {
	name, description, metric, statistic, comparison, missing string
	threshold                                                 float64
	periods                                                   int
}

// alarms are the three conditions people must hear about even when
// Prometheus or Alertmanager is the thing that broke.
func (s settings) alarms() []alarm {
	return []alarm{
		{
			name: "scaling-failures", metric: metricScalingFailures, statistic: "Sum",
			description: "SmartScale failed to add or remove a node in the last 5 minutes",
			comparison:  "GreaterThanOrEqualToThreshold", threshold: 1, periods: 1, missing: "notBreaching",
		},
		{
			name: "cluster-cpu-overload", metric: metricClusterCPU, statistic: "Average",
			description: fmt.Sprintf("Cluster CPU above %d%% for 15 minutes: scaling is not keeping up", cpuOverloadPercent),
			comparison:  "GreaterThanThreshold", threshold: cpuOverloadPercent, periods: 3, missing: "missing",
		},
		{
			name: "at-max-capacity", metric: metricNodeCount, statistic: "Maximum",
			description: fmt.Sprintf("Node group %s at maxNodes (%d) for 15 minutes: raise maxNodes or check pending pods", s.NodeGroup, s.MaxNodes),
			comparison:  "GreaterThanOrEqualToThreshold", threshold: float64(s.MaxNodes), periods: 3, missing: "notBreaching",
		},
	}
}

func newAlarms(ctx *pulumi.Context, s settings, topicARN pulumi.StringOutput) error {
	for _, a := range s.alarms() {
		if _, err := cloudwatch.NewMetricAlarm(ctx, a.name, &cloudwatch.MetricAlarmArgs{
			Name:               pulumi.String("smartscale-" + s.ClusterID + "-" + a.name),
			AlarmDescription:   pulumi.String(a.description),
			Namespace:          pulumi.String(s.MetricNamespace),
			MetricName:         pulumi.String(a.metric),
			Dimensions:         pulumi.StringMap{"ClusterID": pulumi.String(s.ClusterID), "NodeGroup": pulumi.String(s.NodeGroup)},
			Statistic:          pulumi.String(a.statistic),
			Period:             pulumi.Int(300),
			EvaluationPeriods:  pulumi.Int(a.periods),
			DatapointsToAlarm:  pulumi.Int(a.periods),
			ComparisonOperator: pulumi.String(a.comparison),
			Threshold:          pulumi.Float64(a.threshold),
			TreatMissingData:   pulumi.String(a.missing),
			AlarmActions:       pulumi.Array{topicARN},
			OkActions:          pulumi.Array{topicARN},
			Tags:               s.tags(a.name),
		}); err != nil {
			return fmt.Errorf("alarm %s: %w", a.name, err)
		}
	}
	return nil
}
