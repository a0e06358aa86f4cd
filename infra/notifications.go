package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sns"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// newAlertTopic is where SmartScale, Alertmanager and the CloudWatch alarms
// tell people. It is not KMS-encrypted: CloudWatch alarms can only publish
// to an encrypted topic through a customer-managed key, which this stack
// does not otherwise need.
func newAlertTopic(ctx *pulumi.Context, s settings) (*sns.Topic, error) {
	topic, err := sns.NewTopic(ctx, "alerts", &sns.TopicArgs{
		Name:        pulumi.String("smartscale-" + s.ClusterID + "-alerts"),
		DisplayName: pulumi.String("SmartScale " + s.ClusterID),
		Tags:        s.tags("alerts"),
	})
	if err != nil {
		return nil, fmt.Errorf("alert topic: %w", err)
	}
	if s.AlertEmail != "" {
		// AWS mails a confirmation link; nothing arrives until it is clicked.
		if _, err := sns.NewTopicSubscription(ctx, "alerts-email", &sns.TopicSubscriptionArgs{
			Topic:    topic.Arn,
			Protocol: pulumi.String("email"),
			Endpoint: pulumi.String(s.AlertEmail),
		}); err != nil {
			return nil, fmt.Errorf("alert e-mail subscription: %w", err)
		}
	}
	return topic, nil
}
