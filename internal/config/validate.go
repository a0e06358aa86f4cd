package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Validate checks every value and returns all problems found, each naming
// its key.
func (c *Config) Validate() error { return c.validate("config", nil) }

var groupNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (c *Config) validate(file string, lines map[string]int) error {
	v := validator{file: file, lines: lines}
	if strings.TrimSpace(c.ClusterID) == "" {
		v.fail("clusterID", "must not be empty")
	}
	if len(c.NodeGroups) == 0 {
		v.fail("nodeGroups", "at least one node group is required")
	}
	seen := map[string]bool{}
	for i, g := range c.NodeGroups {
		v.nodeGroup(fmt.Sprintf("nodeGroups[%d]", i), g)
		if seen[g.Name] {
			v.fail(fmt.Sprintf("nodeGroups[%d].name", i), fmt.Sprintf("duplicate node group %q", g.Name))
		}
		seen[g.Name] = true
	}

	switch c.State.Backend {
	case "memory":
	case "dynamodb":
		if c.State.DynamoDB.Table == "" {
			v.fail("state.dynamodb.table", "required when state.backend is dynamodb")
		}
		if c.State.DynamoDB.Region == "" {
			v.fail("state.dynamodb.region", "required when state.backend is dynamodb")
		}
		v.url("state.dynamodb.endpoint", c.State.DynamoDB.Endpoint)
		v.positive("state.dynamodb.timeout", c.State.DynamoDB.Timeout)
	default:
		v.fail("state.backend", fmt.Sprintf("unknown backend %q (want memory or dynamodb)", c.State.Backend))
	}

	switch c.Cloud.Provider {
	case "kwok":
	case "aws":
		if c.Cloud.AWS.Region == "" {
			v.fail("cloud.aws.region", "required when cloud.provider is aws")
		}
		if c.Cloud.AWS.LaunchTemplateID == "" {
			v.fail("cloud.aws.launchTemplateID", "required when cloud.provider is aws")
		}
		for i, g := range c.NodeGroups {
			for _, z := range g.Zones {
				if c.Cloud.AWS.Subnets[z] == "" {
					v.fail("cloud.aws.subnets", fmt.Sprintf("no subnet for zone %q of nodeGroups[%d]", z, i))
				}
			}
		}
		v.url("cloud.aws.endpoint", c.Cloud.AWS.Endpoint)
	default:
		v.fail("cloud.provider", fmt.Sprintf("unknown provider %q (want kwok or aws)", c.Cloud.Provider))
	}

	if c.Kube.InCluster && c.Kube.Kubeconfig != "" {
		v.fail("kube.kubeconfig", "set either kube.inCluster or kube.kubeconfig, not both")
	}

	s := c.Server
	if _, _, err := net.SplitHostPort(s.ListenAddress); err != nil {
		v.fail("server.listenAddress", fmt.Sprintf("want host:port: %v", err))
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		v.fail("server.tls", "certFile and keyFile go together")
	}
	if s.Auth.BearerTokenFile != "" && s.Auth.BasicAuth.Username != "" {
		v.fail("server.auth", "choose bearerTokenFile or basicAuth, not both")
	}
	if (s.Auth.BasicAuth.Username == "") != (s.Auth.BasicAuth.PasswordFile == "") {
		v.fail("server.auth.basicAuth", "username and passwordFile go together")
	}
	v.positive("server.readTimeout", s.ReadTimeout)
	v.positive("server.writeTimeout", s.WriteTimeout)
	v.positive("server.idleTimeout", s.IdleTimeout)
	v.positive("server.shutdownTimeout", s.ShutdownTimeout)
	if s.MaxBodyBytes <= 0 {
		v.fail("server.maxBodyBytes", "must be positive")
	}

	v.positive("scaler.lockTTL", c.Scaler.LockTTL)
	v.positive("scaler.reconcileInterval", c.Scaler.ReconcileInterval)
	v.positive("scaler.dedupeTTL", c.Scaler.DedupeTTL)
	if c.Scaler.LockTTL > 0 && c.Scaler.LockTTL < Duration(3*time.Second) {
		v.fail("scaler.lockTTL", fmt.Sprintf("%s is too short: the heartbeat extends the lease every lockTTL/3 (want at least 3s)", c.Scaler.LockTTL))
	}

	if arn := c.Notify.SNS.TopicARN; arn != "" && !strings.HasPrefix(arn, "arn:") {
		v.fail("notify.sns.topicARN", fmt.Sprintf("%q is not an ARN", arn))
	}
	v.url("notify.sns.endpoint", c.Notify.SNS.Endpoint)
	v.url("notify.dashboardURL", c.Notify.DashboardURL)
	for t, p := range c.Pricing.OnDemandHourly {
		if p < 0 {
			v.fail("pricing.onDemandHourly."+t, "must not be negative")
		}
	}
	for t, p := range c.Pricing.SpotHourly {
		if p < 0 {
			v.fail("pricing.spotHourly."+t, "must not be negative")
		}
	}
	return joinFieldErrors(v.errs)
}

