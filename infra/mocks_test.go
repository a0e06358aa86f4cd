package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Fixed answers of the mocked AWS account.
const (
	mockAccount  = "123456789012"
	mockAMI      = "ami-0a1b2c3d4e5f67890"
	mockPassword = "mockK3sToken0123456789abcdefghijklmnopqrstuvwxyz"
)

// registered is one resource the program created, with its inputs as plain
// Go values (secrets and known outputs unwrapped).
type registered struct {
	Type   string
	Name   string
	Inputs map[string]any
	// Outputs are what the mock answered: the inputs plus the computed
	// properties (arn, id, url...) other resources refer to.
	Outputs map[string]any
}

// mocks records every resource and answers the program's lookups the way
// the AWS provider would, for a fixed account and region. Unknown lookups
// fail, so a new data source is noticed and given a deliberate answer.
type mocks struct {
	region string
	zones  []string

	mu        sync.Mutex
	resources []registered
	calls     []pulumi.MockCallArgs
}

func newMocks(region string, zones ...string) *mocks {
	return &mocks{region: region, zones: zones}
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	name := args.Name
	if n, ok := args.Inputs["name"]; ok && n.IsString() && n.StringValue() != "" {
		name = n.StringValue()
	}
	id := args.Name + "-id"
	out := args.Inputs.Copy()
	set := func(k string, v any) {
		if _, ok := out[resource.PropertyKey(k)]; !ok {
			out[resource.PropertyKey(k)] = resource.NewPropertyValue(v)
		}
	}
	set("name", name)
	set("arn", m.arnFor(args.TypeToken, name, id))
	switch args.TypeToken {
	case "aws:sqs/queue:Queue":
		set("url", fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", m.region, mockAccount, name))
	case "aws:ecr/repository:Repository":
		set("repositoryUrl", fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com/%s", mockAccount, m.region, name))
	case "aws:ec2/instance:Instance":
		set("privateIp", "10.40.128.10")
	case "aws:s3/bucketV2:BucketV2":
		id = "smartscale-test-trail-20260101"
		out["arn"] = resource.NewPropertyValue("arn:aws:s3:::" + id)
	}
	m.mu.Lock()
	m.resources = append(m.resources, registered{
		Type: args.TypeToken, Name: args.Name,
		Inputs: plainMap(args.Inputs), Outputs: plainMap(out),
	})
	m.mu.Unlock()
	return id, out, nil
}

// arnFor makes an ARN of the right service for a resource type token
// ("aws:sqs/queue:Queue" -> arn:aws:sqs:...).
func (m *mocks) arnFor(token, name, id string) string {
	module := strings.SplitN(strings.TrimPrefix(token, "aws:"), "/", 2)[0]
	switch module {
	case "iam":
		return fmt.Sprintf("arn:aws:iam::%s:%s/%s", mockAccount, strings.ToLower(token[strings.LastIndex(token, ":")+1:]), name)
	case "sqs", "sns":
		return fmt.Sprintf("arn:aws:%s:%s:%s:%s", module, m.region, mockAccount, name)
	case "cloudwatch":
		if strings.HasSuffix(token, ":LogGroup") {
			return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s", m.region, mockAccount, name)
		}
		return fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", m.region, mockAccount, name)
	case "dynamodb":
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", m.region, mockAccount, name)
	case "secretsmanager":
		return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", m.region, mockAccount, name)
	case "ecr":
		return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", m.region, mockAccount, name)
	}
	return fmt.Sprintf("arn:aws:%s:%s:%s:%s/%s", module, m.region, mockAccount, strings.ToLower(token[strings.LastIndex(token, ":")+1:]), id)
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	m.mu.Lock()
	m.calls = append(m.calls, args)
	m.mu.Unlock()
	switch args.Token {
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.NewPropertyMapFromMap(map[string]any{
			"accountId": mockAccount, "id": mockAccount,
			"arn": "arn:aws:iam::" + mockAccount + ":user/deployer", "userId": "AIDAEXAMPLE",
		}), nil
	case "aws:index/getRegion:getRegion":
		return resource.NewPropertyMapFromMap(map[string]any{
			"name": m.region, "id": m.region, "endpoint": "ec2." + m.region + ".amazonaws.com",
			"description": "mock region",
		}), nil
	case "aws:index/getPartition:getPartition":
		return resource.NewPropertyMapFromMap(map[string]any{
			"partition": "aws", "id": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws",
		}), nil
	case "aws:index/getAvailabilityZones:getAvailabilityZones":
		var ids []any
		for i := range m.zones {
			ids = append(ids, fmt.Sprintf("use1-az%d", i+1))
		}
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": m.region, "names": toAny(m.zones), "zoneIds": ids, "groupNames": []any{m.region},
		}), nil
	case "aws:ssm/getParameter:getParameter":
		name := args.Args["name"].StringValue()
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": name, "name": name, "type": "String", "value": mockAMI, "insecureValue": mockAMI,
			"arn": "arn:aws:ssm:" + m.region + "::parameter" + name, "version": 42,
		}), nil
	case "aws:secretsmanager/getRandomPassword:getRandomPassword":
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": "random", "randomPassword": mockPassword,
		}), nil
	}
	return nil, fmt.Errorf("mock: unexpected lookup %s", args.Token)
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func plainMap(m resource.PropertyMap) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[string(k)] = plain(v)
	}
	return out
}

