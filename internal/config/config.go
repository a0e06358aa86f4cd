// Package config reads and validates SmartScale's one YAML configuration file.
//
// Unknown keys are rejected with the file, line and key path; every value is
// validated with a message that names its key. Defaults are the numbers of the
// seed design (minNodes 2, maxNodes 10, spot 60%, cooldowns 5m up / 10m down…)
// and apply to every key a file leaves out. Secrets are never held in the
// file: it names files (or environment variables) to read them from.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Example is the annotated example configuration kept in the repository; it
// is also what `smartscale serve` runs on when no file is given.
//
//go:embed smartscale.example.yaml
var exampleYAML []byte

// Example returns the annotated example configuration file's bytes.
func Example() []byte { return bytes.Clone(exampleYAML) }

// Config is the whole configuration of one SmartScale deployment.
type Config struct {
	// ClusterID scopes every DynamoDB item (pk = cluster#<id>).
	ClusterID  string      `yaml:"clusterID"`
	DryRun     bool        `yaml:"dryRun"`
	NodeGroups []NodeGroup `yaml:"nodeGroups"`
	State      State       `yaml:"state"`
	Cloud      Cloud       `yaml:"cloud"`
	Kube       Kube        `yaml:"kube"`
	Server     Server      `yaml:"server"`
	Notify     Notify      `yaml:"notify"`
	Pricing    Pricing     `yaml:"pricing"`
	Scaler     Scaler      `yaml:"scaler"`
}

// Scaler holds the timers of the scaling loop itself.
type Scaler struct {
	// LockTTL is how long a node group's lease lasts without a heartbeat:
	// how long a crashed replica blocks its groups before another takes
	// over and finishes its journaled operation.
	LockTTL Duration `yaml:"lockTTL"`
	// ReconcileInterval is the reconciler's period (minimum nodes, unfinished
	// operations, forgotten cordons, orphans).
	ReconcileInterval Duration `yaml:"reconcileInterval"`
	// DedupeTTL is how long a notification that led to an action is
	// remembered: Alertmanager's HA copies and retries within it are
	// duplicates. Keep it below the smartscale route's repeat_interval, so
	// an alert that stays firing is reconsidered at each repeat (the
	// cooldowns then decide).
	DedupeTTL Duration `yaml:"dedupeTTL"`
}

// NodeGroup is one set of interchangeable worker nodes that scale together.
type NodeGroup struct {
	Name          string   `yaml:"name"`
	MinNodes      int      `yaml:"minNodes"`
	MaxNodes      int      `yaml:"maxNodes"`
	Zones         []string `yaml:"zones"`
	InstanceTypes []string `yaml:"instanceTypes"`
	// SpotPercentage is the share of the group's nodes to run on spot (0–100).
	SpotPercentage int         `yaml:"spotPercentage"`
	ScaleUpStep    ScaleUpStep `yaml:"scaleUpStep"`
	ScaleDownStep  int         `yaml:"scaleDownStep"`
	Cooldowns      Cooldowns   `yaml:"cooldowns"`
	// ScaleDownDelayAfterScaleUp keeps a group from shrinking right after it grew.
	ScaleDownDelayAfterScaleUp Duration `yaml:"scaleDownDelayAfterScaleUp"`
	NodeReadyTimeout           Duration `yaml:"nodeReadyTimeout"`
	DrainTimeout               Duration `yaml:"drainTimeout"`
	// MinNodeAge replaces "don't terminate mid-hour": EC2 bills Linux per
	// second after the first minute, so only very young nodes are kept.
	MinNodeAge Duration `yaml:"minNodeAge"`
}

// ScaleUpStep is how many nodes one scale-up adds, by the alert's urgency.
type ScaleUpStep struct {
	Normal int `yaml:"normal"`
	High   int `yaml:"high"`
}

// Cooldowns are the minimum gaps between two actions of the same direction.
type Cooldowns struct {
	ScaleUp   Duration `yaml:"scaleUp"`
	ScaleDown Duration `yaml:"scaleDown"`
}

