package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// roles: one for worker nodes, one for the master, one for SmartScale's
// webhook. Policies are inline and least-privilege (policy.go); no AWS
// managed policy is attached, because those grant wildcards (the CloudWatch
// agent's allows PutMetricData and more on "*").
type roles struct {
	Node          *iam.Role
	NodeProfile   *iam.InstanceProfile
	Master        *iam.Role
	MasterProfile *iam.InstanceProfile
	// Webhook is assumed from the master's instance profile by SmartScale's
	// pods, which run on the master (IMDS hop limit 2 there, 1 on workers so
	// workload pods cannot borrow node credentials).
	Webhook *iam.Role
}

func newRoles(ctx *pulumi.Context, s settings) (*roles, error) {
	ec2Trust, err := serviceTrust("ec2.amazonaws.com").JSON()
	if err != nil {
		return nil, err
	}
	r := &roles{}
	if r.Node, err = iam.NewRole(ctx, "node", &iam.RoleArgs{
		Description:      pulumi.String("K3s worker nodes of SmartScale cluster " + s.ClusterID),
		AssumeRolePolicy: pulumi.String(ec2Trust),
		Tags:             s.tags("node"),
	}); err != nil {
		return nil, fmt.Errorf("node role: %w", err)
	}
	if r.NodeProfile, err = iam.NewInstanceProfile(ctx, "node", &iam.InstanceProfileArgs{
		Role: r.Node.Name,
		Tags: s.tags("node"),
	}); err != nil {
		return nil, fmt.Errorf("node instance profile: %w", err)
	}
	if r.Master, err = iam.NewRole(ctx, "master", &iam.RoleArgs{
		Description:      pulumi.String("K3s server of SmartScale cluster " + s.ClusterID),
		AssumeRolePolicy: pulumi.String(ec2Trust),
		Tags:             s.tags("master"),
	}); err != nil {
		return nil, fmt.Errorf("master role: %w", err)
	}
	if r.MasterProfile, err = iam.NewInstanceProfile(ctx, "master", &iam.InstanceProfileArgs{
		Role: r.Master.Name,
		Tags: s.tags("master"),
	}); err != nil {
		return nil, fmt.Errorf("master instance profile: %w", err)
	}
	webhookTrust := r.Master.Arn.ApplyT(func(arn string) (string, error) {
		return roleTrust(arn).JSON()
	}).(pulumi.StringOutput)
	if r.Webhook, err = iam.NewRole(ctx, "webhook", &iam.RoleArgs{
		Description:        pulumi.String("SmartScale webhook of cluster " + s.ClusterID),
		AssumeRolePolicy:   webhookTrust,
		MaxSessionDuration: pulumi.Int(3600),
		Tags:               s.tags("webhook"),
	}); err != nil {
		return nil, fmt.Errorf("webhook role: %w", err)
	}
	return r, nil
}

// grants are the resources the role policies point at.
type grants struct {
	LaunchTemplateID pulumi.StringOutput
	AMIID            string
	WorkerSGID       pulumi.StringOutput
	SubnetIDs        pulumi.StringArrayOutput
	TableARN         pulumi.StringOutput
	QueueARN         pulumi.StringOutput
	TopicARN         pulumi.StringOutput
	TokenSecretARN   pulumi.StringOutput
	SlackSecretARN   pulumi.StringOutput
	LogGroupARN      pulumi.StringOutput
	RepositoryARNs   pulumi.StringArrayOutput
}

func attachPolicies(ctx *pulumi.Context, s settings, a account, r *roles, g grants) error {
	webhook := pulumi.All(g.LaunchTemplateID, g.WorkerSGID, g.SubnetIDs, r.Node.Arn, g.TableARN,
		g.QueueARN, g.TopicARN, g.SlackSecretARN).ApplyT(func(v []any) (string, error) {
		return webhookPolicy(a, webhookRefs{
			LaunchTemplateID: v[0].(string),
			AMIID:            g.AMIID,
			WorkerSGID:       v[1].(string),
			SubnetIDs:        v[2].([]string),
			NodeRoleARN:      v[3].(string),
			TableARN:         v[4].(string),
			QueueARN:         v[5].(string),
			TopicARN:         v[6].(string),
			SlackSecretARN:   v[7].(string),
			MetricNamespace:  s.MetricNamespace,
		}).JSON()
	}).(pulumi.StringOutput)
	node := pulumi.All(g.TokenSecretARN, g.RepositoryARNs, g.LogGroupARN).ApplyT(func(v []any) (string, error) {
		return nodePolicy(nodeRefs{TokenSecretARN: v[0].(string), RepositoryARNs: v[1].([]string), LogGroupARN: v[2].(string)}).JSON()
	}).(pulumi.StringOutput)
	master := pulumi.All(g.TokenSecretARN, g.RepositoryARNs, g.LogGroupARN, r.Webhook.Arn).ApplyT(func(v []any) (string, error) {
		return nodePolicy(nodeRefs{TokenSecretARN: v[0].(string), RepositoryARNs: v[1].([]string), LogGroupARN: v[2].(string), WebhookRoleARN: v[3].(string)}).JSON()
	}).(pulumi.StringOutput)

	for _, p := range []struct {
		name   string
		role   *iam.Role
		policy pulumi.StringOutput
	}{{"webhook", r.Webhook, webhook}, {"node", r.Node, node}, {"master", r.Master, master}} {
		if _, err := iam.NewRolePolicy(ctx, p.name, &iam.RolePolicyArgs{
			Role:   p.role.Name,
			Policy: p.policy,
		}); err != nil {
			return fmt.Errorf("%s role policy: %w", p.name, err)
		}
	}
	return nil
}
