package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dynamodb"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The state table's schema (ARCHITECTURE.md "DynamoDB state"): every item of
// a cluster shares pk = cluster#<id>; sk names the item (lock#, group#,
// dedupe#, op#). Dedupe keys expire through TTL on expires_at.
const (
	tablePartitionKey = "pk"
	tableSortKey      = "sk"
	tableTTLAttribute = "expires_at"
)

func newStateTable(ctx *pulumi.Context, s settings) (*dynamodb.Table, error) {
	t, err := dynamodb.NewTable(ctx, "state", &dynamodb.TableArgs{
		Name: pulumi.String("smartscale-" + s.ClusterID + "-state"),
		Attributes: dynamodb.TableAttributeArray{
			&dynamodb.TableAttributeArgs{Name: pulumi.String(tablePartitionKey), Type: pulumi.String("S")},
			&dynamodb.TableAttributeArgs{Name: pulumi.String(tableSortKey), Type: pulumi.String("S")},
		},
		HashKey:  pulumi.String(tablePartitionKey),
		RangeKey: pulumi.String(tableSortKey),
		// A few writes a minute with bursts during scaling: on demand costs
		// cents and never throttles a lock.
		BillingMode: pulumi.String("PAY_PER_REQUEST"),
		Ttl: &dynamodb.TableTtlArgs{
			AttributeName: pulumi.String(tableTTLAttribute),
			Enabled:       pulumi.Bool(true),
		},
		PointInTimeRecovery: &dynamodb.TablePointInTimeRecoveryArgs{Enabled: pulumi.Bool(true)},
		// KMS encryption with the account's aws/dynamodb key (enabled=false
		// would mean the AWS-owned key, invisible to the account's audit).
		ServerSideEncryption:      &dynamodb.TableServerSideEncryptionArgs{Enabled: pulumi.Bool(true)},
		DeletionProtectionEnabled: pulumi.Bool(!s.ForceDestroy),
		Tags:                      s.tags("state"),
	})
	if err != nil {
		return nil, fmt.Errorf("state table: %w", err)
	}
	return t, nil
}
