package dynamo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/state"
)

// NewClient builds a DynamoDB client with the default credential chain in
// cfg.Region. With cfg.Endpoint set (dynalite, DynamoDB Local) and no
// AWS_ACCESS_KEY_ID in the environment it signs with fixed local
// credentials instead: local servers do not check them, and the chain would
// otherwise wait on the EC2 metadata service off EC2.
func NewClient(ctx context.Context, cfg config.DynamoDB) (*dynamodb.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if cfg.Endpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	}), nil
}

// Open returns a store on the table cfg names, for cluster clusterID.
func Open(ctx context.Context, cfg config.DynamoDB, clusterID string, opts state.Options) (*Store, error) {
	client, err := NewClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return New(client, cfg.Table, clusterID, cfg.Timeout.D(), opts), nil
}

// TableAPI is the part of the client CreateTable uses.
type TableAPI interface {
	dynamodb.DescribeTableAPIClient
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// ErrTTLUnsupported: the endpoint does not implement UpdateTimeToLive
// (dynalite). The table works; expired items are only ignored, not deleted.
var ErrTTLUnsupported = errors.New("endpoint does not support UpdateTimeToLive")

// Setup is what CreateTable did.
type Setup struct {
	Created    bool // false: the table already existed
	TTLEnabled bool // TTL on expires_at is enabled (or being enabled)
}

// CreateTable creates the state table for local and test use (production
// tables come from infra/): on-demand billing, server-side encryption, key
// pk/sk, and TTL on expires_at. It is idempotent: an existing table is
// waited for and only its TTL setting is ensured. When the endpoint cannot
// enable TTL the error wraps ErrTTLUnsupported and Setup still says what
// was done.
func CreateTable(ctx context.Context, api TableAPI, table string, wait time.Duration) (Setup, error) {
	var setup Setup
	_, err := api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &table,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		SSESpecification: &types.SSESpecification{Enabled: aws.Bool(true)},
	})
	var inUse *types.ResourceInUseException
	switch {
	case err == nil:
		setup.Created = true
	case errors.As(err, &inUse):
	default:
		return setup, fmt.Errorf("create table %s: %w", table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(api, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	}).Wait(ctx, &dynamodb.DescribeTableInput{TableName: &table}, wait); err != nil {
		return setup, fmt.Errorf("wait for table %s: %w", table, err)
	}

	ttl, err := api.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		return setup, fmt.Errorf("describe TTL of %s: %w", table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == attrExpiresAt &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		setup.TTLEnabled = true
		return setup, nil
	}
	_, err = api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrExpiresAt), Enabled: aws.Bool(true),
		},
	})
	var api2 smithy.APIError
	if errors.As(err, &api2) && api2.ErrorCode() == "UnknownOperationException" {
		return setup, fmt.Errorf("enable TTL on %s: %w", table, ErrTTLUnsupported)
	}
	if err != nil {
		return setup, fmt.Errorf("enable TTL on %s: %w", table, err)
	}
	setup.TTLEnabled = true
	return setup, nil
}
