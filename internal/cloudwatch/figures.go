package cloudwatch

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// Figure maps one Prometheus metric family onto one CloudWatch metric.
//
// The family's type decides how a series becomes a datum: a gauge is sent as
// its value, a counter as its increase since the last publish CloudWatch
// accepted, a histogram as a statistic set of the observations since then.
type Figure struct {
	// Metric is the Prometheus family name.
	Metric string
	// Name is the CloudWatch metric name.
	Name string
	Unit types.StandardUnit
	// By lists the labels kept as dimensions, in this order; series that
	// differ only in other labels are summed. Listing them explicitly keeps
	// a label added to the Prometheus metric later from multiplying the
	// CloudWatch metrics (each one is billed).
	By []string
	// Only keeps just the series whose label has one of the listed values.
	Only map[string][]string
}

// KeyFigures are the scaler's key figures (internal/scaler/metrics.go) as
// CloudWatch metrics. NodeCount and ScalingFailures, by NodeGroup only, are
// what the CloudWatch alarms of infra/ watch (with the ClusterID dimension
// serve adds).
func KeyFigures() []Figure {
	count, seconds := types.StandardUnitCount, types.StandardUnitSeconds
	// Results of an action that did not do what it set out to: it failed,
	// added fewer nodes than planned, or gave a node back (uncordoned)
	// instead of removing it.
	failedResults := []string{"failed", "partial", "rolled_back"}
	return []Figure{
		{Metric: "smartscale_decisions_total", Name: "Decisions", Unit: count, By: []string{"group", "action", "result"}},
		{Metric: "smartscale_decisions_total", Name: "ScalingFailures", Unit: count, By: []string{"group"},
			Only: map[string][]string{"result": failedResults}},
		{Metric: "smartscale_nodes", Name: "Nodes", Unit: count, By: []string{"group", "zone", "market"}},
		{Metric: "smartscale_nodes", Name: "NodeCount", Unit: count, By: []string{"group"}},
		{Metric: "smartscale_scale_duration_seconds", Name: "ScaleDuration", Unit: seconds, By: []string{"action", "result"}},
		{Metric: "smartscale_drain_duration_seconds", Name: "DrainDuration", Unit: seconds, By: []string{"action"}},
		{Metric: "smartscale_lock_contention_total", Name: "LockContention", Unit: count, By: []string{"group"}},
		{Metric: "smartscale_operations_in_flight", Name: "OperationsInFlight", Unit: count, By: []string{"group"}},
		// Dollars have no CloudWatch unit.
		{Metric: "smartscale_estimated_hourly_cost_dollars", Name: "EstimatedHourlyCost", Unit: types.StandardUnitNone, By: []string{"group"}},
	}
}

// DimensionName is the CloudWatch dimension for a Prometheus label: group
// becomes NodeGroup (the name infra/'s alarms and the EC2 tags use), any
// other label its snake_case name in PascalCase (action → Action,
// instance_type → InstanceType).
func DimensionName(label string) string {
	if label == "group" {
		return "NodeGroup"
	}
	var b strings.Builder
	for part := range strings.SplitSeq(label, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}
