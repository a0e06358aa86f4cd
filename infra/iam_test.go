package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// stmt is a policy statement as AWS reads it: Action and Resource may be a
// string or a list.
type stmt struct {
	Sid         string
	Effect      string
	Principal   any
	Action      []string
	Resource    []string
	NotAction   any
	NotResource any
	Condition   map[string]map[string]any
}

func parsePolicy(t *testing.T, doc string) []stmt {
	t.Helper()
	var raw struct {
		Version   string
		Statement []map[string]any
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil {
		t.Fatalf("policy %s: %v", doc, err)
	}
	if raw.Version != "2012-10-17" {
		t.Errorf("policy version %q, want 2012-10-17", raw.Version)
	}
	var out []stmt
	for _, s := range raw.Statement {
		st := stmt{Principal: s["Principal"], NotAction: s["NotAction"], NotResource: s["NotResource"]}
		st.Sid, _ = s["Sid"].(string)
		st.Effect, _ = s["Effect"].(string)
		st.Action = strings1(s["Action"])
		st.Resource = strings1(s["Resource"])
		if c, ok := s["Condition"].(map[string]any); ok {
			st.Condition = map[string]map[string]any{}
			for op, kv := range c {
				st.Condition[op], _ = kv.(map[string]any)
			}
		}
		out = append(out, st)
	}
	return out
}

// strings1 reads a string-or-list field.
func strings1(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// readOnly reports whether an action only reads (IAM's "List" and "Read"
// access levels for the verbs this stack uses).
func readOnly(action string) bool {
	_, verb, _ := strings.Cut(action, ":")
	for _, p := range []string{"Describe", "Get", "List", "BatchGet", "BatchCheck", "Query", "Scan"} {
		if strings.HasPrefix(verb, p) {
			return true
		}
	}
	return false
}

// policies returns every policy document the stack deploys, by owner.
func policies(t *testing.T, m *mocks) map[string][]stmt {
	t.Helper()
	out := map[string][]stmt{}
	fields := map[string]string{
		tRolePolicy:                       "policy",
		"aws:iam/policy:Policy":           "policy",
		tRole:                             "assumeRolePolicy",
		tQueuePolicy:                      "policy",
		tQueue:                            "policy",
		tBucketPolicy:                     "policy",
		"aws:sns/topicPolicy:TopicPolicy": "policy",
		"aws:ecr/repositoryPolicy:RepositoryPolicy":    "policy",
		"aws:secretsmanager/secretPolicy:SecretPolicy": "policy",
		"aws:cloudwatch/eventBusPolicy:EventBusPolicy": "policy",
	}
	for _, r := range m.resources {
		field, ok := fields[r.Type]
		if !ok {
			continue
		}
		doc, ok := r.Inputs[field].(string)
		if !ok {
			continue
		}
		out[r.Type+" "+r.Name] = parsePolicy(t, doc)
	}
	return out
}

func TestNoWildcardWrites(t *testing.T) {
	m := mustRun(t, everything)
	docs := policies(t, m)
	roles := 0
	for owner, statements := range docs {
		if strings.HasPrefix(owner, tRolePolicy) {
			roles++
		}
		for _, st := range statements {
			if st.Effect != "Allow" {
				continue // a Deny may be as wide as it likes
			}
			if st.NotAction != nil || st.NotResource != nil {
				t.Errorf("%s %s: NotAction/NotResource allow more than they say", owner, st.Sid)
			}
			for _, a := range st.Action {
				if a == "*" || strings.HasSuffix(a, ":*") {
					t.Errorf("%s %s: action %q", owner, st.Sid, a)
				}
			}
			if slices.Contains(st.Resource, "*") {
				for _, a := range st.Action {
					if !readOnly(a) && !pinnedByCondition(st, a) {
						t.Errorf(`%s %s: write action %s on "Resource": "*"`, owner, st.Sid, a)
					}
				}
			}
			for _, r := range st.Resource {
				if r != "*" && !strings.HasPrefix(r, "arn:aws:") {
					t.Errorf("%s %s: resource %q is not an ARN", owner, st.Sid, r)
				}
			}
		}
	}
	if roles != 3 {
		t.Errorf("found %d role policies, want webhook, node and master: %v", roles, keys(docs))
	}
	// AWS managed policies would bring their own wildcards.
	for _, r := range m.resources {
		if r.Type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment" || r.Type == "aws:iam/policyAttachment:PolicyAttachment" ||
			len(asList(r.Inputs["managedPolicyArns"])) > 0 {
			t.Errorf("%s %s attaches a managed policy", r.Type, r.Name)
		}
	}
}

// conditionScoped lists write actions that have no resource type (so
// "Resource": "*" is the only way to grant them) but a condition key that
// narrows them as a resource would.
var conditionScoped = map[string]string{
	"cloudwatch:PutMetricData": "cloudwatch:namespace",
}

// pinnedByCondition reports whether st grants action only under an exact
// StringEquals on the action's scoping key (no wildcard, no list).
func pinnedByCondition(st stmt, action string) bool {
	key, ok := conditionScoped[action]
	if !ok {
		return false
	}
	v, ok := st.Condition["StringEquals"][key].(string)
	return ok && v != "" && !strings.ContainsAny(v, "*?")
}

// statementsWith returns the Allow statements of a policy that grant action.
func statementsWith(sts []stmt, action string) []stmt {
	var out []stmt
	for _, st := range sts {
		if st.Effect == "Allow" && slices.Contains(st.Action, action) {
			out = append(out, st)
		}
	}
	return out
}

// resourcesFor returns every resource any statement grants action on.
func resourcesFor(sts []stmt, action string) []string {
	var out []string
	for _, st := range statementsWith(sts, action) {
		out = append(out, st.Resource...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestWebhookPolicy(t *testing.T) {
	m := mustRun(t, nil)
	webhookRole := m.one(t, tRole, "webhook")
	rp := m.one(t, tRolePolicy, "webhook")
	if rp.Inputs["role"] != webhookRole.Outputs["name"] {
		t.Fatalf("webhook policy is on role %v", rp.Inputs["role"])
	}
	sts := parsePolicy(t, rp.Inputs["policy"].(string))
	const ec2ARN = "arn:aws:ec2:us-east-1:123456789012:"
	lt := ec2ARN + "launch-template/" + m.one(t, tLaunchTemplate, "workers").Name + "-id"

	// Terminate: only instances tagged ManagedBy=smartscale.
	term := statementsWith(sts, "ec2:TerminateInstances")
	if len(term) == 0 {
		t.Fatal("the webhook cannot terminate anything")
	}
	for _, st := range term {
		if st.Condition["StringEquals"]["ec2:ResourceTag/ManagedBy"] != "smartscale" {
			t.Errorf("terminate statement %s lacks the ManagedBy=smartscale condition: %v", st.Sid, st.Condition)
		}
		if !slices.Equal(st.Resource, []string{ec2ARN + "instance/*"}) {
			t.Errorf("terminate statement %s on %v, want instances only", st.Sid, st.Resource)
		}
	}

	// Launch: the only launch template is ours, and every instance a
	// RunInstances creates (directly or for a fleet) must come from it.
	for _, action := range []string{"ec2:RunInstances", "ec2:CreateFleet"} {
		for _, r := range resourcesFor(sts, action) {
			if strings.Contains(r, ":launch-template/") && r != lt {
				t.Errorf("%s allowed with launch template %s, want only %s", action, r, lt)
			}
		}
		if !slices.Contains(resourcesFor(sts, action), lt) {
			t.Errorf("%s not allowed with the worker template %s", action, lt)
		}
	}
	for _, st := range statementsWith(sts, "ec2:RunInstances") {
		if slices.Contains(st.Resource, ec2ARN+"instance/*") {
			if st.Condition["ArnEquals"]["ec2:LaunchTemplate"] != lt {
				t.Errorf("RunInstances %s creates instances without requiring the worker template: %v", st.Sid, st.Condition)
			}
			if st.Condition["StringEquals"]["aws:RequestTag/ManagedBy"] != "smartscale" {
				t.Errorf("RunInstances %s creates instances not tagged ManagedBy=smartscale: %v", st.Sid, st.Condition)
			}
		}
	}
	for _, r := range resourcesFor(sts, "ec2:RunInstances") {
		if strings.Contains(r, ":subnet/") && !strings.HasSuffix(r, "/private-us-east-1a-id") && !strings.HasSuffix(r, "/private-us-east-1b-id") {
			t.Errorf("RunInstances allowed into subnet %s, want the private subnets only", r)
		}
	}
	for _, st := range statementsWith(sts, "ec2:CreateTags") {
		if !slices.Equal(asStrings(st.Condition["StringEquals"]["ec2:CreateAction"]), []string{"CreateFleet", "RunInstances"}) {
			t.Errorf("CreateTags %s not limited to launches: %v", st.Sid, st.Condition)
		}
	}
	nodeRole := m.one(t, tRole, "node")
	for _, st := range statementsWith(sts, "iam:PassRole") {
		if !slices.Equal(st.Resource, []string{nodeRole.Outputs["arn"].(string)}) ||
			st.Condition["StringEquals"]["iam:PassedToService"] != "ec2.amazonaws.com" {
			t.Errorf("PassRole %s = %+v, want the node role to EC2 only", st.Sid, st)
		}
	}

	// Data: this table, queue, topic and secret only.
	only := map[string]string{
		"dynamodb:PutItem":              m.one(t, tTable, "state").Outputs["arn"].(string),
		"dynamodb:DeleteItem":           m.one(t, tTable, "state").Outputs["arn"].(string),
		"sqs:DeleteMessage":             m.one(t, tQueue, "interruptions").Outputs["arn"].(string),
		"sqs:ReceiveMessage":            m.one(t, tQueue, "interruptions").Outputs["arn"].(string),
		"sns:Publish":                   m.one(t, tTopic, "alerts").Outputs["arn"].(string),
		"secretsmanager:GetSecretValue": m.one(t, tSecret, "slack-webhook-url").Outputs["arn"].(string),
	}
	for action, arn := range only {
		if got := resourcesFor(sts, action); !slices.Equal(got, []string{arn}) {
			t.Errorf("%s on %v, want only %s", action, got, arn)
		}
	}

	// CloudWatch: PutMetricData into the configured namespace only, and no
	// log writing (the sink calls PutMetricData, not embedded-metric logs).
	put := statementsWith(sts, "cloudwatch:PutMetricData")
	if len(put) != 1 || !slices.Equal(put[0].Resource, []string{"*"}) ||
		put[0].Condition["StringEquals"]["cloudwatch:namespace"] != defaultMetricNamespace || len(put[0].Action) != 1 {
		t.Errorf("PutMetricData statements %+v, want one, on * with cloudwatch:namespace = %s", put, defaultMetricNamespace)
	}
	for _, action := range []string{"logs:PutLogEvents", "logs:CreateLogStream", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"} {
		if len(statementsWith(sts, action)) > 0 {
			t.Errorf("the webhook may %s", action)
		}
	}

	// The webhook role is assumable by the master's role and nobody else.
	trust := parsePolicy(t, webhookRole.Inputs["assumeRolePolicy"].(string))
	masterRole := m.one(t, tRole, "master")
	if len(trust) != 1 || get(trust[0].Principal, "AWS") != masterRole.Outputs["arn"] {
		t.Errorf("webhook trust = %+v, want the master role only", trust)
	}
}

func TestNodePolicies(t *testing.T) {
	m := mustRun(t, nil)
	token := m.one(t, tSecret, "k3s-token").Outputs["arn"].(string)
	webhook := m.one(t, tRole, "webhook").Outputs["arn"].(string)
	var repos []string
	for _, r := range m.ofType(tRepository) {
		repos = append(repos, r.Outputs["arn"].(string))
	}
	slices.Sort(repos)
	for _, name := range []string{"node", "master"} {
		sts := parsePolicy(t, m.one(t, tRolePolicy, name).Inputs["policy"].(string))
		if got := resourcesFor(sts, "secretsmanager:GetSecretValue"); !slices.Equal(got, []string{token}) {
			t.Errorf("%s reads secrets %v, want only the K3s token", name, got)
		}
		if got := resourcesFor(sts, "ecr:BatchGetImage"); !slices.Equal(got, repos) {
			t.Errorf("%s pulls from %v, want this stack's repositories %v", name, got, repos)
		}
		for _, forbidden := range []string{"ec2:RunInstances", "ec2:TerminateInstances", "dynamodb:PutItem", "sqs:DeleteMessage"} {
			if len(statementsWith(sts, forbidden)) > 0 {
				t.Errorf("%s role may %s", name, forbidden)
			}
		}
	}
	master := parsePolicy(t, m.one(t, tRolePolicy, "master").Inputs["policy"].(string))
	if got := resourcesFor(master, "sts:AssumeRole"); !slices.Equal(got, []string{webhook}) {
		t.Errorf("master assumes %v, want only the webhook role", got)
	}
	node := parsePolicy(t, m.one(t, tRolePolicy, "node").Inputs["policy"].(string))
	if len(statementsWith(node, "sts:AssumeRole")) > 0 {
		t.Error("worker nodes may assume the webhook role")
	}
}

func asStrings(v any) []string {
	out := strings1(v)
	slices.Sort(out)
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
