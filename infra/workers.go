package main

import (
	"encoding/base64"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// workerInputs are what the worker launch template is built from.
type workerInputs struct {
	AMIID          string
	Region         string
	SecurityGroup  *ec2.SecurityGroup
	ProfileARN     pulumi.StringOutput
	TokenSecretARN pulumi.StringOutput
	LogGroup       pulumi.StringOutput
}

// rootDevice is the root volume name of Amazon Linux 2023 AMIs.
const rootDevice = "/dev/xvda"

// newWorkerTemplate is the launch template SmartScale's CreateFleet calls
// use; SmartScale overrides only the subnet (zone) and the instance type.
func newWorkerTemplate(ctx *pulumi.Context, s settings, in workerInputs) (*ec2.LaunchTemplate, error) {
	userData := pulumi.All(in.TokenSecretARN, in.LogGroup).ApplyT(func(v []any) (string, error) {
		script, err := renderUserData(agentTemplate, bootstrap{
			Region:                       in.Region,
			ClusterID:                    s.ClusterID,
			NodeGroup:                    s.NodeGroup,
			TokenSecretID:                v[0].(string),
			K3sVersion:                   s.K3sVersion,
			MasterRoleTag:                masterRoleTag,
			ECRCredentialProviderVersion: s.ECRCredentialProviderVersion,
			LogGroup:                     v[1].(string),
		})
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString([]byte(script)), nil
	}).(pulumi.StringOutput)

	var tagSpecs ec2.LaunchTemplateTagSpecificationArray
	for _, kind := range []string{"instance", "volume", "network-interface"} {
		tagSpecs = append(tagSpecs, &ec2.LaunchTemplateTagSpecificationArgs{
			ResourceType: pulumi.String(kind),
			Tags:         s.workerTags(),
		})
	}
	args := &ec2.LaunchTemplateArgs{
		NamePrefix:   pulumi.String("smartscale-" + s.ClusterID + "-" + s.NodeGroup + "-"),
		Description:  pulumi.String("SmartScale node group " + s.NodeGroup + " of cluster " + s.ClusterID),
		ImageId:      pulumi.String(in.AMIID),
		InstanceType: pulumi.String(s.WorkerInstanceType),
		IamInstanceProfile: &ec2.LaunchTemplateIamInstanceProfileArgs{
			Arn: in.ProfileARN,
		},
		VpcSecurityGroupIds: pulumi.StringArray{in.SecurityGroup.ID()},
		BlockDeviceMappings: ec2.LaunchTemplateBlockDeviceMappingArray{
			&ec2.LaunchTemplateBlockDeviceMappingArgs{
				DeviceName: pulumi.String(rootDevice),
				Ebs: &ec2.LaunchTemplateBlockDeviceMappingEbsArgs{
					VolumeType:          pulumi.String("gp3"),
					VolumeSize:          pulumi.Int(s.WorkerVolumeGiB),
					Iops:                pulumi.Int(3000), // gp3 baseline, free
					Throughput:          pulumi.Int(125),  // MiB/s, gp3 baseline, free
					Encrypted:           pulumi.String("true"),
					DeleteOnTermination: pulumi.String("true"),
				},
			},
		},
		MetadataOptions: &ec2.LaunchTemplateMetadataOptionsArgs{
			HttpEndpoint: pulumi.String("enabled"),
			HttpTokens:   pulumi.String("required"),
			// 1 hop: pods (one network hop away) cannot fetch the node's
			// credentials; only the host can.
			HttpPutResponseHopLimit: pulumi.Int(1),
		},
		// standard: a throttled t3 shows steal time, which the CPU rules
		// count as busy, so SmartScale adds a node; unlimited would instead
		// bill surplus credits (~$0.05 per vCPU-hour, more than a t3.small).
		CreditSpecification: &ec2.LaunchTemplateCreditSpecificationArgs{
			CpuCredits: pulumi.String(s.CPUCredits),
		},
		TagSpecifications:    tagSpecs,
		UserData:             userData,
		UpdateDefaultVersion: pulumi.Bool(true),
		Tags:                 s.tags("workers"),
	}
	if s.SSHKeyName != "" {
		args.KeyName = pulumi.String(s.SSHKeyName)
	}
	lt, err := ec2.NewLaunchTemplate(ctx, "workers", args)
	if err != nil {
		return nil, fmt.Errorf("worker launch template: %w", err)
	}
	return lt, nil
}