// State selects where locks, cooldowns, dedupe keys and the journal live.
type State struct {
	Backend  string   `yaml:"backend"` // memory | dynamodb
	DynamoDB DynamoDB `yaml:"dynamodb"`
}

// DynamoDB locates the state table.
type DynamoDB struct {
	Table  string `yaml:"table"`
	Region string `yaml:"region"`
	// Endpoint overrides the AWS endpoint (dynalite, DynamoDB Local).
	Endpoint string `yaml:"endpoint"`
	// Timeout bounds every DynamoDB call so an outage answers fast (503).
	Timeout Duration `yaml:"timeout"`
}

// Cloud selects the node provider.
type Cloud struct {
	Provider string `yaml:"provider"` // kwok | aws
	AWS      AWS    `yaml:"aws"`
}

// AWS holds what the EC2 provider needs to launch workers.
type AWS struct {
	Region           string `yaml:"region"`
	LaunchTemplateID string `yaml:"launchTemplateID"`
	// Subnets maps each zone of the node groups to the subnet to launch into.
	Subnets map[string]string `yaml:"subnets"`
	// InterruptionQueueURL is the SQS queue EventBridge feeds with spot
	// interruption, rebalance and state-change events; empty disables polling.
	InterruptionQueueURL string `yaml:"interruptionQueueURL"`
	// Endpoint overrides the EC2 endpoint (tests).
	Endpoint string `yaml:"endpoint"`
}

// Kube says how to reach the Kubernetes API.
type Kube struct {
	InCluster  bool   `yaml:"inCluster"`
	Kubeconfig string `yaml:"kubeconfig"`
}

// Server configures the webhook's HTTP listener.
type Server struct {
	ListenAddress   string   `yaml:"listenAddress"`
	TLS             TLS      `yaml:"tls"`
	Auth            Auth     `yaml:"auth"`
	ReadTimeout     Duration `yaml:"readTimeout"`
	WriteTimeout    Duration `yaml:"writeTimeout"`
	IdleTimeout     Duration `yaml:"idleTimeout"`
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
	// MaxBodyBytes bounds a webhook body; larger ones answer 413.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
}

// TLS enables HTTPS when both files are set.
type TLS struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// Auth is how Alertmanager authenticates: a bearer token (its
// http_config.authorization) or basic auth (http_config.basic_auth).
type Auth struct {
	BearerTokenFile string    `yaml:"bearerTokenFile"`
	BasicAuth       BasicAuth `yaml:"basicAuth"`
}

// BasicAuth names the user and the file that holds the password.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"passwordFile"`
}

// Notify configures action notices for people.
type Notify struct {
	Slack Slack `yaml:"slack"`
	SNS   SNS   `yaml:"sns"`
	// DashboardURL is linked from every notice (Grafana).
	DashboardURL string `yaml:"dashboardURL"`
}

// Slack posts to an incoming webhook whose URL is a secret read from a file.
type Slack struct {
	WebhookURLFile string `yaml:"webhookURLFile"`
}

