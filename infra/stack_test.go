package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ecr"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/secretsmanager"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sns"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sqs"
	"gopkg.in/yaml.v3"
)

const (
	tLaunchTemplate = "aws:ec2/launchTemplate:LaunchTemplate"
	tInstance       = "aws:ec2/instance:Instance"
	tSubnet         = "aws:ec2/subnet:Subnet"
	tTable          = "aws:dynamodb/table:Table"
	tRole           = "aws:iam/role:Role"
	tRolePolicy     = "aws:iam/rolePolicy:RolePolicy"
	tEventRule      = "aws:cloudwatch/eventRule:EventRule"
	tEventTarget    = "aws:cloudwatch/eventTarget:EventTarget"
	tQueue          = "aws:sqs/queue:Queue"
	tQueuePolicy    = "aws:sqs/queuePolicy:QueuePolicy"
	tSecret         = "aws:secretsmanager/secret:Secret"
	tSecretVersion  = "aws:secretsmanager/secretVersion:SecretVersion"
	tSecretRotation = "aws:secretsmanager/secretRotation:SecretRotation"
	tAlarm          = "aws:cloudwatch/metricAlarm:MetricAlarm"
	tLogGroup       = "aws:cloudwatch/logGroup:LogGroup"
	tTrail          = "aws:cloudtrail/trail:Trail"
	tTopic          = "aws:sns/topic:Topic"
	tSubscription   = "aws:sns/topicSubscription:TopicSubscription"
	tRepository     = "aws:ecr/repository:Repository"
	tBucketPolicy   = "aws:s3/bucketPolicy:BucketPolicy"
	al2023Parameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
)

// nonTaggable lists the resource types this stack uses that AWS cannot tag.
// Each entry carries its SDK args type, and the test proves it has no Tags
// field, so nothing can hide in this list: every other type must be tagged.
var nonTaggable = map[string]any{
	"aws:ec2/route:Route": ec2.RouteArgs{},
	"aws:ec2/routeTableAssociation:RouteTableAssociation":                                        ec2.RouteTableAssociationArgs{},
	"aws:iam/rolePolicy:RolePolicy":                                                              iam.RolePolicyArgs{},
	"aws:sqs/queuePolicy:QueuePolicy":                                                            sqs.QueuePolicyArgs{},
	"aws:cloudwatch/eventTarget:EventTarget":                                                     cloudwatch.EventTargetArgs{},
	"aws:secretsmanager/secretVersion:SecretVersion":                                             secretsmanager.SecretVersionArgs{},
	"aws:secretsmanager/secretRotation:SecretRotation":                                           secretsmanager.SecretRotationArgs{},
	"aws:sns/topicSubscription:TopicSubscription":                                                sns.TopicSubscriptionArgs{},
	"aws:ecr/lifecyclePolicy:LifecyclePolicy":                                                    ecr.LifecyclePolicyArgs{},
	"aws:s3/bucketPolicy:BucketPolicy":                                                           s3.BucketPolicyArgs{},
	"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":                                     s3.BucketPublicAccessBlockArgs{},
	"aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": s3.BucketServerSideEncryptionConfigurationV2Args{},
	"aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2":                       s3.BucketLifecycleConfigurationV2Args{},
}

// everything turns on every optional part, so the checks below see every
// resource the program can create.
var everything = map[string]string{
	"sshCidr":                   "203.0.113.0/24",
	"apiCidrs":                  `["198.51.100.0/24"]`,
	"alertEmail":                "oncall@example.com",
	"slackWebhookUrl":           "https://hooks.slack.com/services/T000/B000/XXXX",
	"k3sTokenRotationLambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:rotate-k3s-token",
	"sshKeyName":                "ops",
}

func TestNonTaggableListIsTrue(t *testing.T) {
	for token, args := range nonTaggable {
		if _, has := reflect.TypeOf(args).FieldByName("Tags"); has {
			t.Errorf("%s is listed as non-taggable but its args have Tags", token)
		}
	}
}

func TestEveryTaggableResourceHasProjectAndManagedBy(t *testing.T) {
	for _, cfg := range []map[string]string{nil, everything} {
		m := mustRun(t, cfg)
		checked := 0
		for _, r := range m.resources {
			if strings.HasPrefix(r.Type, "pulumi:") {
				continue // the stack and the provider are Pulumi's, not AWS's
			}
			if _, ok := nonTaggable[r.Type]; ok {
				continue
			}
			tags, _ := r.Inputs["tags"].(map[string]any)
			if tags["Project"] != "smartscale" || tags["ManagedBy"] != "pulumi" {
				t.Errorf("%s %s: tags %v lack Project=smartscale and ManagedBy=pulumi", r.Type, r.Name, tags)
			}
			if tags["smartscale/cluster"] != "test" || tags["Name"] == nil {
				t.Errorf("%s %s: tags %v lack smartscale/cluster and Name", r.Type, r.Name, tags)
			}
			checked++
		}
		if checked < 40 {
			t.Fatalf("only %d taggable resources checked; the program registers more", checked)
		}
	}
}

