package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/smartscale/smartscale/e2e/stack"
)

// TestStateInit creates the table on a real dynalite, twice.
func TestStateInit(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	st := stack.Start(t, stack.Options{Dynalite: true})
	cfg := writeFile(t, "clusterID: test\nstate:\n  backend: dynamodb\n  dynamodb:\n    table: smartscale-init\n    region: us-east-1\n    endpoint: "+st.DynamoEndpoint+"\n")

	out, err := run(t, "state", "init", "--config", cfg)
	if err != nil {
		t.Fatalf("state init: %v\n%s", err, out)
	}
	if !strings.Contains(out, "table smartscale-init") || !strings.Contains(out, ": created;") {
		t.Fatalf("state init output: %s", out)
	}
	desc, err := st.DynamoClient().DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String("smartscale-init")})
	if err != nil {
		t.Fatalf("table not created: %v", err)
	}
	if desc.Table.BillingModeSummary == nil || desc.Table.BillingModeSummary.BillingMode != "PAY_PER_REQUEST" {
		t.Fatalf("billing mode: %+v", desc.Table.BillingModeSummary)
	}

	out, err = run(t, "state", "init", "--config", cfg)
	if err != nil || !strings.Contains(out, ": already exists;") {
		t.Fatalf("second state init: %v\n%s", err, out)
	}

	// --table overrides the configuration.
	out, err = run(t, "state", "init", "--config", cfg, "--table", "other")
	if err != nil || !strings.Contains(out, "table other") {
		t.Fatalf("state init --table: %v\n%s", err, out)
	}
}

func TestStateInitRefusesMemoryBackend(t *testing.T) {
	cfg := writeFile(t, "clusterID: test\nstate:\n  backend: memory\n")
	if _, err := run(t, "state", "init", "--config", cfg); err == nil || !strings.Contains(err.Error(), "no table to create") {
		t.Fatalf("state init on a memory backend: %v", err)
	}
	if _, err := run(t, "state", "init"); err == nil || !strings.Contains(err.Error(), "--config is required") {
		t.Fatalf("state init without --config: %v", err)
	}
}
