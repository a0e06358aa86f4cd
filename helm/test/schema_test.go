package helmtest

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/smartscale/smartscale/internal/config"
)

// TestSchemaRejectsBadValues: values.schema.json fails `helm template` (and
// so `helm install`) on a wrong type, a missing required value, a key that
// does not exist or that the chart owns. Every case first renders without
// the bad value, so a failure is the bad value's and nothing else's.
func TestSchemaRejectsBadValues(t *testing.T) {
	t.Parallel()
	// The AWS provider without its launch template: the key is absent, not null.
	awsNoTemplate := writeManifest(t, "aws-no-template", `
config:
  cloud:
    provider: aws
    aws:
      region: us-east-1
      subnets: {us-east-1a: subnet-1, us-east-1b: subnet-2}
`)
	// group writes a values file with one node group "workers" plus line.
	group := func(line string) string {
		return writeManifest(t, "group", "config:\n  nodeGroups:\n    - name: workers\n      "+line+"\n")
	}
	cases := []struct {
		name    string
		set     string // a --set, or
		badFile string // a values file, on top of the defaults
		want    string // in helm's error: the offending key
	}{
		{"wrong type", "replicaCount=two", "", "'/replicaCount': got string, want integer"},
		{"wrong type in config", "config.dryRun=maybe", "", "'/config/dryRun': got string, want boolean"},
		{"wrong type in a node group", "", group("spotPercentage: lots"), "'/config/nodeGroups/0/spotPercentage': got string, want integer"},
		{"out of range", "", group("spotPercentage: 150"), "/config/nodeGroups/0/spotPercentage"},
		{"bad duration", "", group("cooldowns: {scaleUp: 5 minutes}"), "/config/nodeGroups/0/cooldowns/scaleUp"},
		{"missing required: auth secret", "auth.existingSecret=null", "", "missing property 'existingSecret'"},
		{"missing required: cluster id", "config.clusterID=null", "", "missing property 'clusterID'"},
		{"missing required: aws launch template", "", awsNoTemplate, "missing property 'launchTemplateID'"},
		{"misspelt key", "", group("maxNode: 10"), "additional properties 'maxNode' not allowed"},
		{"key the chart owns", "config.server.listenAddress=:9090", "", "additional properties 'listenAddress' not allowed"},
		{"secret in values", "auth.token=hunter2", "", "additional properties 'token' not allowed"},
	}
	// The defaults render: a failure below is the bad value's.
	if _, err := templateRaw(t, renderOpts{}); err != nil {
		t.Fatalf("the default values do not render: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bad := renderOpts{}
			if tc.set != "" {
				bad.sets = []string{tc.set}
			}
			if tc.badFile != "" {
				bad.files = []string{tc.badFile}
			}
			_, err := templateRaw(t, bad)
			if err == nil {
				t.Fatalf("%v rendered; values.schema.json should reject it", bad.args())
			}
			msg := err.Error()
			if !strings.Contains(msg, "schema") || !strings.Contains(msg, tc.want) {
				t.Fatalf("%v failed, but not by the schema naming %q:\n%s", bad.args(), tc.want, msg)
			}
		})
	}
}

// Config keys the chart sets itself; values.schema.json leaves them out.
var chartOwnedConfigKeys = []string{"server.listenAddress", "server.tls", "server.auth", "kube", "notify.slack"}

// TestSchemaMirrorsConfig keeps values.schema.json's config in step with
// internal/config: every key the config file takes is settable through
// values (except those the chart owns), and every key the schema allows is
// one config.Parse accepts (it rejects unknown keys).
func TestSchemaMirrorsConfig(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(repoPath(t, "helm", "smartscale", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	resolve := func(s map[string]any) map[string]any {
		for {
			ref, ok := s["$ref"].(string)
			if !ok {
				return s
			}
			name, ok := strings.CutPrefix(ref, "#/definitions/")
			if !ok {
				t.Fatalf("unsupported $ref %q", ref)
			}
			s, _ = dig(schema, "definitions", name).(map[string]any)
		}
	}
	var walk func(path string, typ reflect.Type, s map[string]any)
	walk = func(path string, typ reflect.Type, s map[string]any) {
		s = resolve(s)
		switch typ.Kind() {
		case reflect.Slice:
			items, _ := s["items"].(map[string]any)
			if items == nil {
				t.Errorf("%s: schema has no items", path)
				return
			}
			walk(path+"[]", typ.Elem(), items)
			return
		case reflect.Struct:
		default:
			return
		}
		if s["additionalProperties"] != false {
			t.Errorf("%s: schema allows unknown keys, which config.Parse rejects", path)
		}
		props, _ := s["properties"].(map[string]any)
		want := map[string]reflect.Type{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			key := strings.TrimPrefix(path+"."+tag, "config.")
			if slices.Contains(chartOwnedConfigKeys, key) {
				if _, ok := props[tag]; ok {
					t.Errorf("%s is set by the chart; values.schema.json must not accept it", key)
				}
				continue
			}
			want[tag] = f.Type
		}
		for tag, ft := range want {
			sub, ok := props[tag].(map[string]any)
			if !ok {
				t.Errorf("config key %s.%s is missing from values.schema.json", path, tag)
				continue
			}
			walk(path+"."+tag, ft, sub)
		}
		for tag := range props {
			if _, ok := want[tag]; !ok {
				t.Errorf("values.schema.json allows %s.%s, which internal/config does not know", path, tag)
			}
		}
	}
	root, _ := dig(schema, "definitions", "config").(map[string]any)
	if root == nil {
		t.Fatal("values.schema.json has no definitions/config")
	}
	walk("config", reflect.TypeFor[config.Config](), root)
}
