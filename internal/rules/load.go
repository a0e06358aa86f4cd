// Package rules reads SmartScale's rules/ folder — PrometheusRule manifests
// in the prometheus-operator format — exports them as plain Prometheus rule
// files, and lints them against the label contract the webhook reads
// (internal/alert).
//
// Manifests are decoded with yaml.v3 and then strictly into the operator's
// own monitoringv1.PrometheusRule type (whose fields carry JSON tags only),
// so a misspelt field ("anotations", "for_") fails the load instead of
// vanishing on export.
package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"gopkg.in/yaml.v3"
)

// The apiVersion and kind a manifest must have.
const (
	APIVersion = "monitoring.coreos.com/v1"
	Kind       = "PrometheusRule"
)

// Manifest is one PrometheusRule read from a file, with the line of each
// rule so that errors can point at it.
type Manifest struct {
	// Path is the file the manifest came from; several manifests may share
	// one file (YAML documents separated by ---).
	Path string
	Rule monitoringv1.PrometheusRule
	// lines[g][r] is the line of rule r of group g (1-based, 0 if unknown).
	lines [][]int
}

// Line returns the line of rule r of group g in Path, 0 if unknown.
func (m Manifest) Line(g, r int) int {
	if g < len(m.lines) && r < len(m.lines[g]) {
		return m.lines[g][r]
	}
	return 0
}

// LoadDir loads every *.yaml and *.yml file directly in dir, sorted by
// name. Subfolders (rules/tests) are not read. A folder without manifests
// is an error: an empty export would silently drop every rule.
func LoadDir(dir string) ([]Manifest, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read rules folder: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if ext := filepath.Ext(e.Name()); ext == ".yaml" || ext == ".yml" {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(paths)
	ms, err := LoadFiles(paths...)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no PrometheusRule manifests in %s", dir)
	}
	return ms, nil
}

// LoadFiles loads the manifests of the given files, in order.
func LoadFiles(paths ...string) ([]Manifest, error) {
	var out []Manifest
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		ms, err := Parse(p, b)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// Parse decodes every YAML document of one file; each must be a
// PrometheusRule. Empty documents are skipped.
func Parse(path string, data []byte) ([]Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Manifest
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		if len(n.Content) == 0 || n.Content[0].Kind == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		m, err := decodeManifest(path, &n)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		out = append(out, m)
	}
}

func decodeManifest(path string, n *yaml.Node) (Manifest, error) {
	var generic any
	if err := n.Decode(&generic); err != nil {
		return Manifest{}, err
	}
	// Check the kind first, so another kind of manifest is named as such
	// rather than failing on its first unknown field.
	if top, ok := generic.(map[string]any); ok {
		av, _ := top["apiVersion"].(string)
		kind, _ := top["kind"].(string)
		if av != APIVersion || kind != Kind {
			return Manifest{}, fmt.Errorf("apiVersion %q kind %q: want %s %s", av, kind, APIVersion, Kind)
		}
	} else {
		return Manifest{}, fmt.Errorf("want a mapping (a PrometheusRule), got %T", generic)
	}
	// The operator's types have JSON tags only: go through JSON, strictly.
	js, err := json.Marshal(generic)
	if err != nil {
		return Manifest{}, fmt.Errorf("convert to JSON: %w", err)
	}
	var pr monitoringv1.PrometheusRule
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pr); err != nil {
		return Manifest{}, fmt.Errorf("not a valid PrometheusRule: %w", err)
	}
	if pr.Name == "" {
		return Manifest{}, errors.New("metadata.name is empty")
	}
	return Manifest{Path: path, Rule: pr, lines: ruleLines(n)}, nil
}

// ruleLines finds spec.groups[*].rules[*] in the node tree and returns the
// line each rule starts on.
func ruleLines(doc *yaml.Node) [][]int {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	groups := child(child(root, "spec"), "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([][]int, len(groups.Content))
	for i, g := range groups.Content {
		rs := child(g, "rules")
		if rs == nil || rs.Kind != yaml.SequenceNode {
			continue
		}
		for _, r := range rs.Content {
			out[i] = append(out[i], r.Line)
		}
	}
	return out
}

// child returns the value of key in a mapping node, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Alert is one alerting rule with where it came from, for lint and for
// tests that walk every alert (routing tests).
type Alert struct {
	Path        string
	Line        int
	Group       string
	Name        string
	Expr        string
	For         string
	Labels      map[string]string
	Annotations map[string]string
}

// Alerts lists every alerting rule of the manifests, in file order.
func Alerts(ms []Manifest) []Alert {
	var out []Alert
	for _, m := range ms {
		for gi, g := range m.Rule.Spec.Groups {
			for ri, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				out = append(out, newAlert(m.Path, m.Line(gi, ri), g, r))
			}
		}
	}
	return out
}

// newAlert describes rule r of group g. Group labels apply to every rule of
// the group; the rule's own labels win.
func newAlert(path string, line int, g monitoringv1.RuleGroup, r monitoringv1.Rule) Alert {
	labels := make(map[string]string, len(g.Labels)+len(r.Labels))
	maps.Copy(labels, g.Labels)
	maps.Copy(labels, r.Labels)
	a := Alert{
		Path:        path,
		Line:        line,
		Group:       g.Name,
		Name:        r.Alert,
		Expr:        strings.TrimSpace(r.Expr.String()),
		Labels:      labels,
		Annotations: r.Annotations,
	}
	if r.For != nil {
		a.For = string(*r.For)
	}
	return a
}