// ebsSpecs finds every EBS volume specification in a resource's inputs:
// any object that gives a volume size or type.
func ebsSpecs(v any, path string, found map[string]map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["volumeSize"]; ok {
			found[path] = x
		} else if _, ok := x["volumeType"]; ok {
			found[path] = x
		}
		for k, e := range x {
			ebsSpecs(e, path+"."+k, found)
		}
	case []any:
		for i, e := range x {
			ebsSpecs(e, fmt.Sprintf("%s[%d]", path, i), found)
		}
	}
}

func TestEveryEBSVolumeIsEncrypted(t *testing.T) {
	m := mustRun(t, everything)
	found := map[string]map[string]any{}
	for _, r := range m.resources {
		ebsSpecs(r.Inputs, r.Type+" "+r.Name, found)
		if r.Type == "aws:ebs/volume:Volume" && r.Inputs["encrypted"] != true {
			t.Errorf("EBS volume %s is not encrypted", r.Name)
		}
	}
	if len(found) < 2 {
		t.Fatalf("found %d EBS volume specs, want the master's root and the workers' root: %v", len(found), found)
	}
	for path, spec := range found {
		// Launch templates spell booleans as strings.
		if spec["encrypted"] != true && spec["encrypted"] != "true" {
			t.Errorf("%s: EBS volume not encrypted: %v", path, spec)
		}
		if spec["volumeType"] != "gp3" {
			t.Errorf("%s: volume type %v, want gp3", path, spec["volumeType"])
		}
	}
}

func TestNoSecurityGroupIngressFromTheInternet(t *testing.T) {
	m := mustRun(t, everything)
	open := func(v any) bool {
		s, _ := v.(string)
		return s == "0.0.0.0/0" || s == "::/0"
	}
	rules := 0
	for _, r := range m.resources {
		switch r.Type {
		case "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
			rules++
			if open(r.Inputs["cidrIpv4"]) || open(r.Inputs["cidrIpv6"]) {
				t.Errorf("ingress rule %s is open to the internet: %v", r.Name, r.Inputs)
			}
			src := []any{r.Inputs["cidrIpv4"], r.Inputs["referencedSecurityGroupId"], r.Inputs["prefixListId"], r.Inputs["cidrIpv6"]}
			if slices.IndexFunc(src, func(v any) bool { return v != nil }) < 0 {
				t.Errorf("ingress rule %s has no source", r.Name)
			}
		case "aws:ec2/securityGroupRule:SecurityGroupRule":
			if r.Inputs["type"] == "ingress" {
				rules++
				for _, c := range append(asList(r.Inputs["cidrBlocks"]), asList(r.Inputs["ipv6CidrBlocks"])...) {
					if open(c) {
						t.Errorf("ingress rule %s is open to the internet", r.Name)
					}
				}
			}
		case "aws:ec2/securityGroup:SecurityGroup":
			for _, in := range asList(r.Inputs["ingress"]) {
				rules++
				for _, c := range append(asList(get(in, "cidrBlocks")), asList(get(in, "ipv6CidrBlocks"))...) {
					if open(c) {
						t.Errorf("security group %s has inline ingress from the internet", r.Name)
					}
				}
			}
		}
	}
	if rules < 10 {
		t.Fatalf("found %d ingress rules; the cluster needs more than that", rules)
	}
	// The admin CIDRs arrive as configured, on SSH and the API only.
	ssh := m.one(t, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "master-ssh-from-admin")
	if ssh.Inputs["cidrIpv4"] != "203.0.113.0/24" || ssh.Inputs["fromPort"] != 22.0 {
		t.Errorf("ssh rule = %v", ssh.Inputs)
	}
}

func TestConfigRefusesInternetWideIngress(t *testing.T) {
	for _, c := range []struct{ key, val string }{
		{"sshCidr", "0.0.0.0/0"},
		{"apiCidrs", `["10.0.0.0/8", "0.0.0.0/0"]`},
		{"sshCidr", "1.2.3.4/1"},
	} {
		r := runStack(t, map[string]string{c.key: c.val})
		if r.err == nil || !strings.Contains(r.err.Error(), c.key) {
			t.Errorf("%s=%s: err = %v, want a refusal naming %s", c.key, c.val, r.err, c.key)
		}
	}
}

