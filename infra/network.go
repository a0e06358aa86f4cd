package main

import (
	"fmt"
	"net/netip"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// network is the VPC: a public and a private subnet per zone, one NAT gateway.
type network struct {
	VPC            *ec2.Vpc
	PublicSubnets  []*ec2.Subnet
	PrivateSubnets []*ec2.Subnet
	// Zones[i] is the zone of PublicSubnets[i] and PrivateSubnets[i].
	Zones []string
}

// Subnet plan: the VPC is cut into 16 equal blocks; block i is the public
// subnet of zone i and block 8+i its private subnet, so adding a zone never
// renumbers an existing subnet.
const (
	subnetBlocks       = 16
	privateBlockOffset = 8
)

// subnetCIDR returns block index of vpc cut into subnetBlocks equal parts.
func subnetCIDR(vpc netip.Prefix, index int) (netip.Prefix, error) {
	if index < 0 || index >= subnetBlocks {
		return netip.Prefix{}, fmt.Errorf("subnet block %d outside 0..%d", index, subnetBlocks-1)
	}
	bits := vpc.Bits() + 4 // 2^4 = subnetBlocks
	if bits > 28 {
		return netip.Prefix{}, fmt.Errorf("%s is too small to cut into %d subnets", vpc, subnetBlocks)
	}
	base := vpc.Masked().Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	n += uint32(index) << (32 - bits)
	addr := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	return netip.PrefixFrom(addr, bits), nil
}

func newNetwork(ctx *pulumi.Context, s settings, zones []string, region string) (*network, error) {
	vpc, err := ec2.NewVpc(ctx, "vpc", &ec2.VpcArgs{
		CidrBlock:          pulumi.String(s.VPCCIDR.String()),
		EnableDnsHostnames: pulumi.Bool(true),
		EnableDnsSupport:   pulumi.Bool(true),
		Tags:               s.tags("vpc"),
	})
	if err != nil {
		return nil, fmt.Errorf("vpc: %w", err)
	}
	n := &network{VPC: vpc, Zones: zones}

	igw, err := ec2.NewInternetGateway(ctx, "igw", &ec2.InternetGatewayArgs{
		VpcId: vpc.ID(),
		Tags:  s.tags("igw"),
	})
	if err != nil {
		return nil, fmt.Errorf("internet gateway: %w", err)
	}
	publicRT, err := ec2.NewRouteTable(ctx, "public", &ec2.RouteTableArgs{
		VpcId: vpc.ID(),
		Tags:  s.tags("public"),
	})
	if err != nil {
		return nil, fmt.Errorf("public route table: %w", err)
	}
	if _, err := ec2.NewRoute(ctx, "public-default", &ec2.RouteArgs{
		RouteTableId:         publicRT.ID(),
		DestinationCidrBlock: pulumi.String("0.0.0.0/0"),
		GatewayId:            igw.ID(),
	}); err != nil {
		return nil, fmt.Errorf("public default route: %w", err)
	}

	for i, zone := range zones {
		pubCIDR, err := subnetCIDR(s.VPCCIDR, i)
		if err != nil {
			return nil, err
		}
		privCIDR, err := subnetCIDR(s.VPCCIDR, privateBlockOffset+i)
		if err != nil {
			return nil, err
		}
		pub, err := ec2.NewSubnet(ctx, "public-"+zone, &ec2.SubnetArgs{
			VpcId:            vpc.ID(),
			AvailabilityZone: pulumi.String(zone),
			CidrBlock:        pulumi.String(pubCIDR.String()),
			// Nothing but the NAT gateway lives here; no instance gets a
			// public address by accident.
			MapPublicIpOnLaunch: pulumi.Bool(false),
			Tags:                withTag(s.tags("public-"+zone), "Tier", "public"),
		})
		if err != nil {
			return nil, fmt.Errorf("public subnet %s: %w", zone, err)
		}
		priv, err := ec2.NewSubnet(ctx, "private-"+zone, &ec2.SubnetArgs{
			VpcId:               vpc.ID(),
			AvailabilityZone:    pulumi.String(zone),
			CidrBlock:           pulumi.String(privCIDR.String()),
			MapPublicIpOnLaunch: pulumi.Bool(false),
			Tags:                withTag(s.tags("private-"+zone), "Tier", "private"),
		})
		if err != nil {
			return nil, fmt.Errorf("private subnet %s: %w", zone, err)
		}
		if _, err := ec2.NewRouteTableAssociation(ctx, "public-"+zone, &ec2.RouteTableAssociationArgs{
			SubnetId:     pub.ID(),
			RouteTableId: publicRT.ID(),
		}); err != nil {
			return nil, fmt.Errorf("public route table association %s: %w", zone, err)
		}
		n.PublicSubnets = append(n.PublicSubnets, pub)
		n.PrivateSubnets = append(n.PrivateSubnets, priv)
	}

	// One NAT gateway for all zones: a second one costs about $33/month and
	// only helps while the first zone is down, when the cluster is degraded
	// anyway. Nodes in the other zone reach the internet through zone 0.
	eip, err := ec2.NewEip(ctx, "nat", &ec2.EipArgs{
		Domain: pulumi.String("vpc"),
		Tags:   s.tags("nat"),
	})
	if err != nil {
		return nil, fmt.Errorf("nat address: %w", err)
	}
	nat, err := ec2.NewNatGateway(ctx, "nat", &ec2.NatGatewayArgs{
		AllocationId: eip.ID(),
		SubnetId:     n.PublicSubnets[0].ID(),
		Tags:         s.tags("nat"),
	}, pulumi.DependsOn([]pulumi.Resource{igw}))
	if err != nil {
		return nil, fmt.Errorf("nat gateway: %w", err)
	}
	privateRT, err := ec2.NewRouteTable(ctx, "private", &ec2.RouteTableArgs{
		VpcId: vpc.ID(),
		Tags:  s.tags("private"),
	})
	if err != nil {
		return nil, fmt.Errorf("private route table: %w", err)
	}
	if _, err := ec2.NewRoute(ctx, "private-default", &ec2.RouteArgs{
		RouteTableId:         privateRT.ID(),
		DestinationCidrBlock: pulumi.String("0.0.0.0/0"),
		NatGatewayId:         nat.ID(),
	}); err != nil {
		return nil, fmt.Errorf("private default route: %w", err)
	}
	for i, zone := range zones {
		if _, err := ec2.NewRouteTableAssociation(ctx, "private-"+zone, &ec2.RouteTableAssociationArgs{
			SubnetId:     n.PrivateSubnets[i].ID(),
			RouteTableId: privateRT.ID(),
		}); err != nil {
			return nil, fmt.Errorf("private route table association %s: %w", zone, err)
		}
	}
	// Gateway endpoints keep DynamoDB (every lock and journal write) and S3
	// (image layers, CloudTrail) traffic off the NAT gateway: they are free,
	// NAT bytes are not.
	for _, svc := range []string{"dynamodb", "s3"} {
		if _, err := ec2.NewVpcEndpoint(ctx, svc, &ec2.VpcEndpointArgs{
			VpcId:           vpc.ID(),
			ServiceName:     pulumi.String(fmt.Sprintf("com.amazonaws.%s.%s", region, svc)),
			VpcEndpointType: pulumi.String("Gateway"),
			RouteTableIds:   pulumi.StringArray{privateRT.ID()},
			Tags:            s.tags(svc + "-endpoint"),
		}); err != nil {
			return nil, fmt.Errorf("%s endpoint: %w", svc, err)
		}
	}
	return n, nil
}

// withTag returns m with one more tag.
func withTag(m pulumi.StringMap, k, v string) pulumi.StringMap {
	out := pulumi.StringMap{}
	for key, val := range m {
		out[key] = val
	}
	out[k] = pulumi.String(v)
	return out
}
