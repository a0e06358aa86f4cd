package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Defaults of the seed design. Zones default per region in zonesFor.
const (
	defaultVPCCIDR            = "10.40.0.0/16"
	defaultNodeGroup          = "workers"
	defaultWorkerInstanceType = "t3.small"
	defaultCPUCredits         = "standard"
	defaultWorkerVolumeGiB    = 20
	defaultMasterInstanceType = "t3.medium"
	defaultMasterVolumeGiB    = 30
	// The public SSM parameter AWS keeps pointing at the newest AL2023 AMI.
	defaultAMIParameter  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
	defaultK3sVersion    = "v1.33.4+k3s1"
	defaultECRCredential = "v1.33.0"
	defaultMaxNodes      = 10
	defaultProject       = "smartscale"
	// defaultMetricNamespace is where SmartScale's CloudWatch sink (serve
	// --cloudwatch-namespace) publishes and the alarms look.
	defaultMetricNamespace = "SmartScale"

	// configNamespace is the project name in Pulumi.yaml: config keys are
	// smartscale:<key>.
	configNamespace = "smartscale"
)

// settings is everything the program reads from Pulumi.<stack>.yaml, validated
// and with defaults applied. Zones may be empty here: their default depends on
// the region, which is only known once the provider answers (see zonesFor).
type settings struct {
	Project   string
	ClusterID string

	Zones   []string
	VPCCIDR netip.Prefix

	NodeGroup                    string
	WorkerInstanceType           string
	CPUCredits                   string
	WorkerVolumeGiB              int
	MasterInstanceType           string
	MasterVolumeGiB              int
	AMIParameter                 string
	K3sVersion                   string
	ECRCredentialProviderVersion string
	SSHKeyName                   string

	// SSHCIDR opens port 22 on the master to one network; empty keeps SSH closed.
	SSHCIDR string
	// APICIDRs may reach the Kubernetes API (6443) besides the cluster itself.
	APICIDRs []string

	AlertEmail string
	// SlackWebhookURL is a Pulumi secret; nil leaves the secret without a
	// value for the operator to fill in (see README).
	SlackWebhookURL pulumi.StringOutput
	HasSlackURL     bool
	// RotationLambdaARN enables the 90-day rotation of the K3s token.
	RotationLambdaARN string

	MaxNodes     int
	CloudTrail   bool
	ForceDestroy bool

	// MetricNamespace is the CloudWatch namespace the webhook may publish
	// to (its only cloudwatch:PutMetricData) and the alarms read.
	MetricNamespace string
}

var (
	// Cluster ids and node group names end up in tag values, label values,
	// resource names and the user data, so keep them to DNS-label characters.
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	instanceType = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	k3sVersionRE = regexp.MustCompile(`^v1\.[0-9]+\.[0-9]+\+k3s[0-9]+$`)
	semverRE     = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)
	ssmParameter = regexp.MustCompile(`^/[A-Za-z0-9_./-]+$`)
	// CloudWatch's namespace characters; "AWS/" is reserved (validate).
	metricNamespaceRE = regexp.MustCompile(`^[A-Za-z0-9._/#: -]{1,255}$`)
	emailRE           = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	lambdaARN         = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$`)
	keyPairName       = regexp.MustCompile(`^[A-Za-z0-9 ._-]{1,255}$`)
	zoneNameRE        = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$`)
	validCredits      = []string{"standard", "unlimited"}
)