func TestWorkerLaunchTemplate(t *testing.T) {
	m := mustRun(t, nil)
	lts := m.ofType(tLaunchTemplate)
	if len(lts) != 1 {
		t.Fatalf("want one launch template, got %d", len(lts))
	}
	lt := lts[0].Inputs

	// AL2023 through its public SSM parameter.
	var asked []string
	for _, c := range m.calls {
		if c.Token == "aws:ssm/getParameter:getParameter" {
			asked = append(asked, c.Args["name"].StringValue())
		}
	}
	if !slices.Equal(asked, []string{al2023Parameter}) {
		t.Errorf("SSM parameters looked up = %v, want [%s]", asked, al2023Parameter)
	}
	if lt["imageId"] != mockAMI {
		t.Errorf("imageId = %v, want the AMI the parameter names (%s)", lt["imageId"], mockAMI)
	}
	if lt["instanceType"] != "t3.small" {
		t.Errorf("instanceType = %v, want t3.small", lt["instanceType"])
	}
	bdm := asList(lt["blockDeviceMappings"])
	if len(bdm) != 1 || get(bdm[0], "deviceName") != "/dev/xvda" {
		t.Fatalf("block devices = %v, want one root device /dev/xvda", bdm)
	}
	if ebs := get(bdm[0], "ebs"); get(ebs, "volumeType") != "gp3" || get(ebs, "volumeSize") != 20.0 ||
		get(ebs, "encrypted") != "true" || get(ebs, "deleteOnTermination") != "true" {
		t.Errorf("root volume = %v, want gp3 20 GB encrypted, deleted with the instance", ebs)
	}
	if md := lt["metadataOptions"]; get(md, "httpTokens") != "required" || get(md, "httpEndpoint") != "enabled" ||
		get(md, "httpPutResponseHopLimit") != 1.0 {
		t.Errorf("metadata options = %v, want IMDSv2 required, hop limit 1", md)
	}
	if c := get(lt, "creditSpecification", "cpuCredits"); c != "standard" {
		t.Errorf("cpu credits = %v, want standard", c)
	}
	profile := m.one(t, "aws:iam/instanceProfile:InstanceProfile", "node")
	if get(lt, "iamInstanceProfile", "arn") != profile.Outputs["arn"] {
		t.Errorf("instance profile = %v, want the node profile %v", lt["iamInstanceProfile"], profile.Outputs["arn"])
	}
	sg := m.one(t, "aws:ec2/securityGroup:SecurityGroup", "workers")
	if !slices.Equal(asList(lt["vpcSecurityGroupIds"]), []any{sg.Name + "-id"}) {
		t.Errorf("security groups = %v, want the workers group", lt["vpcSecurityGroupIds"])
	}

	// Tags SmartScale relies on reach the instance and its volume.
	kinds := map[string]map[string]any{}
	for _, ts := range asList(lt["tagSpecifications"]) {
		kinds[get(ts, "resourceType").(string)], _ = get(ts, "tags").(map[string]any)
	}
	for _, kind := range []string{"instance", "volume"} {
		tags := kinds[kind]
		if tags["ManagedBy"] != "smartscale" || tags["Project"] != "smartscale" || tags["ScalingGroup"] != "workers" {
			t.Errorf("%s tags = %v, want Project, ManagedBy=smartscale, ScalingGroup=workers", kind, tags)
		}
	}

	// The user data is the rendered agent script, pointing at the token.
	raw, err := base64.StdEncoding.DecodeString(lt["userData"].(string))
	if err != nil {
		t.Fatalf("user data is not base64: %v", err)
	}
	token := m.one(t, tSecret, "k3s-token")
	script := string(raw)
	for _, want := range []string{
		"TOKEN_SECRET_ID='" + token.Outputs["arn"].(string) + "'",
		"NODEGROUP='workers'", "REGION='us-east-1'", "MASTER_ROLE_TAG='k3s-master'",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("user data lacks %q", want)
		}
	}
	if strings.Contains(script, "{{") {
		t.Error("user data still holds template actions")
	}
}

func TestCPUCreditsAreConfigurable(t *testing.T) {
	m := mustRun(t, map[string]string{"cpuCredits": "unlimited", "workerInstanceType": "t3a.small"})
	lt := m.ofType(tLaunchTemplate)[0].Inputs
	if c := get(lt, "creditSpecification", "cpuCredits"); c != "unlimited" {
		t.Errorf("cpu credits = %v, want unlimited", c)
	}
	if lt["instanceType"] != "t3a.small" {
		t.Errorf("instance type = %v, want t3a.small", lt["instanceType"])
	}
	r := runStack(t, map[string]string{"cpuCredits": "turbo"})
	if r.err == nil || !strings.Contains(r.err.Error(), "cpuCredits") {
		t.Errorf("cpuCredits=turbo: err = %v, want a refusal naming cpuCredits", r.err)
	}
}

