// Command infra is the Pulumi program of SmartScale's AWS side: network,
// K3s master, worker launch template, state table, secrets, interruption
// events, notifications, registry, alarms, audit trail and least-privilege
// IAM. Configuration comes from Pulumi.<stack>.yaml (see README.md).
package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		s, err := loadSettings(ctx)
		if err != nil {
			return err
		}
		outputs, err := deploy(ctx, s)
		if err != nil {
			return err
		}
		for k, v := range outputs {
			ctx.Export(k, v)
		}
		return nil
	})
}

// deploy creates the whole stack from validated settings and returns the
// stack outputs: the values SmartScale's config and the Helm values need
// (README maps each one to its key).
func deploy(ctx *pulumi.Context, s settings) (pulumi.Map, error) {
	acct, err := lookupAccount(ctx)
	if err != nil {
		return nil, err
	}
	azs, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{State: pulumi.StringRef("available")})
	if err != nil {
		return nil, fmt.Errorf("list availability zones: %w", err)
	}
	zones, err := zonesFor(s.Zones, acct.Region, azs.Names)
	if err != nil {
		return nil, err
	}
	ami, err := ssm.LookupParameter(ctx, &ssm.LookupParameterArgs{Name: s.AMIParameter})
	if err != nil {
		return nil, fmt.Errorf("look up AMI parameter %s: %w", s.AMIParameter, err)
	}
	amiID := ami.InsecureValue // an AMI id is not a secret

	net, err := newNetwork(ctx, s, zones, acct.Region)
	if err != nil {
		return nil, err
	}
	sgs, err := newSecurityGroups(ctx, s, net)
	if err != nil {
		return nil, err
	}
	logs, err := newLogGroup(ctx, s)
	if err != nil {
		return nil, err
	}
	table, err := newStateTable(ctx, s)
	if err != nil {
		return nil, err
	}
	sec, err := newSecrets(ctx, s)
	if err != nil {
		return nil, err
	}
	queue, err := newInterruptionQueue(ctx, s)
	if err != nil {
		return nil, err
	}
	topic, err := newAlertTopic(ctx, s)
	if err != nil {
		return nil, err
	}
	repos, err := newRepositories(ctx, s)
	if err != nil {
		return nil, err
	}
	r, err := newRoles(ctx, s)
	if err != nil {
		return nil, err
	}
	master, err := newMaster(ctx, s, masterInputs{
		AMIID:          amiID,
		Region:         acct.Region,
		Subnet:         net.PrivateSubnets[0],
		SecurityGroup:  sgs.Master,
		Profile:        r.MasterProfile.Name,
		TokenSecretARN: sec.Token.Arn,
		LogGroup:       logs.Name,
	})
	if err != nil {
		return nil, err
	}
	lt, err := newWorkerTemplate(ctx, s, workerInputs{
		AMIID:          amiID,
		Region:         acct.Region,
		SecurityGroup:  sgs.Workers,
		ProfileARN:     r.NodeProfile.Arn,
		TokenSecretARN: sec.Token.Arn,
		LogGroup:       logs.Name,
	})
	if err != nil {
		return nil, err
	}

	var privateIDs, publicIDs pulumi.StringArray
	subnetsByZone := pulumi.StringMap{}
	for i, zone := range zones {
		privateIDs = append(privateIDs, net.PrivateSubnets[i].ID())
		publicIDs = append(publicIDs, net.PublicSubnets[i].ID())
		subnetsByZone[zone] = net.PrivateSubnets[i].ID()
	}
	var repoARNs pulumi.StringArray
	repoURLs := pulumi.StringMap{}
	for _, name := range repositoryNames {
		repoARNs = append(repoARNs, repos[name].Arn)
		repoURLs[name] = repos[name].RepositoryUrl
	}
	if err := attachPolicies(ctx, s, acct, r, grants{
		LaunchTemplateID: lt.ID().ToStringOutput(),
		AMIID:            amiID,
		WorkerSGID:       sgs.Workers.ID().ToStringOutput(),
		SubnetIDs:        privateIDs.ToStringArrayOutput(),
		TableARN:         table.Arn,
		QueueARN:         queue.Arn,
		TopicARN:         topic.Arn,
		TokenSecretARN:   sec.Token.Arn,
		SlackSecretARN:   sec.Slack.Arn,
		LogGroupARN:      logs.Arn,
		RepositoryARNs:   repoARNs.ToStringArrayOutput(),
	}); err != nil {
		return nil, err
	}
	if err := newAlarms(ctx, s, topic.Arn); err != nil {
		return nil, err
	}
	if err := newTrail(ctx, s, acct); err != nil {
		return nil, err
	}

	return pulumi.Map{
		"clusterId":             pulumi.String(s.ClusterID),
		"region":                pulumi.String(acct.Region),
		"zones":                 pulumi.ToStringArray(zones),
		"masterPrivateIp":       master.PrivateIp,
		"masterInstanceId":      master.ID(),
		"vpcId":                 net.VPC.ID(),
		"privateSubnetIds":      privateIDs,
		"publicSubnetIds":       publicIDs,
		"subnetsByZone":         subnetsByZone,
		"workerSecurityGroupId": sgs.Workers.ID(),
		"launchTemplateId":      lt.ID(),
		"nodeGroup":             pulumi.String(s.NodeGroup),
		"stateTableName":        table.Name,
		"interruptionQueueUrl":  queue.Url,
		"alertTopicArn":         topic.Arn,
		"ecrRepositoryUrls":     repoURLs,
		"webhookRoleArn":        r.Webhook.Arn,
		"nodeRoleArn":           r.Node.Arn,
		"k3sTokenSecretArn":     sec.Token.Arn,
		"slackWebhookSecretArn": sec.Slack.Arn,
		"logGroupName":          logs.Name,
		// serve --cloudwatch-namespace (Helm cloudwatch.namespace): the
		// only namespace the webhook role may put metrics into.
		"cloudwatchNamespace": pulumi.String(s.MetricNamespace),
		// The same values in the shape of SmartScale's config file, ready
		// to merge: pulumi stack output smartscaleConfig --json.
		"smartscaleConfig": pulumi.Map{
			"clusterID": pulumi.String(s.ClusterID),
			"state": pulumi.Map{
				"backend":  pulumi.String("dynamodb"),
				"dynamodb": pulumi.Map{"table": table.Name, "region": pulumi.String(acct.Region)},
			},
			"cloud": pulumi.Map{
				"provider": pulumi.String("aws"),
				"aws": pulumi.Map{
					"region":               pulumi.String(acct.Region),
					"launchTemplateID":     lt.ID(),
					"subnets":              subnetsByZone,
					"interruptionQueueURL": queue.Url,
				},
			},
			"notify": pulumi.Map{
				"sns": pulumi.Map{"topicARN": topic.Arn, "region": pulumi.String(acct.Region)},
			},
		},
	}, nil
}

// lookupAccount asks the provider where it deploys: account, region,
// partition.
func lookupAccount(ctx *pulumi.Context) (account, error) {
	id, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return account{}, fmt.Errorf("get caller identity: %w", err)
	}
	region, err := aws.GetRegion(ctx, nil)
	if err != nil {
		return account{}, fmt.Errorf("get region: %w", err)
	}
	part, err := aws.GetPartition(ctx, nil)
	if err != nil {
		return account{}, fmt.Errorf("get partition: %w", err)
	}
	return account{Partition: part.Partition, Region: region.Name, ID: id.AccountId}, nil
}
