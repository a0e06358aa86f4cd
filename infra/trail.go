package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudtrail"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const trailRetentionDays = 90

// newTrail records every API call in the account (who launched or
// terminated what) into an encrypted, private, TLS-only bucket.
func newTrail(ctx *pulumi.Context, s settings, a account) error {
	if !s.CloudTrail {
		return nil
	}
	bucket, err := s3.NewBucketV2(ctx, "trail", &s3.BucketV2Args{
		BucketPrefix: pulumi.String("smartscale-" + s.ClusterID + "-trail-"),
		ForceDestroy: pulumi.Bool(s.ForceDestroy),
		Tags:         s.tags("trail"),
	})
	if err != nil {
		return fmt.Errorf("trail bucket: %w", err)
	}
	private, err := s3.NewBucketPublicAccessBlock(ctx, "trail", &s3.BucketPublicAccessBlockArgs{
		Bucket:                bucket.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("trail bucket public access block: %w", err)
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, "trail", &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{
			&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
				ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
					SseAlgorithm: pulumi.String("AES256"),
				},
			},
		},
	}); err != nil {
		return fmt.Errorf("trail bucket encryption: %w", err)
	}
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, "trail", &s3.BucketLifecycleConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketLifecycleConfigurationV2RuleArray{
			&s3.BucketLifecycleConfigurationV2RuleArgs{
				Id:         pulumi.String(fmt.Sprintf("expire-after-%d-days", trailRetentionDays)),
				Status:     pulumi.String("Enabled"),
				Filter:     &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
				Expiration: &s3.BucketLifecycleConfigurationV2RuleExpirationArgs{Days: pulumi.Int(trailRetentionDays)},
			},
		},
	}); err != nil {
		return fmt.Errorf("trail bucket lifecycle: %w", err)
	}
	name := "smartscale-" + s.ClusterID
	trailARN := a.arn("cloudtrail", "trail/"+name)
	policy, err := s3.NewBucketPolicy(ctx, "trail", &s3.BucketPolicyArgs{
		Bucket: bucket.ID(),
		Policy: bucket.Arn.ApplyT(func(arn string) (string, error) {
			return trailBucketPolicy(a, arn, trailARN).JSON()
		}).(pulumi.StringOutput),
	}, pulumi.DependsOn([]pulumi.Resource{private}))
	if err != nil {
		return fmt.Errorf("trail bucket policy: %w", err)
	}
	if _, err := cloudtrail.NewTrail(ctx, "trail", &cloudtrail.TrailArgs{
		Name:                       pulumi.String(name),
		S3BucketName:               bucket.ID(),
		IsMultiRegionTrail:         pulumi.Bool(true),
		IncludeGlobalServiceEvents: pulumi.Bool(true),
		EnableLogFileValidation:    pulumi.Bool(true),
		EnableLogging:              pulumi.Bool(true),
		Tags:                       s.tags("trail"),
	}, pulumi.DependsOn([]pulumi.Resource{policy})); err != nil {
		return fmt.Errorf("trail: %w", err)
	}
	return nil
}