func TestMasterInstance(t *testing.T) {
	m := mustRun(t, map[string]string{"sshKeyName": "ops"})
	master := m.one(t, tInstance, "master")
	in := master.Inputs
	tags := in["tags"].(map[string]any)
	if tags["Role"] != "k3s-master" {
		t.Errorf("master tags = %v, want Role=k3s-master", tags)
	}
	// The webhook may terminate ManagedBy=smartscale only; the master must
	// never carry it.
	if tags["ManagedBy"] == "smartscale" || get(in, "volumeTags", "ManagedBy") == "smartscale" {
		t.Error("the master is tagged ManagedBy=smartscale: SmartScale could terminate it")
	}
	private := m.one(t, tSubnet, "private-us-east-1a")
	if in["subnetId"] != private.Name+"-id" {
		t.Errorf("master subnet = %v, want the first private subnet", in["subnetId"])
	}
	if in["associatePublicIpAddress"] == true {
		t.Error("master has a public address")
	}
	if get(in, "metadataOptions", "httpTokens") != "required" {
		t.Errorf("master metadata options = %v, want IMDSv2", in["metadataOptions"])
	}
	if in["ami"] != mockAMI || in["keyName"] != "ops" {
		t.Errorf("master ami/key = %v/%v", in["ami"], in["keyName"])
	}
	ud, _ := in["userData"].(string)
	token := m.one(t, tSecret, "k3s-token")
	if !strings.Contains(ud, "TOKEN_SECRET_ID='"+token.Outputs["arn"].(string)+"'") || !strings.Contains(ud, "k3s-install.sh") {
		t.Errorf("master user data is not the rendered server script:\n%.300s", ud)
	}
}

func TestNetworkDefaults(t *testing.T) {
	m := mustRun(t, nil)
	want := map[string]string{
		"public-us-east-1a": "10.40.0.0/20", "public-us-east-1b": "10.40.16.0/20",
		"private-us-east-1a": "10.40.128.0/20", "private-us-east-1b": "10.40.144.0/20",
	}
	subnets := m.ofType(tSubnet)
	if len(subnets) != len(want) {
		t.Fatalf("subnets = %v, want %v", m.names(tSubnet), want)
	}
	for _, s := range subnets {
		if want[s.Name] != s.Inputs["cidrBlock"] || s.Inputs["mapPublicIpOnLaunch"] != false {
			t.Errorf("subnet %s = %v/%v, want %s without public addresses", s.Name, s.Inputs["cidrBlock"], s.Inputs["mapPublicIpOnLaunch"], want[s.Name])
		}
	}
	if n := len(m.ofType("aws:ec2/natGateway:NatGateway")); n != 1 {
		t.Errorf("%d NAT gateways, want 1", n)
	}
	nat := m.ofType("aws:ec2/natGateway:NatGateway")[0]
	if nat.Inputs["subnetId"] != "public-us-east-1a-id" {
		t.Errorf("NAT gateway in %v, want the first public subnet", nat.Inputs["subnetId"])
	}
	routes := map[string]any{}
	for _, r := range m.ofType("aws:ec2/route:Route") {
		routes[r.Name] = r.Inputs
	}
	if get(routes, "public-default", "gatewayId") != "igw-id" || get(routes, "private-default", "natGatewayId") != "nat-id" {
		t.Errorf("default routes = %v, want public via the internet gateway, private via NAT", routes)
	}
	assocs := map[string]string{}
	for _, a := range m.ofType("aws:ec2/routeTableAssociation:RouteTableAssociation") {
		assocs[a.Inputs["subnetId"].(string)] = a.Inputs["routeTableId"].(string)
	}
	if assocs["private-us-east-1a-id"] != "private-id" || assocs["private-us-east-1b-id"] != "private-id" ||
		assocs["public-us-east-1a-id"] != "public-id" || assocs["public-us-east-1b-id"] != "public-id" {
		t.Errorf("route table associations = %v", assocs)
	}
}

