// Package helmtest checks the SmartScale chart, its dashboards, the
// monitoring-stack values and the GitOps manifests with the real tools:
// helm (lint, template, values.schema.json), a real kube-apiserver with the
// prometheus-operator and Flux CRDs (kubectl apply --dry-run=server), a live
// SmartScale /metrics, Prometheus' PromQL parser, amtool and
// internal/config.Parse. Binaries come pinned from the tool cache (`make
// tools`).
package helmtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/smartscale/smartscale/e2e/stack"
)

// The release the tests render: the name and namespace alertmanager/alertmanager.yml
// posts to (http://smartscale.smartscale.svc:8080/v1/alerts).
const (
	releaseName      = "smartscale"
	releaseNamespace = "smartscale"
)

// repoRoot is the repository's top folder, found from this file's location.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func repoPath(t testing.TB, parts ...string) string {
	return filepath.Join(append([]string{repoRoot(t)}, parts...)...)
}

func chartDir(t testing.TB) string { return repoPath(t, "helm", "smartscale") }

func productionValues(t testing.TB) string {
	return repoPath(t, "helm", "smartscale", "values-production.yaml")
}

func toolPath(t testing.TB, name string) string {
	t.Helper()
	p, err := stack.ToolPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// helmCmd runs the pinned helm with its cache, config and data homes in a
// temporary folder, so a test never reads or writes the user's helm setup.
func helmCmd(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(toolPath(t, "helm"), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HELM_NO_PLUGINS=1",
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// renderOpts selects values for `helm template`.
type renderOpts struct {
	files []string // -f
	sets  []string // --set
}

func (o renderOpts) args() []string {
	var a []string
	for _, f := range o.files {
		a = append(a, "-f", f)
	}
	for _, s := range o.sets {
		a = append(a, "--set", s)
	}
	return a
}

// templateRaw runs helm template and returns its YAML stream.
func templateRaw(t testing.TB, o renderOpts) (string, error) {
	t.Helper()
	args := append([]string{"template", releaseName, chartDir(t), "--namespace", releaseNamespace}, o.args()...)
	out, errOut, err := helmCmd(t, args...)
	if err != nil {
		return "", fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, errOut)
	}
	return out, nil
}

// object is one rendered manifest, decoded as JSON would be.
type object map[string]any

func (o object) kind() string { return str(o["kind"]) }
func (o object) name() string { return str(dig(o, "metadata", "name")) }
func (o object) labels() map[string]string {
	return stringMap(dig(o, "metadata", "labels"))
}

// rendered is what one `helm template` produced.
type rendered struct {
	yaml    string
	objects []object
}

// byKind returns the objects of a kind, in rendering order.
func (r rendered) byKind(kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the single object of a kind and name ("" matches any name).
func (r rendered) one(t testing.TB, kind, name string) object {
	t.Helper()
	var found []object
	for _, o := range r.byKind(kind) {
		if name == "" || o.name() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q, rendered %d", kind, name, len(found))
	}
	return found[0]
}

func render(t testing.TB, o renderOpts) rendered {
	t.Helper()
	raw, err := templateRaw(t, o)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeStream(raw)
	if err != nil {
		t.Fatalf("decode helm template output: %v", err)
	}
	return rendered{yaml: raw, objects: objs}
}

// decodeStream splits a multi-document YAML stream into objects, skipping
// empty documents.
func decodeStream(s string) ([]object, error) {
	var out []object
	for i, doc := range splitDocs(s) {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(o) == 0 {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

func splitDocs(s string) []string {
	var docs []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.TrimRight(line, " \t\r\n") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.String())
}

// dig walks nested maps (and list indexes given as int).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if o, ok2 := v.(object); ok2 {
					m = o
				} else {
					return nil
				}
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		out[k] = fmt.Sprint(x)
	}
	return out
}

// readYAMLFile decodes one YAML document into a generic map.
func readYAMLFile(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// globNames returns the base names of the files matching pattern in dir.
func globNames(t testing.TB, dir, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	sort.Strings(names)
	return names
}

// runTool runs a binary and returns its combined output.
func runTool(bin string, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), fmt.Errorf("%s %s: exit %d", filepath.Base(bin), strings.Join(args, " "), ee.ExitCode())
		}
		return string(out), fmt.Errorf("%s: %w", filepath.Base(bin), err)
	}
	return string(out), nil
}

// yamlMarshal encodes an object back to YAML.
func yamlMarshal(o object) (string, error) {
	b, err := yaml.Marshal(map[string]any(o))
	return string(b), err
}

// yamlUnmarshal decodes YAML as JSON would (numbers as float64).
func yamlUnmarshal(b []byte, v any) error { return yaml.Unmarshal(b, v) }
