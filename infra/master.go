package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// masterInputs are what the K3s server instance is built from.
type masterInputs struct {
	AMIID          string
	Region         string
	Subnet         *ec2.Subnet
	SecurityGroup  *ec2.SecurityGroup
	Profile        pulumi.StringOutput // instance profile name
	TokenSecretARN pulumi.StringOutput
	LogGroup       pulumi.StringOutput
}

// newMaster creates the K3s server in the first zone's private subnet,
// tagged Role=k3s-master so agents find it.
func newMaster(ctx *pulumi.Context, s settings, in masterInputs) (*ec2.Instance, error) {
	userData := pulumi.All(in.TokenSecretARN, in.LogGroup).ApplyT(func(v []any) (string, error) {
		return renderUserData(serverTemplate, bootstrap{
			Region:                       in.Region,
			ClusterID:                    s.ClusterID,
			NodeGroup:                    "master",
			TokenSecretID:                v[0].(string),
			K3sVersion:                   s.K3sVersion,
			MasterRoleTag:                masterRoleTag,
			ECRCredentialProviderVersion: s.ECRCredentialProviderVersion,
			LogGroup:                     v[1].(string),
		})
	}).(pulumi.StringOutput)

	args := &ec2.InstanceArgs{
		Ami:                 pulumi.String(in.AMIID),
		InstanceType:        pulumi.String(s.MasterInstanceType),
		SubnetId:            in.Subnet.ID(),
		VpcSecurityGroupIds: pulumi.StringArray{in.SecurityGroup.ID()},
		IamInstanceProfile:  in.Profile,
		RootBlockDevice: &ec2.InstanceRootBlockDeviceArgs{
			VolumeType:          pulumi.String("gp3"),
			VolumeSize:          pulumi.Int(s.MasterVolumeGiB),
			Encrypted:           pulumi.Bool(true),
			DeleteOnTermination: pulumi.Bool(true),
		},
		MetadataOptions: &ec2.InstanceMetadataOptionsArgs{
			HttpEndpoint: pulumi.String("enabled"),
			HttpTokens:   pulumi.String("required"),
			// 2 hops: SmartScale's pods on the master use its instance
			// profile to assume the webhook role.
			HttpPutResponseHopLimit: pulumi.Int(2),
		},
		CreditSpecification: &ec2.InstanceCreditSpecificationArgs{CpuCredits: pulumi.String(s.CPUCredits)},
		UserData:            userData,
		VolumeTags:          s.tags("master"),
		Tags:                withTag(s.tags("master"), "Role", masterRoleTag),
	}
	if s.SSHKeyName != "" {
		args.KeyName = pulumi.String(s.SSHKeyName)
	}
	// A newer AMI or a changed script must not replace the control plane:
	// user data only runs at first boot. Replace the master deliberately
	// (pulumi up --replace) when that is wanted.
	master, err := ec2.NewInstance(ctx, "master", args, pulumi.IgnoreChanges([]string{"ami", "userData"}))
	if err != nil {
		return nil, fmt.Errorf("master: %w", err)
	}
	return master, nil
}