// loadSettings reads the stack configuration (namespace = project name).
func loadSettings(ctx *pulumi.Context) (settings, error) {
	c := config.New(ctx, "")
	s := settings{
		Project:                      or(c.Get("project"), defaultProject),
		ClusterID:                    or(c.Get("clusterId"), ctx.Stack()),
		NodeGroup:                    or(c.Get("nodeGroup"), defaultNodeGroup),
		WorkerInstanceType:           or(c.Get("workerInstanceType"), defaultWorkerInstanceType),
		CPUCredits:                   or(c.Get("cpuCredits"), defaultCPUCredits),
		MasterInstanceType:           or(c.Get("masterInstanceType"), defaultMasterInstanceType),
		AMIParameter:                 or(c.Get("amiParameter"), defaultAMIParameter),
		K3sVersion:                   or(c.Get("k3sVersion"), defaultK3sVersion),
		ECRCredentialProviderVersion: or(c.Get("ecrCredentialProviderVersion"), defaultECRCredential),
		SSHKeyName:                   c.Get("sshKeyName"),
		SSHCIDR:                      c.Get("sshCidr"),
		AlertEmail:                   c.Get("alertEmail"),
		RotationLambdaARN:            c.Get("k3sTokenRotationLambdaArn"),
		MetricNamespace:              or(c.Get("cloudwatchNamespace"), defaultMetricNamespace),
	}
	var err error
	if s.WorkerVolumeGiB, err = intKey(c, "workerVolumeSize", defaultWorkerVolumeGiB); err != nil {
		return s, err
	}
	if s.MasterVolumeGiB, err = intKey(c, "masterVolumeSize", defaultMasterVolumeGiB); err != nil {
		return s, err
	}
	if s.MaxNodes, err = intKey(c, "maxNodes", defaultMaxNodes); err != nil {
		return s, err
	}
	if s.CloudTrail, err = boolKey(c, "enableCloudTrail", true); err != nil {
		return s, err
	}
	if s.ForceDestroy, err = boolKey(c, "forceDestroy", false); err != nil {
		return s, err
	}
	if err := c.TryObject("availabilityZones", &s.Zones); err != nil && c.Get("availabilityZones") != "" {
		return s, keyErr("availabilityZones", "want a list of zone names: %v", err)
	}
	if err := c.TryObject("apiCidrs", &s.APICIDRs); err != nil && c.Get("apiCidrs") != "" {
		return s, keyErr("apiCidrs", "want a list of CIDRs: %v", err)
	}
	cidr, err := netip.ParsePrefix(or(c.Get("vpcCidr"), defaultVPCCIDR))
	if err != nil {
		return s, keyErr("vpcCidr", "%v", err)
	}
	s.VPCCIDR = cidr
	if c.Get("slackWebhookUrl") != "" {
		s.SlackWebhookURL = c.RequireSecret("slackWebhookUrl")
		s.HasSlackURL = true
	}
	return s, s.validate()
}

// validate checks every value and names the key of the first bad one.
func (s settings) validate() error {
	switch {
	case !dnsLabel.MatchString(s.ClusterID):
		return keyErr("clusterId", "%q: want 1-32 lowercase letters, digits or '-'", s.ClusterID)
	case !dnsLabel.MatchString(s.Project):
		return keyErr("project", "%q: want 1-32 lowercase letters, digits or '-'", s.Project)
	case !dnsLabel.MatchString(s.NodeGroup):
		return keyErr("nodeGroup", "%q: want 1-32 lowercase letters, digits or '-'", s.NodeGroup)
	case !instanceType.MatchString(s.WorkerInstanceType):
		return keyErr("workerInstanceType", "%q is not an instance type", s.WorkerInstanceType)
	case !instanceType.MatchString(s.MasterInstanceType):
		return keyErr("masterInstanceType", "%q is not an instance type", s.MasterInstanceType)
	case !slices.Contains(validCredits, s.CPUCredits):
		return keyErr("cpuCredits", "%q: want one of %v", s.CPUCredits, validCredits)
	case s.WorkerVolumeGiB < 8 || s.WorkerVolumeGiB > 1024:
		return keyErr("workerVolumeSize", "%d GiB: want 8-1024", s.WorkerVolumeGiB)
	case s.MasterVolumeGiB < 8 || s.MasterVolumeGiB > 1024:
		return keyErr("masterVolumeSize", "%d GiB: want 8-1024", s.MasterVolumeGiB)
	case !ssmParameter.MatchString(s.AMIParameter):
		return keyErr("amiParameter", "%q is not an SSM parameter name", s.AMIParameter)
	case !k3sVersionRE.MatchString(s.K3sVersion):
		return keyErr("k3sVersion", "%q: want a K3s release such as %s", s.K3sVersion, defaultK3sVersion)
	case !semverRE.MatchString(s.ECRCredentialProviderVersion):
		return keyErr("ecrCredentialProviderVersion", "%q: want a release such as %s", s.ECRCredentialProviderVersion, defaultECRCredential)
	case s.SSHKeyName != "" && !keyPairName.MatchString(s.SSHKeyName):
		return keyErr("sshKeyName", "%q is not a key pair name", s.SSHKeyName)
	case s.AlertEmail != "" && !emailRE.MatchString(s.AlertEmail):
		return keyErr("alertEmail", "%q is not an e-mail address", s.AlertEmail)
	case s.RotationLambdaARN != "" && !lambdaARN.MatchString(s.RotationLambdaARN):
		return keyErr("k3sTokenRotationLambdaArn", "%q is not a Lambda function ARN", s.RotationLambdaARN)
	case s.MaxNodes < 1:
		return keyErr("maxNodes", "%d: want at least 1", s.MaxNodes)
	case !metricNamespaceRE.MatchString(s.MetricNamespace) || strings.HasPrefix(s.MetricNamespace, "AWS/"):
		return keyErr("cloudwatchNamespace", "%q: want 1-255 letters, digits or . - _ / # : and space, not starting with AWS/", s.MetricNamespace)
	case !s.VPCCIDR.Addr().Is4() || s.VPCCIDR.Bits() < 16 || s.VPCCIDR.Bits() > 24 || s.VPCCIDR.Masked() != s.VPCCIDR:
		return keyErr("vpcCidr", "%s: want an IPv4 network from /16 to /24", s.VPCCIDR)
	}
	for _, z := range s.Zones {
		if !zoneNameRE.MatchString(z) {
			return keyErr("availabilityZones", "%q is not a zone name", z)
		}
	}
	if s.SSHCIDR != "" {
		if err := checkIngressCIDR(s.SSHCIDR); err != nil {
			return keyErr("sshCidr", "%v", err)
		}
	}
	for _, c := range s.APICIDRs {
		if err := checkIngressCIDR(c); err != nil {
			return keyErr("apiCidrs", "%v", err)
		}
	}
	return nil
}