type validator struct {
	file  string
	lines map[string]int
	errs  []*FieldError
}

func (v *validator) fail(key, msg string) {
	v.errs = append(v.errs, &FieldError{File: v.file, Line: v.lines[key], Key: key, Msg: msg})
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.fail(key, fmt.Sprintf("must be a positive duration, got %s", time.Duration(d)))
	}
}

func (v *validator) url(key, s string) {
	if s != "" && !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		v.fail(key, fmt.Sprintf("want an http(s) URL, got %q", s))
	}
}

func (v *validator) nodeGroup(p string, g NodeGroup) {
	if !groupNamePattern.MatchString(g.Name) {
		v.fail(p+".name", fmt.Sprintf("want a DNS label (lowercase letters, digits, '-'), got %q", g.Name))
	}
	if g.MinNodes < 0 {
		v.fail(p+".minNodes", "must not be negative")
	}
	if g.MaxNodes < 1 {
		v.fail(p+".maxNodes", "must be at least 1")
	}
	if g.MinNodes > g.MaxNodes {
		v.fail(p+".minNodes", fmt.Sprintf("must be ≤ maxNodes (%d > %d)", g.MinNodes, g.MaxNodes))
	}
	if len(g.Zones) == 0 {
		v.fail(p+".zones", "at least one zone is required")
	}
	if dup := firstDuplicate(g.Zones); dup != "" {
		v.fail(p+".zones", fmt.Sprintf("zone %q listed twice", dup))
	}
	if g.MinNodes < len(g.Zones) {
		v.fail(p+".minNodes", fmt.Sprintf("must be ≥ the number of zones (%d < %d): every zone keeps one node", g.MinNodes, len(g.Zones)))
	}
	if len(g.InstanceTypes) == 0 {
		v.fail(p+".instanceTypes", "at least one instance type is required")
	}
	if dup := firstDuplicate(g.InstanceTypes); dup != "" {
		v.fail(p+".instanceTypes", fmt.Sprintf("instance type %q listed twice", dup))
	}
	if g.SpotPercentage < 0 || g.SpotPercentage > 100 {
		v.fail(p+".spotPercentage", fmt.Sprintf("must be within 0..100, got %d", g.SpotPercentage))
	}
	if g.ScaleUpStep.Normal < 1 {
		v.fail(p+".scaleUpStep.normal", "must be at least 1")
	}
	if g.ScaleUpStep.High < g.ScaleUpStep.Normal {
		v.fail(p+".scaleUpStep.high", fmt.Sprintf("must be ≥ scaleUpStep.normal (%d < %d)", g.ScaleUpStep.High, g.ScaleUpStep.Normal))
	}
	if g.ScaleDownStep != 1 {
		v.fail(p+".scaleDownStep", fmt.Sprintf("must be 1: SmartScale removes one node per decision, got %d", g.ScaleDownStep))
	}
	v.positive(p+".cooldowns.scaleUp", g.Cooldowns.ScaleUp)
	v.positive(p+".cooldowns.scaleDown", g.Cooldowns.ScaleDown)
	if g.ScaleDownDelayAfterScaleUp < 0 {
		v.fail(p+".scaleDownDelayAfterScaleUp", "must not be negative")
	}
	v.positive(p+".nodeReadyTimeout", g.NodeReadyTimeout)
	v.positive(p+".drainTimeout", g.DrainTimeout)
	if g.MinNodeAge < 0 {
		v.fail(p+".minNodeAge", "must not be negative")
	}
}

func firstDuplicate(xs []string) string {
	for i, x := range xs {
		if slices.Contains(xs[:i], x) {
			return x
		}
	}
	return ""
}

var yamlLinePattern = regexp.MustCompile(`^line (\d+): `)

// nameDecodeErrors rewrites yaml.v3's "line N: cannot unmarshal…" messages
// so each names the key found on that line.
func nameDecodeErrors(file string, err error, lines map[string]int) error {
	te, ok := err.(*yaml.TypeError)
	if !ok {
		return fmt.Errorf("%s: %w", file, err)
	}
	byLine := map[int]string{}
	for k, l := range lines {
		if cur, ok := byLine[l]; !ok || len(k) > len(cur) {
			byLine[l] = k
		}
	}
	var errs []*FieldError
	for _, msg := range te.Errors {
		fe := &FieldError{File: file, Key: "(unknown key)", Msg: msg}
		if m := yamlLinePattern.FindStringSubmatch(msg); m != nil {
			fe.Line, _ = strconv.Atoi(m[1])
			fe.Msg = strings.TrimPrefix(msg, m[0])
			if k, ok := byLine[fe.Line]; ok {
				fe.Key = k
			}
		}
		errs = append(errs, fe)
	}
	return joinFieldErrors(errs)
}
