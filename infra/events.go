package main

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sqs"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// eventRule is one EventBridge rule feeding SmartScale's interruption queue.
type eventRule struct {
	Name        string
	Description string
	Pattern     map[string]any
}

// interruptionRules are the EC2 events SmartScale reacts to. Events carry no
// tags, so every instance of the account matches; SmartScale drops the ones
// that are not its own.
func interruptionRules() []eventRule {
	return []eventRule{
		{
			Name:        "spot-interruption",
			Description: "Two-minute warning before EC2 reclaims a spot instance",
			Pattern: map[string]any{
				"source":      []any{"aws.ec2"},
				"detail-type": []any{"EC2 Spot Instance Interruption Warning"},
			},
		},
		{
			Name:        "rebalance-recommendation",
			Description: "EC2 signals a spot instance at elevated risk of interruption",
			Pattern: map[string]any{
				"source":      []any{"aws.ec2"},
				"detail-type": []any{"EC2 Instance Rebalance Recommendation"},
			},
		},
		{
			Name:        "instance-state-change",
			Description: "An instance is going away (stopped or terminated outside SmartScale)",
			Pattern: map[string]any{
				"source":      []any{"aws.ec2"},
				"detail-type": []any{"EC2 Instance State-change Notification"},
				// pending/running would only add queue traffic: SmartScale
				// learns about new nodes from the Kubernetes API.
				"detail": map[string]any{
					"state": []any{"stopping", "stopped", "shutting-down", "terminated"},
				},
			},
		},
	}
}

// newInterruptionQueue creates the queue SmartScale long-polls and the rules
// that fill it; only those rules may send to it.
func newInterruptionQueue(ctx *pulumi.Context, s settings) (*sqs.Queue, error) {
	queue, err := sqs.NewQueue(ctx, "interruptions", &sqs.QueueArgs{
		Name: pulumi.String("smartscale-" + s.ClusterID + "-interruptions"),
		// A spot warning is worthless after its two minutes; keep messages
		// five minutes so a restarting poller still sees them.
		MessageRetentionSeconds:  pulumi.Int(300),
		ReceiveWaitTimeSeconds:   pulumi.Int(20),
		VisibilityTimeoutSeconds: pulumi.Int(60),
		// SQS-managed keys: EventBridge can deliver to them without a KMS
		// key policy.
		SqsManagedSseEnabled: pulumi.Bool(true),
		Tags:                 s.tags("interruptions"),
	})
	if err != nil {
		return nil, fmt.Errorf("interruption queue: %w", err)
	}
	var ruleARNs pulumi.StringArray
	for _, r := range interruptionRules() {
		pattern, err := json.Marshal(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("rule %s pattern: %w", r.Name, err)
		}
		rule, err := cloudwatch.NewEventRule(ctx, r.Name, &cloudwatch.EventRuleArgs{
			Name:         pulumi.String("smartscale-" + s.ClusterID + "-" + r.Name),
			Description:  pulumi.String(r.Description),
			EventPattern: pulumi.String(string(pattern)),
			Tags:         s.tags(r.Name),
		})
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		if _, err := cloudwatch.NewEventTarget(ctx, r.Name, &cloudwatch.EventTargetArgs{
			Rule: rule.Name,
			Arn:  queue.Arn,
		}); err != nil {
			return nil, fmt.Errorf("rule %s target: %w", r.Name, err)
		}
		ruleARNs = append(ruleARNs, rule.Arn)
	}
	policy := pulumi.All(queue.Arn, ruleARNs.ToStringArrayOutput()).ApplyT(func(v []any) (string, error) {
		return queuePolicy(v[0].(string), v[1].([]string)).JSON()
	}).(pulumi.StringOutput)
	if _, err := sqs.NewQueuePolicy(ctx, "interruptions", &sqs.QueuePolicyArgs{
		QueueUrl: queue.Url,
		Policy:   policy,
	}); err != nil {
		return nil, fmt.Errorf("interruption queue policy: %w", err)
	}
	return queue, nil
}
