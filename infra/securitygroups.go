package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/vpc"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// securityGroups of the cluster. Every rule is its own resource (the
// provider's recommended form) so one change never rewrites the others.
type securityGroups struct {
	Master  *ec2.SecurityGroup
	Workers *ec2.SecurityGroup
}

// The ports K3s uses between nodes (docs.k3s.io "Inbound rules for K3s nodes").
const (
	portAPI          = 6443 // Kubernetes API and K3s supervisor (agents join here)
	portKubelet      = 10250
	portFlannelVXLAN = 8472 // udp
	portNodeExporter = 9100
	portSSH          = 22
)

// ingress is one rule: from another group or from a CIDR, never both.
type ingress struct {
	name     string
	protocol string
	port     int
	from     *ec2.SecurityGroup
	cidr     string
	why      string
}

func newSecurityGroups(ctx *pulumi.Context, s settings, n *network) (*securityGroups, error) {
	master, err := ec2.NewSecurityGroup(ctx, "master", &ec2.SecurityGroupArgs{
		VpcId:               n.VPC.ID(),
		Description:         pulumi.String("K3s server of SmartScale cluster " + s.ClusterID),
		RevokeRulesOnDelete: pulumi.Bool(true),
		Tags:                s.tags("master"),
	})
	if err != nil {
		return nil, fmt.Errorf("master security group: %w", err)
	}
	workers, err := ec2.NewSecurityGroup(ctx, "workers", &ec2.SecurityGroupArgs{
		VpcId:               n.VPC.ID(),
		Description:         pulumi.String("K3s agents (node group " + s.NodeGroup + ") of SmartScale cluster " + s.ClusterID),
		RevokeRulesOnDelete: pulumi.Bool(true),
		Tags:                s.tags("workers"),
	})
	if err != nil {
		return nil, fmt.Errorf("worker security group: %w", err)
	}

	// The webhook runs as pods: on the master (where it may assume its role,
	// see iam.go) its API calls are local; on a worker they come from the
	// worker group. Prometheus may run on any node, so node-exporter and the
	// kubelet answer every cluster node; metrics-server on a worker scrapes
	// every kubelet too.
	masterRules := []ingress{
		{"api-from-workers", "tcp", portAPI, workers, "", "agents join and talk to the API; the webhook on workers"},
		{"vxlan-from-workers", "udp", portFlannelVXLAN, workers, "", "flannel VXLAN pod network"},
		{"kubelet-from-workers", "tcp", portKubelet, workers, "", "metrics-server and Prometheus on workers scrape this kubelet"},
		{"node-exporter-from-workers", "tcp", portNodeExporter, workers, "", "Prometheus on a worker scrapes node-exporter"},
	}
	for i, c := range s.APICIDRs {
		masterRules = append(masterRules, ingress{fmt.Sprintf("api-from-admin-%d", i), "tcp", portAPI, nil, c, "kubectl from the configured admin network"})
	}
	if s.SSHCIDR != "" {
		masterRules = append(masterRules, ingress{"ssh-from-admin", "tcp", portSSH, nil, s.SSHCIDR, "SSH from the configured admin network"})
	}
	workerRules := []ingress{
		{"kubelet-from-master", "tcp", portKubelet, master, "", "API server to kubelet: logs, exec, port-forward"},
		{"kubelet-from-workers", "tcp", portKubelet, workers, "", "metrics-server and Prometheus on workers"},
		{"vxlan-from-master", "udp", portFlannelVXLAN, master, "", "flannel VXLAN pod network"},
		{"vxlan-from-workers", "udp", portFlannelVXLAN, workers, "", "flannel VXLAN pod network"},
		{"node-exporter-from-master", "tcp", portNodeExporter, master, "", "Prometheus on the master"},
		{"node-exporter-from-workers", "tcp", portNodeExporter, workers, "", "Prometheus on a worker"},
	}
	if s.SSHCIDR != "" {
		// Workers have no route from the admin network; they are reached by
		// jumping through the master.
		workerRules = append(workerRules, ingress{"ssh-from-master", "tcp", portSSH, master, "", "SSH jump through the master"})
	}
	if err := addIngress(ctx, s, "master", master, masterRules); err != nil {
		return nil, err
	}
	if err := addIngress(ctx, s, "workers", workers, workerRules); err != nil {
		return nil, err
	}
	for _, g := range []struct {
		name string
		sg   *ec2.SecurityGroup
	}{{"master", master}, {"workers", workers}} {
		if err := addEgress(ctx, s, g.name, g.sg); err != nil {
			return nil, err
		}
	}
	return &securityGroups{Master: master, Workers: workers}, nil
}

func addIngress(ctx *pulumi.Context, s settings, group string, sg *ec2.SecurityGroup, rules []ingress) error {
	for _, r := range rules {
		args := &vpc.SecurityGroupIngressRuleArgs{
			SecurityGroupId: sg.ID(),
			IpProtocol:      pulumi.String(r.protocol),
			FromPort:        pulumi.Int(r.port),
			ToPort:          pulumi.Int(r.port),
			Description:     pulumi.String(r.why),
			Tags:            s.tags(group + "-" + r.name),
		}
		switch {
		case r.from != nil:
			args.ReferencedSecurityGroupId = r.from.ID()
		case r.cidr != "":
			if err := checkIngressCIDR(r.cidr); err != nil {
				return fmt.Errorf("%s ingress %s: %w", group, r.name, err)
			}
			args.CidrIpv4 = pulumi.String(r.cidr)
		default:
			return fmt.Errorf("%s ingress %s: no source", group, r.name)
		}
		if _, err := vpc.NewSecurityGroupIngressRule(ctx, group+"-"+r.name, args); err != nil {
			return fmt.Errorf("%s ingress %s: %w", group, r.name, err)
		}
	}
	return nil
}

// addEgress lets nodes talk to anything inside the VPC and to the internet on
// HTTP(S) only: AWS APIs, the K3s installer and images, dnf repositories.
// DNS (the VPC resolver), NTP and instance metadata are inside the VPC or
// link-local.
func addEgress(ctx *pulumi.Context, s settings, group string, sg *ec2.SecurityGroup) error {
	rules := []struct {
		name, protocol, cidr string
		port                 int
	}{
		{"vpc", "-1", s.VPCCIDR.String(), 0},
		{"https", "tcp", "0.0.0.0/0", 443},
		{"http", "tcp", "0.0.0.0/0", 80},
	}
	for _, r := range rules {
		args := &vpc.SecurityGroupEgressRuleArgs{
			SecurityGroupId: sg.ID(),
			IpProtocol:      pulumi.String(r.protocol),
			CidrIpv4:        pulumi.String(r.cidr),
			Description:     pulumi.String("egress " + r.name),
			Tags:            s.tags(group + "-egress-" + r.name),
		}
		if r.port != 0 {
			args.FromPort = pulumi.Int(r.port)
			args.ToPort = pulumi.Int(r.port)
		}
		if _, err := vpc.NewSecurityGroupEgressRule(ctx, group+"-egress-"+r.name, args); err != nil {
			return fmt.Errorf("%s egress %s: %w", group, r.name, err)
		}
	}
	return nil
}