// SNS publishes action notices to a topic.
type SNS struct {
	TopicARN string `yaml:"topicARN"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
}

// Pricing feeds the estimated hourly cost metric.
type Pricing struct {
	// OnDemandHourly is the on-demand price per instance type, dollars/hour.
	OnDemandHourly map[string]float64 `yaml:"onDemandHourly"`
	// SpotHourly is the expected spot price per instance type, dollars/hour.
	SpotHourly map[string]float64 `yaml:"spotHourly"`
}

// Duration is a time.Duration written as a Go duration string ("5m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses "90s", "5m", "1h30m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// A *yaml.TypeError lets the decoder carry on and report every bad
	// value, each with its line (which Parse turns into the key's name).
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: want a duration such as \"5m\", got %q", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Default returns the configuration every file starts from.
func Default() Config {
	return Config{
		ClusterID:  "local",
		NodeGroups: []NodeGroup{DefaultNodeGroup("workers")},
		State: State{Backend: "memory", DynamoDB: DynamoDB{
			Table: "smartscale", Region: "us-east-1", Timeout: Duration(5 * time.Second),
		}},
		Cloud:  Cloud{Provider: "kwok", AWS: AWS{Region: "us-east-1"}},
		Scaler: Scaler{LockTTL: Duration(60 * time.Second), ReconcileInterval: Duration(30 * time.Second), DedupeTTL: Duration(4 * time.Minute)},
		Server: Server{
			ListenAddress:   "127.0.0.1:8080",
			ReadTimeout:     Duration(10 * time.Second),
			WriteTimeout:    Duration(30 * time.Second),
			IdleTimeout:     Duration(120 * time.Second),
			ShutdownTimeout: Duration(30 * time.Second),
			MaxBodyBytes:    1 << 20,
		},
		Pricing: Pricing{
			OnDemandHourly: map[string]float64{"t3.small": 0.0208, "t3a.small": 0.0188},
			SpotHourly:     map[string]float64{"t3.small": 0.0079, "t3a.small": 0.0074},
		},
	}
}

// DefaultNodeGroup returns a node group with the seed's numbers.
func DefaultNodeGroup(name string) NodeGroup {
	return NodeGroup{
		Name:                       name,
		MinNodes:                   2,
		MaxNodes:                   10,
		Zones:                      []string{"us-east-1a", "us-east-1b"},
		InstanceTypes:              []string{"t3.small", "t3a.small"},
		SpotPercentage:             60,
		ScaleUpStep:                ScaleUpStep{Normal: 1, High: 2},
		ScaleDownStep:              1,
		Cooldowns:                  Cooldowns{ScaleUp: Duration(5 * time.Minute), ScaleDown: Duration(10 * time.Minute)},
		ScaleDownDelayAfterScaleUp: Duration(10 * time.Minute),
		NodeReadyTimeout:           Duration(5 * time.Minute),
		DrainTimeout:               Duration(5 * time.Minute),
		MinNodeAge:                 Duration(10 * time.Minute),
	}
}

// UnmarshalYAML starts every listed node group from the defaults, so a file
// only writes what differs.
func (g *NodeGroup) UnmarshalYAML(n *yaml.Node) error {
	type plain NodeGroup
	v := plain(DefaultNodeGroup(""))
	// Lists replace rather than merge: a file that names its zones means them.
	v.Zones, v.InstanceTypes = nil, nil
	if err := n.Decode(&v); err != nil {
		return err
	}
	def := DefaultNodeGroup("")
	if v.Zones == nil {
		v.Zones = def.Zones
	}
	if v.InstanceTypes == nil {
		v.InstanceTypes = def.InstanceTypes
	}
	*g = NodeGroup(v)
	return nil
}

// Group returns the node group with the given name.
func (c *Config) Group(name string) (NodeGroup, bool) {
	for _, g := range c.NodeGroups {
		if g.Name == name {
			return g, true
		}
	}
	return NodeGroup{}, false
}

// Load reads, decodes and validates the file at path.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes and validates data; name is the file name used in errors.
func Parse(name string, data []byte) (Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	cfg := Default()
	if len(root.Content) == 0 {
		return cfg, cfg.validate(name, nil)
	}
	lines, err := checkKnownKeys(name, root.Content[0], cfg)
	if err != nil {
		return Config{}, err
	}
	// A file with nodeGroups replaces the default list rather than appending.
	cfg.NodeGroups = nil
	if err := root.Content[0].Decode(&cfg); err != nil {
		return Config{}, nameDecodeErrors(name, err, lines)
	}
	if cfg.NodeGroups == nil {
		cfg.NodeGroups = Default().NodeGroups
	}
	if err := cfg.validate(name, lines); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// FieldError names the key whose value is wrong.
type FieldError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
}

// Errors joins every FieldError found, so one run shows them all.
func joinFieldErrors(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}