// plain turns a property value into JSON-like Go values.
func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		return plain(v.OutputValue().Element)
	case v.IsComputed():
		return "<computed>"
	case v.IsObject():
		return plainMap(v.ObjectValue())
	case v.IsArray():
		var out []any
		for _, e := range v.ArrayValue() {
			out = append(out, plain(e))
		}
		return out
	case v.IsNull():
		return nil
	}
	return v.V
}

// stackRun is one run of the program against the mocks.
type stackRun struct {
	*mocks
	err error
	// outputs are the stack outputs, resolved.
	outputs map[string]any
}

// runStack runs the real program (config loading included) with the given
// stack config keys (without the "smartscale:" namespace).
func runStack(t *testing.T, cfg map[string]string) stackRun {
	t.Helper()
	return runStackIn(t, "us-east-1", []string{"us-east-1a", "us-east-1b", "us-east-1c"}, cfg)
}

func runStackIn(t *testing.T, region string, zones []string, cfg map[string]string) stackRun {
	t.Helper()
	full := map[string]string{"aws:region": region}
	var secretKeys []string
	for k, v := range cfg {
		full[configNamespace+":"+k] = v
		if k == "slackWebhookUrl" {
			secretKeys = append(secretKeys, configNamespace+":"+k)
		}
	}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(pulumi.EnvConfig, string(b))
	sk, _ := json.Marshal(secretKeys)
	t.Setenv(pulumi.EnvConfigSecretKeys, string(sk))
	m := newMocks(region, zones...)
	run := stackRun{mocks: m}
	run.err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		s, err := loadSettings(ctx)
		if err != nil {
			return err
		}
		outputs, err := deploy(ctx, s)
		if err != nil {
			return err
		}
		// The run waits for this apply before it returns.
		outputs.ToMapOutput().ApplyT(func(v map[string]any) error {
			// Through JSON, as `pulumi stack output --json` shows them
			// (IDs become strings, typed maps plain ones).
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			return json.Unmarshal(b, &run.outputs)
		})
		return nil
	}, pulumi.WithMocks(configNamespace, "test", m))
	return run
}

// mustRun runs the stack and fails the test if the program failed.
func mustRun(t *testing.T, cfg map[string]string) *mocks {
	t.Helper()
	return mustRunStack(t, cfg).mocks
}

func mustRunStack(t *testing.T, cfg map[string]string) stackRun {
	t.Helper()
	r := runStack(t, cfg)
	if r.err != nil {
		t.Fatalf("program failed: %v", r.err)
	}
	return r
}

// ofType returns the recorded resources of one type token, in name order.
func (m *mocks) ofType(token string) []registered {
	var out []registered
	for _, r := range m.resources {
		if r.Type == token {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b registered) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// one returns the single resource of a type and name, failing the test if
// there is not exactly one.
func (m *mocks) one(t *testing.T, token, name string) registered {
	t.Helper()
	var found []registered
	for _, r := range m.ofType(token) {
		if r.Name == name {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s named %q, found %d (names: %v)", token, name, len(found), m.names(token))
	}
	return found[0]
}

func (m *mocks) names(token string) []string {
	var out []string
	for _, r := range m.ofType(token) {
		out = append(out, r.Name)
	}
	return out
}

func (m *mocks) types() []string {
	set := map[string]bool{}
	for _, r := range m.resources {
		set[r.Type] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// get walks a path of keys and indexes through plain values.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}
