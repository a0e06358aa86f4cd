package main

import (
	"encoding/json"
	"fmt"
)

// policyDocument is an IAM (or resource) policy. Action and Resource are
// always lists, so the documents read the same everywhere and the tests walk
// one shape.
type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                    `json:"Sid,omitempty"`
	Effect    string                    `json:"Effect"`
	Principal any                       `json:"Principal,omitempty"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource,omitempty"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

func document(statements ...statement) policyDocument {
	return policyDocument{Version: "2012-10-17", Statement: statements}
}

func (d policyDocument) JSON() (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode policy: %w", err)
	}
	return string(b), nil
}

func allow(sid string, actions []string, resources ...string) statement {
	return statement{Sid: sid, Effect: "Allow", Action: actions, Resource: resources}
}

func (st statement) when(operator, key string, value any) statement {
	if st.Condition == nil {
		st.Condition = map[string]map[string]any{}
	}
	if st.Condition[operator] == nil {
		st.Condition[operator] = map[string]any{}
	}
	st.Condition[operator][key] = value
	return st
}

// account locates ARNs: partition, region and account id, as the provider
// reports them (so the same program works in aws-cn and GovCloud).
type account struct {
	Partition string
	Region    string
	ID        string
}

// arn builds a regional ARN of this account.
func (a account) arn(service, resource string) string {
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", a.Partition, service, a.Region, a.ID, resource)
}

// ec2Public builds an ARN of a regional EC2 resource that belongs to no
// account of ours (AMIs, their snapshots).
func (a account) ec2Public(resource string) string {
	return fmt.Sprintf("arn:%s:ec2:%s::%s", a.Partition, a.Region, resource)
}

// iam builds a global IAM ARN.
func (a account) iam(resource string) string {
	return fmt.Sprintf("arn:%s:iam::%s:%s", a.Partition, a.ID, resource)
}

// serviceTrust lets an AWS service (ec2.amazonaws.com) assume a role.
func serviceTrust(service string) policyDocument {
	return document(statement{
		Effect:    "Allow",
		Principal: map[string]any{"Service": service},
		Action:    []string{"sts:AssumeRole"},
	})
}

// roleTrust lets one role assume another.
func roleTrust(roleARN string) policyDocument {
	return document(statement{
		Effect:    "Allow",
		Principal: map[string]any{"AWS": roleARN},
		Action:    []string{"sts:AssumeRole"},
	})
}

// webhookRefs are the resources SmartScale's webhook acts on.
type webhookRefs struct {
	LaunchTemplateID string
	AMIID            string
	WorkerSGID       string
	SubnetIDs        []string
	NodeRoleARN      string
	TableARN         string
	QueueARN         string
	TopicARN         string
	SlackSecretARN   string
	// MetricNamespace is the one CloudWatch namespace it may publish to.
	MetricNamespace string
}

// Resource types an EC2 launch creates besides the instance itself.
var launchedTypes = []string{"instance/*", "volume/*", "network-interface/*", "spot-instances-request/*"}

// webhookPolicy is everything SmartScale does in AWS, and nothing more:
// launch workers only from the worker launch template, terminate only
// instances tagged ManagedBy=smartscale, use only this table, queue, topic
// and secret, put metrics only into its CloudWatch namespace.
func webhookPolicy(a account, r webhookRefs) policyDocument {
	template := a.arn("ec2", "launch-template/"+r.LaunchTemplateID)
	network := []string{a.arn("ec2", "security-group/"+r.WorkerSGID), a.ec2Public("image/" + r.AMIID), a.ec2Public("snapshot/*")}
	for _, id := range r.SubnetIDs {
		network = append(network, a.arn("ec2", "subnet/"+id))
	}
	launched := func(types ...string) []string {
		var out []string
		for _, t := range types {
			out = append(out, a.arn("ec2", t))
		}
		return out
	}
	return document(
		allow("UseWorkerTemplate", []string{"ec2:CreateFleet", "ec2:RunInstances"}, template),
		allow("LaunchIntoClusterNetwork", []string{"ec2:CreateFleet", "ec2:RunInstances"}, network...),
		// CreateFleet launches through RunInstances on the caller's behalf, so
		// this RunInstances permission is what pins every launch, direct or
		// through a fleet, to the worker template; the instance itself must
		// carry ManagedBy=smartscale from the request.
		allow("LaunchInstancesOnlyFromWorkerTemplate", []string{"ec2:RunInstances"}, launched("instance/*")...).
			when("ArnEquals", "ec2:LaunchTemplate", template).
			when("StringEquals", "aws:RequestTag/ManagedBy", "smartscale"),
		allow("LaunchAttachmentsOnlyFromWorkerTemplate", []string{"ec2:RunInstances"}, launched("volume/*", "network-interface/*", "spot-instances-request/*")...).
			when("ArnEquals", "ec2:LaunchTemplate", template),
		allow("CreateInstantFleets", []string{"ec2:CreateFleet"}, launched(append([]string{"fleet/*"}, launchedTypes...)...)...),
		allow("TagOnLaunchOnly", []string{"ec2:CreateTags"}, launched(append([]string{"fleet/*"}, launchedTypes...)...)...).
			when("StringEquals", "ec2:CreateAction", []string{"CreateFleet", "RunInstances"}),
		allow("TerminateOwnWorkersOnly", []string{"ec2:TerminateInstances"}, launched("instance/*")...).
			when("StringEquals", "ec2:ResourceTag/ManagedBy", "smartscale"),
		allow("PassNodeRoleToWorkers", []string{"iam:PassRole"}, r.NodeRoleARN).
			when("StringEquals", "iam:PassedToService", "ec2.amazonaws.com"),
		// The first spot or fleet launch in an account creates these roles.
		allow("CreateSpotServiceLinkedRoles", []string{"iam:CreateServiceLinkedRole"},
			a.iam("role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"),
			a.iam("role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet")).
			when("StringEquals", "iam:AWSServiceName", []string{"spot.amazonaws.com", "ec2fleet.amazonaws.com"}),
		// EC2 Describe calls support no resource-level permissions; they are
		// read-only.
		allow("DescribeEC2", []string{
			"ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstances",
			"ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
			"ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
			"ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets",
		}, "*"),
		allow("StateTable", []string{
			"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem",
			"dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem",
			"dynamodb:Query", "dynamodb:UpdateItem",
		}, r.TableARN),
		allow("InterruptionQueue", []string{
			"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
			"sqs:GetQueueUrl", "sqs:ReceiveMessage",
		}, r.QueueARN),
		allow("PublishAlerts", []string{"sns:Publish"}, r.TopicARN),
		allow("ReadSlackWebhookURL", []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}, r.SlackSecretARN),
		// PutMetricData has no resource type to scope it to, only the
		// cloudwatch:namespace condition key: the webhook writes into its
		// own namespace and cannot touch any other metric of the account.
		allow("PutMetricsIntoOwnNamespace", []string{"cloudwatch:PutMetricData"}, "*").
			when("StringEquals", "cloudwatch:namespace", r.MetricNamespace),
	)
}

// nodeRefs are what a K3s node needs to reach.
type nodeRefs struct {
	TokenSecretARN string
	RepositoryARNs []string
	LogGroupARN    string
	// WebhookRoleARN is set for the master only: SmartScale's pods run there
	// and assume the webhook role.
	WebhookRoleARN string
}

// nodePolicy is what a K3s node needs and nothing more: read the join token,
// find the master by its tag, pull this stack's images, ship its logs.
func nodePolicy(r nodeRefs) policyDocument {
	d := document(
		allow("ReadK3sToken", []string{"secretsmanager:GetSecretValue"}, r.TokenSecretARN),
		allow("FindMaster", []string{"ec2:DescribeInstances"}, "*"),
		// GetAuthorizationToken has no resource; it only returns a login.
		allow("ECRLogin", []string{"ecr:GetAuthorizationToken"}, "*"),
		allow("ECRPull", []string{"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}, r.RepositoryARNs...),
		allow("CloudWatchAgentLogs", []string{"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"},
			r.LogGroupARN, r.LogGroupARN+":log-stream:*"),
	)
	if r.WebhookRoleARN != "" {
		d.Statement = append(d.Statement, allow("AssumeWebhookRole", []string{"sts:AssumeRole"}, r.WebhookRoleARN))
	}
	return d
}

// queuePolicy lets exactly the given EventBridge rules send to the queue.
func queuePolicy(queueARN string, ruleARNs []string) policyDocument {
	return document(statement{
		Sid:       "EventBridgeRulesOnly",
		Effect:    "Allow",
		Principal: map[string]any{"Service": "events.amazonaws.com"},
		Action:    []string{"sqs:SendMessage"},
		Resource:  []string{queueARN},
	}.when("ArnEquals", "aws:SourceArn", ruleARNs))
}

// trailBucketPolicy is the bucket policy CloudTrail requires, limited to
// this trail, plus TLS-only access.
func trailBucketPolicy(a account, bucketARN, trailARN string) policyDocument {
	cloudtrail := map[string]any{"Service": "cloudtrail.amazonaws.com"}
	return document(
		statement{Sid: "CloudTrailAclCheck", Effect: "Allow", Principal: cloudtrail,
			Action: []string{"s3:GetBucketAcl"}, Resource: []string{bucketARN}}.
			when("StringEquals", "aws:SourceArn", trailARN),
		statement{Sid: "CloudTrailWrite", Effect: "Allow", Principal: cloudtrail,
			Action: []string{"s3:PutObject"}, Resource: []string{bucketARN + "/AWSLogs/" + a.ID + "/*"}}.
			when("StringEquals", "aws:SourceArn", trailARN).
			when("StringEquals", "s3:x-amz-acl", "bucket-owner-full-control"),
		statement{Sid: "DenyInsecureTransport", Effect: "Deny", Principal: "*",
			Action: []string{"s3:*"}, Resource: []string{bucketARN, bucketARN + "/*"}}.
			when("Bool", "aws:SecureTransport", "false"),
	)
}