func TestZones(t *testing.T) {
	// Outside us-east-1 the first two available zones, sorted.
	r := runStackIn(t, "eu-west-1", []string{"eu-west-1c", "eu-west-1a", "eu-west-1b"}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.names(tSubnet); !slices.Equal(got, []string{"private-eu-west-1a", "private-eu-west-1b", "public-eu-west-1a", "public-eu-west-1b"}) {
		t.Errorf("subnets = %v", got)
	}
	m := mustRun(t, map[string]string{"availabilityZones": `["us-east-1b", "us-east-1c"]`})
	if got := m.names(tSubnet); !slices.Equal(got, []string{"private-us-east-1b", "private-us-east-1c", "public-us-east-1b", "public-us-east-1c"}) {
		t.Errorf("subnets = %v", got)
	}
	for _, bad := range []string{`["us-east-1a", "us-east-1z"]`, `["us-east-1a"]`, `["us-east-1a", "us-east-1a"]`} {
		r := runStack(t, map[string]string{"availabilityZones": bad})
		if r.err == nil || !strings.Contains(r.err.Error(), "availabilityZones") {
			t.Errorf("availabilityZones=%s: err = %v, want a refusal naming the key", bad, r.err)
		}
	}
}

func TestStateTable(t *testing.T) {
	m := mustRun(t, nil)
	tables := m.ofType(tTable)
	if len(tables) != 1 {
		t.Fatalf("want one table, got %d", len(tables))
	}
	in := tables[0].Inputs
	if in["hashKey"] != "pk" || in["rangeKey"] != "sk" {
		t.Errorf("keys = %v/%v, want pk/sk", in["hashKey"], in["rangeKey"])
	}
	attrs := map[any]any{}
	for _, a := range asList(in["attributes"]) {
		attrs[get(a, "name")] = get(a, "type")
	}
	if !reflect.DeepEqual(attrs, map[any]any{"pk": "S", "sk": "S"}) {
		t.Errorf("attributes = %v, want pk and sk strings only", attrs)
	}
	if get(in, "ttl", "attributeName") != "expires_at" || get(in, "ttl", "enabled") != true {
		t.Errorf("ttl = %v, want expires_at enabled", in["ttl"])
	}
	if get(in, "pointInTimeRecovery", "enabled") != true {
		t.Errorf("point-in-time recovery = %v", in["pointInTimeRecovery"])
	}
	if get(in, "serverSideEncryption", "enabled") != true {
		t.Errorf("server-side encryption = %v", in["serverSideEncryption"])
	}
	if in["billingMode"] != "PAY_PER_REQUEST" {
		t.Errorf("billing = %v, want PAY_PER_REQUEST", in["billingMode"])
	}
	if in["deletionProtectionEnabled"] != true {
		t.Errorf("deletion protection = %v, want on unless forceDestroy", in["deletionProtectionEnabled"])
	}
}

func TestInterruptionEventsReachTheQueue(t *testing.T) {
	m := mustRun(t, nil)
	rules := map[string]map[string]any{} // rule ARN -> pattern
	ruleOf := map[string]string{}        // rule ARN -> logical name
	for _, r := range m.ofType(tEventRule) {
		var p map[string]any
		if err := json.Unmarshal([]byte(r.Inputs["eventPattern"].(string)), &p); err != nil {
			t.Fatalf("rule %s pattern: %v", r.Name, err)
		}
		arn := r.Outputs["arn"].(string)
		rules[arn], ruleOf[arn] = p, r.Name
	}
	if len(rules) != 3 {
		t.Fatalf("want 3 rules, got %v", m.names(tEventRule))
	}
	fixtures := map[string][]string{ // fixture -> the rules it must match
		"spot-interruption-warning.json":        {"spot-interruption"},
		"rebalance-recommendation.json":         {"rebalance-recommendation"},
		"instance-state-change-terminated.json": {"instance-state-change"},
		"instance-state-change-pending.json":    nil,
		"spot-request-fulfillment.json":         nil,
	}
	for file, want := range fixtures {
		raw, err := os.ReadFile(filepath.Join("testdata", "events", file))
		if err != nil {
			t.Fatal(err)
		}
		event := decode(t, string(raw))
		var got []string
		for arn, p := range rules {
			ok, err := matchPattern(p, event)
			if err != nil {
				t.Fatalf("rule %s: %v", ruleOf[arn], err)
			}
			if ok {
				got = append(got, ruleOf[arn])
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s matched %v, want %v", file, got, want)
		}
	}

	queue := m.one(t, tQueue, "interruptions")
	targets := m.ofType(tEventTarget)
	if len(targets) != 3 {
		t.Fatalf("want 3 targets, got %d", len(targets))
	}
	for _, tg := range targets {
		if tg.Inputs["arn"] != queue.Outputs["arn"] {
			t.Errorf("target %s sends to %v, want the interruption queue", tg.Name, tg.Inputs["arn"])
		}
	}
	qp := m.one(t, tQueuePolicy, "interruptions")
	if qp.Inputs["queueUrl"] != queue.Outputs["url"] {
		t.Errorf("queue policy on %v, want %v", qp.Inputs["queueUrl"], queue.Outputs["url"])
	}
	st := parsePolicy(t, qp.Inputs["policy"].(string))
	if len(st) != 1 {
		t.Fatalf("queue policy has %d statements, want 1", len(st))
	}
	var allowed []string
	for _, a := range asList(st[0].Condition["ArnEquals"]["aws:SourceArn"]) {
		allowed = append(allowed, a.(string))
	}
	slices.Sort(allowed)
	wantRules := slices.Sorted(func(yield func(string) bool) {
		for arn := range rules {
			if !yield(arn) {
				return
			}
		}
	})
	if !slices.Equal(allowed, wantRules) || !slices.Equal(st[0].Action, []string{"sqs:SendMessage"}) ||
		!reflect.DeepEqual(st[0].Principal, map[string]any{"Service": "events.amazonaws.com"}) {
		t.Errorf("queue policy = %+v, want SendMessage from exactly the rules %v", st[0], wantRules)
	}
	if queue.Inputs["sqsManagedSseEnabled"] != true {
		t.Error("queue is not encrypted")
	}
}

func TestSecrets(t *testing.T) {
	m := mustRun(t, nil)
	versions := m.ofType(tSecretVersion)
	if len(versions) != 1 || versions[0].Name != "k3s-token" || versions[0].Inputs["secretString"] != mockPassword {
		t.Fatalf("secret versions = %v, want only the generated K3s token", versions)
	}
	if len(m.ofType(tSecretRotation)) != 0 {
		t.Error("rotation without a rotation function")
	}
	if got := m.names(tSecret); !slices.Equal(got, []string{"k3s-token", "slack-webhook-url"}) {
		t.Errorf("secrets = %v", got)
	}

	m = mustRun(t, everything)
	rot := m.one(t, tSecretRotation, "k3s-token")
	if get(rot.Inputs, "rotationRules", "automaticallyAfterDays") != 90.0 ||
		rot.Inputs["rotationLambdaArn"] != everything["k3sTokenRotationLambdaArn"] ||
		rot.Inputs["secretId"] != "k3s-token-id" {
		t.Errorf("rotation = %v, want every 90 days with the configured function", rot.Inputs)
	}
	slack := m.one(t, tSecretVersion, "slack-webhook-url")
	if slack.Inputs["secretString"] != everything["slackWebhookUrl"] {
		t.Errorf("slack secret = %v", slack.Inputs["secretString"])
	}
}

func TestNotificationsRegistryAlarmsTrail(t *testing.T) {
	m := mustRun(t, everything)
	topic := m.one(t, tTopic, "alerts")
	sub := m.one(t, tSubscription, "alerts-email")
	if sub.Inputs["protocol"] != "email" || sub.Inputs["endpoint"] != "oncall@example.com" || sub.Inputs["topic"] != topic.Outputs["arn"] {
		t.Errorf("subscription = %v", sub.Inputs)
	}
	for _, r := range m.ofType(tRepository) {
		if get(r.Inputs, "imageScanningConfiguration", "scanOnPush") != true || r.Inputs["imageTagMutability"] != "IMMUTABLE" {
			t.Errorf("repository %s = %v", r.Name, r.Inputs)
		}
	}
	if got := m.names(tRepository); !slices.Equal(got, []string{"demo-app", "smartscale"}) {
		t.Errorf("repositories = %v", got)
	}
	lg := m.one(t, tLogGroup, "smartscale")
	if lg.Inputs["retentionInDays"] != 30.0 {
		t.Errorf("log retention = %v, want 30 days", lg.Inputs["retentionInDays"])
	}
	alarms := map[string]map[string]any{}
	for _, a := range m.ofType(tAlarm) {
		alarms[a.Name] = a.Inputs
		if !slices.Equal(asList(a.Inputs["alarmActions"]), []any{topic.Outputs["arn"]}) || a.Inputs["namespace"] != defaultMetricNamespace {
			t.Errorf("alarm %s = %v, want SmartScale metrics alarming to the topic", a.Name, a.Inputs)
		}
	}
	for name, metric := range map[string]string{"scaling-failures": "ScalingFailures", "cluster-cpu-overload": "ClusterCPUUtilization", "at-max-capacity": "NodeCount"} {
		if alarms[name]["metricName"] != metric {
			t.Errorf("alarm %s watches %v, want %s", name, alarms[name]["metricName"], metric)
		}
	}
	if alarms["at-max-capacity"]["threshold"] != 10.0 {
		t.Errorf("at-max-capacity threshold = %v, want maxNodes 10", alarms["at-max-capacity"]["threshold"])
	}
	trail := m.one(t, tTrail, "trail")
	if trail.Inputs["isMultiRegionTrail"] != true || trail.Inputs["enableLogFileValidation"] != true {
		t.Errorf("trail = %v", trail.Inputs)
	}
	bp := parsePolicy(t, m.one(t, tBucketPolicy, "trail").Inputs["policy"].(string))
	wantTrail := "arn:aws:cloudtrail:us-east-1:123456789012:trail/smartscale-test"
	for _, st := range bp {
		if st.Effect == "Allow" && st.Condition["StringEquals"]["aws:SourceArn"] != wantTrail {
			t.Errorf("bucket statement %s not limited to the trail: %v", st.Sid, st.Condition)
		}
	}

	off := mustRun(t, map[string]string{"enableCloudTrail": "false"})
	if n := len(off.ofType(tTrail)); n != 0 {
		t.Errorf("enableCloudTrail=false still creates %d trails", n)
	}
}

func TestConfigValidation(t *testing.T) {
	for key, bad := range map[string]string{
		"clusterId":                 "Prod_Cluster",
		"nodeGroup":                 "workers group",
		"workerInstanceType":        "small",
		"vpcCidr":                   "10.40.0.0/12",
		"k3sVersion":                "latest",
		"alertEmail":                "nobody",
		"k3sTokenRotationLambdaArn": "rotate-me",
		"workerVolumeSize":          "4",
		"amiParameter":              "ami-123",
		"maxNodes":                  "ten",
		"enableCloudTrail":          "maybe",
		"sshCidr":                   "10.0.0.1/24",
		"cloudwatchNamespace":       "AWS/EC2",
	} {
		r := runStack(t, map[string]string{key: bad})
		if r.err == nil || !strings.Contains(r.err.Error(), "smartscale:"+key) {
			t.Errorf("%s=%q: err = %v, want a refusal naming smartscale:%s", key, bad, r.err, key)
		}
	}
}

func TestSubnetCIDR(t *testing.T) {
	vpc := netip.MustParsePrefix("10.40.0.0/16")
	for i, want := range map[int]string{0: "10.40.0.0/20", 1: "10.40.16.0/20", 8: "10.40.128.0/20", 15: "10.40.240.0/20"} {
		got, err := subnetCIDR(vpc, i)
		if err != nil || got.String() != want {
			t.Errorf("block %d = %v (%v), want %s", i, got, err, want)
		}
	}
	if got, _ := subnetCIDR(netip.MustParsePrefix("192.168.8.0/24"), 9); got.String() != "192.168.8.144/28" {
		t.Errorf("/24 block 9 = %v, want 192.168.8.144/28", got)
	}
	if _, err := subnetCIDR(vpc, 16); err == nil {
		t.Error("block 16 of 16 accepted")
	}
}

func TestPulumiProjectNameIsTheConfigNamespace(t *testing.T) {
	raw, err := os.ReadFile("Pulumi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "name: "+configNamespace+"\n") {
		t.Errorf("Pulumi.yaml does not name the project %q, the namespace config keys are read from", configNamespace)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// The committed example stack file must deploy as it is.
func TestExampleStackConfig(t *testing.T) {
	raw, err := os.ReadFile("Pulumi.dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	region, _ := file.Config["aws:region"].(string)
	cfg := map[string]string{}
	for k, v := range file.Config {
		key, ok := strings.CutPrefix(k, configNamespace+":")
		if !ok {
			continue
		}
		switch x := v.(type) {
		case string:
			cfg[key] = x
		case []any:
			b, _ := json.Marshal(x)
			cfg[key] = string(b)
		default:
			cfg[key] = fmt.Sprint(x)
		}
	}
	if len(cfg) < 5 || region == "" {
		t.Fatalf("example config has %d keys and region %q", len(cfg), region)
	}
	r := runStackIn(t, region, []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"}, cfg)
	if r.err != nil {
		t.Fatalf("Pulumi.dev.yaml does not deploy: %v", r.err)
	}
	if tbl := r.one(t, tTable, "state"); tbl.Inputs["name"] != "smartscale-dev-state" || tbl.Inputs["deletionProtectionEnabled"] != false {
		t.Errorf("table = %v/%v, want smartscale-dev-state without deletion protection (forceDestroy)", tbl.Inputs["name"], tbl.Inputs["deletionProtectionEnabled"])
	}
}

// smartscale:cloudwatchNamespace moves the webhook's PutMetricData grant,
// the alarms and the export together: the sink publishes where the alarms
// look, and nowhere else.
func TestCloudWatchNamespaceIsConfigurable(t *testing.T) {
	const ns = "Platform/SmartScale prod"
	r := mustRunStack(t, map[string]string{"cloudwatchNamespace": ns})
	sts := parsePolicy(t, r.one(t, tRolePolicy, "webhook").Inputs["policy"].(string))
	put := statementsWith(sts, "cloudwatch:PutMetricData")
	if len(put) != 1 || put[0].Condition["StringEquals"]["cloudwatch:namespace"] != ns {
		t.Errorf("PutMetricData statements %+v, want one conditioned on cloudwatch:namespace = %q", put, ns)
	}
	alarms := r.ofType(tAlarm)
	if len(alarms) == 0 {
		t.Fatal("no alarms")
	}
	for _, a := range alarms {
		if a.Inputs["namespace"] != ns {
			t.Errorf("alarm %s reads namespace %v, want %q", a.Name, a.Inputs["namespace"], ns)
		}
	}
	if got := r.outputs["cloudwatchNamespace"]; got != ns {
		t.Errorf("output cloudwatchNamespace = %v, want %q", got, ns)
	}
	for _, name := range []string{"node", "master"} {
		if n := len(statementsWith(parsePolicy(t, r.one(t, tRolePolicy, name).Inputs["policy"].(string)), "cloudwatch:PutMetricData")); n != 0 {
			t.Errorf("the %s role may put metrics", name)
		}
	}
}

// The exports point at the resources SmartScale and the chart need, and
// smartscaleConfig has the shape of SmartScale's config file.
func TestExports(t *testing.T) {
	r := mustRunStack(t, nil)
	out := r.outputs
	if out == nil {
		t.Fatal("no outputs resolved")
	}
	queue := r.one(t, tQueue, "interruptions").Outputs
	want := map[string]any{
		"clusterId":            "test",
		"region":               "us-east-1",
		"masterPrivateIp":      "10.40.128.10",
		"masterInstanceId":     "master-id",
		"vpcId":                "vpc-id",
		"launchTemplateId":     "workers-id",
		"stateTableName":       "smartscale-test-state",
		"interruptionQueueUrl": queue["url"],
		"alertTopicArn":        r.one(t, tTopic, "alerts").Outputs["arn"],
		"webhookRoleArn":       r.one(t, tRole, "webhook").Outputs["arn"],
		"k3sTokenSecretArn":    r.one(t, tSecret, "k3s-token").Outputs["arn"],
		"logGroupName":         "/smartscale/test",
		"nodeGroup":            "workers",
		"cloudwatchNamespace":  defaultMetricNamespace,
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("output %s = %v, want %v", k, out[k], v)
		}
	}
	subnets := map[string]any{"us-east-1a": "private-us-east-1a-id", "us-east-1b": "private-us-east-1b-id"}
	if !reflect.DeepEqual(out["subnetsByZone"], subnets) {
		t.Errorf("subnetsByZone = %v, want %v", out["subnetsByZone"], subnets)
	}
	if !reflect.DeepEqual(out["privateSubnetIds"], []any{"private-us-east-1a-id", "private-us-east-1b-id"}) {
		t.Errorf("privateSubnetIds = %v", out["privateSubnetIds"])
	}
	if u := get(out, "ecrRepositoryUrls", "smartscale"); u != "123456789012.dkr.ecr.us-east-1.amazonaws.com/test/smartscale" {
		t.Errorf("ecrRepositoryUrls.smartscale = %v", u)
	}
	cfg := out["smartscaleConfig"]
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"clusterID"}, "test"},
		{[]any{"state", "backend"}, "dynamodb"},
		{[]any{"state", "dynamodb", "table"}, "smartscale-test-state"},
		{[]any{"state", "dynamodb", "region"}, "us-east-1"},
		{[]any{"cloud", "provider"}, "aws"},
		{[]any{"cloud", "aws", "region"}, "us-east-1"},
		{[]any{"cloud", "aws", "launchTemplateID"}, "workers-id"},
		{[]any{"cloud", "aws", "interruptionQueueURL"}, queue["url"]},
		{[]any{"cloud", "aws", "subnets", "us-east-1b"}, "private-us-east-1b-id"},
		{[]any{"notify", "sns", "topicARN"}, want["alertTopicArn"]},
	} {
		if got := get(cfg, c.path...); got != c.want {
			t.Errorf("smartscaleConfig%v = %v, want %v", c.path, got, c.want)
		}
	}
}