// checkIngressCIDR refuses networks that would open a port to the internet:
// nothing in this stack accepts traffic from 0.0.0.0/0.
func checkIngressCIDR(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return err
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("%s: want an IPv4 CIDR", s)
	}
	if p.Masked() != p {
		return fmt.Errorf("%s has host bits set (did you mean %s?)", s, p.Masked())
	}
	if p.Bits() < 8 {
		return fmt.Errorf("%s is too wide to open a port to (want /8 or narrower)", s)
	}
	return nil
}

// zonesFor picks the zones: the configured ones, which must exist in the
// region, or us-east-1a/b in us-east-1 and the first two available zones
// elsewhere (two, not three: one NAT gateway and fewer cross-zone bytes).
func zonesFor(configured []string, region string, available []string) ([]string, error) {
	if len(configured) == 0 {
		if region == "us-east-1" {
			configured = []string{"us-east-1a", "us-east-1b"}
		} else {
			if len(available) < 2 {
				return nil, keyErr("availabilityZones", "region %s has %d available zones; need 2", region, len(available))
			}
			sorted := slices.Sorted(slices.Values(available))
			configured = sorted[:2]
		}
	}
	if len(configured) < 2 {
		return nil, keyErr("availabilityZones", "%v: want at least 2 zones so the cluster survives a zone outage", configured)
	}
	if len(configured) > 8 {
		return nil, keyErr("availabilityZones", "%v: at most 8 zones fit the subnet plan", configured)
	}
	seen := map[string]bool{}
	for _, z := range configured {
		if seen[z] {
			return nil, keyErr("availabilityZones", "%q listed twice", z)
		}
		seen[z] = true
		if !slices.Contains(available, z) {
			return nil, keyErr("availabilityZones", "%q is not an available zone of %s (available: %s)", z, region, strings.Join(available, ", "))
		}
	}
	return configured, nil
}

func keyErr(key, format string, args ...any) error {
	return fmt.Errorf("config %s:%s: %s", configNamespace, key, fmt.Sprintf(format, args...))
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// intKey reads an integer key; a value that is not a number is an error,
// not silently the default.
func intKey(c *config.Config, key string, def int) (int, error) {
	raw := c.Get(key)
	if raw == "" {
		return def, nil
	}
	v, err := strconv.Atoi(raw)
	if err != nil {
		return 0, keyErr(key, "%q is not a whole number", raw)
	}
	return v, nil
}

func boolKey(c *config.Config, key string, def bool) (bool, error) {
	raw := c.Get(key)
	if raw == "" {
		return def, nil
	}
	v, err := strconv.ParseBool(raw)
	if err != nil {
		return false, keyErr(key, "%q: want true or false", raw)
	}
	return v, nil
}

// tags are the tags of every resource this program creates. ManagedBy is
// "pulumi" here and "smartscale" only on the workers SmartScale launches, so
// the webhook's terminate permission (conditioned on ManagedBy=smartscale)
// can never reach the master or anything else of this stack.
func (s settings) tags(name string) pulumi.StringMap {
	return pulumi.StringMap{
		"Project":            pulumi.String(s.Project),
		"ManagedBy":          pulumi.String("pulumi"),
		"smartscale/cluster": pulumi.String(s.ClusterID),
		"Name":               pulumi.String(s.ClusterID + "-" + name),
	}
}

// workerTags go on every instance, volume and network interface launched from
// the worker template; SmartScale finds and guards its nodes by them.
func (s settings) workerTags() pulumi.StringMap {
	return pulumi.StringMap{
		"Project":            pulumi.String(s.Project),
		"ManagedBy":          pulumi.String("smartscale"),
		"ScalingGroup":       pulumi.String(s.NodeGroup),
		"smartscale/cluster": pulumi.String(s.ClusterID),
		"Name":               pulumi.String(s.ClusterID + "-" + s.NodeGroup),
	}
}
