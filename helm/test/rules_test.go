package helmtest

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestChartRulesInSyncWithRulesDir fails while helm/smartscale/rules/ (the
// copy Helm can read) differs from rules/ in any byte or file.
func TestChartRulesInSyncWithRulesDir(t *testing.T) {
	t.Parallel()
	src, dst := repoPath(t, "rules"), repoPath(t, "helm", "smartscale", "rules")
	want, got := globNames(t, src, "*.yaml"), globNames(t, dst, "*.yaml")
	if !slices.Equal(want, got) {
		t.Fatalf("helm/smartscale/rules has %v, rules/ has %v: run `make helm-sync`", got, want)
	}
	for _, name := range want {
		a, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("helm/smartscale/rules/%s differs from rules/%s: run `make helm-sync`", name, name)
		}
	}
}

// ruleManifests reads every PrometheusRule in rules/*.yaml, keyed by
// "file/name".
func ruleManifests(t testing.TB) map[string]object {
	t.Helper()
	out := map[string]object{}
	for _, name := range globNames(t, repoPath(t, "rules"), "*.yaml") {
		b, err := os.ReadFile(repoPath(t, "rules", name))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeStream(string(b))
		if err != nil {
			t.Fatalf("rules/%s: %v", name, err)
		}
		for _, o := range objs {
			if o.kind() == "PrometheusRule" {
				out[name+"/"+o.name()] = o
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no PrometheusRule in rules/")
	}
	return out
}

// TestRenderedPrometheusRulesMatchRulesDir: the chart's PrometheusRules
// carry exactly the groups of rules/, one per manifest, spec for spec.
func TestRenderedPrometheusRulesMatchRulesDir(t *testing.T) {
	t.Parallel()
	want := ruleManifests(t)
	r := render(t, renderOpts{})
	// Release "smartscale" keeps the manifests' own names (smartscale-<x>).
	got := map[string]object{}
	for _, o := range r.byKind("PrometheusRule") {
		src := strings.TrimPrefix(str(dig(o, "metadata", "annotations", "smartscale.io/source")), "rules/")
		got[src+"/"+o.name()] = o
	}
	for key, m := range want {
		o, ok := got[key]
		if !ok {
			t.Errorf("rules/%s is not rendered by the chart: run `make helm-sync`", key)
			continue
		}
		if !reflect.DeepEqual(o["spec"], m["spec"]) {
			t.Errorf("the chart's PrometheusRule %s differs from rules/%s: run `make helm-sync`", o.name(), key)
		}
		if o.labels()["app.kubernetes.io/part-of"] != "smartscale" {
			t.Errorf("PrometheusRule %s lacks app.kubernetes.io/part-of=smartscale (the monitoring stack's ruleSelector)", o.name())
		}
	}
	if len(r.byKind("PrometheusRule")) != len(want) {
		t.Errorf("the chart renders %d PrometheusRules, rules/ has %d", len(r.byKind("PrometheusRule")), len(want))
	}
}

// TestGitOpsRulesListEveryRulesFile: the Flux Kustomization's file list is
// rules/*.yaml, no more, no less.
func TestGitOpsRulesListEveryRulesFile(t *testing.T) {
	t.Parallel()
	k := readYAMLFile(t, repoPath(t, "helm", "gitops", "rules", "kustomization.yaml"))
	var got []string
	for _, r := range list(k["resources"]) {
		p := str(r)
		if filepath.Clean(filepath.Join(repoPath(t, "helm", "gitops", "rules"), p)) != repoPath(t, "rules", filepath.Base(p)) {
			t.Errorf("resource %s is not a file of rules/", p)
		}
		got = append(got, filepath.Base(p))
	}
	slices.Sort(got)
	if want := globNames(t, repoPath(t, "rules"), "*.yaml"); !slices.Equal(got, want) {
		t.Fatalf("helm/gitops/rules/kustomization.yaml lists %v, rules/ has %v", got, want)
	}
}

// kustomize builds a folder with kubectl's kustomize the way Flux does:
// files may come from anywhere in the repository.
func kustomize(t testing.TB, dir string) []object {
	t.Helper()
	out, err := runTool(toolPath(t, "kubectl"), nil, "kustomize", "--load-restrictor", "LoadRestrictionsNone", dir)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	objs, err := decodeStream(out)
	if err != nil {
		t.Fatalf("kustomize output of %s: %v", dir, err)
	}
	return objs
}

// TestGitOpsKustomizationsBuild builds the rules and Alertmanager
// kustomizations and checks they carry rules/ and alertmanager/ unchanged.
func TestGitOpsKustomizationsBuild(t *testing.T) {
	t.Parallel()
	t.Run("rules", func(t *testing.T) {
		want := ruleManifests(t)
		got := kustomize(t, repoPath(t, "helm", "gitops", "rules"))
		if len(got) != len(want) {
			t.Fatalf("kustomize built %d objects, rules/ has %d PrometheusRules", len(got), len(want))
		}
		for _, o := range got {
			var src object
			for _, m := range want {
				if m.name() == o.name() {
					src = m
				}
			}
			if src == nil {
				t.Errorf("kustomize built %s %s, not in rules/", o.kind(), o.name())
				continue
			}
			if !reflect.DeepEqual(o["spec"], src["spec"]) {
				t.Errorf("PrometheusRule %s: spec differs from rules/", o.name())
			}
			if o.labels()["app.kubernetes.io/part-of"] != "smartscale" {
				t.Errorf("PrometheusRule %s lacks app.kubernetes.io/part-of=smartscale", o.name())
			}
		}
	})
	t.Run("alertmanager", func(t *testing.T) {
		got := kustomize(t, repoPath(t, "helm", "gitops", "alertmanager"))
		if len(got) != 1 || got[0].kind() != "Secret" {
			t.Fatalf("want one Secret, built %d objects", len(got))
		}
		data := stringMap(got[0]["data"])
		for key, file := range map[string]string{
			"alertmanager.yaml": repoPath(t, "alertmanager", "alertmanager.yml"),
			"smartscale.tmpl":   repoPath(t, "alertmanager", "templates", "smartscale.tmpl"),
		} {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			decoded, err := base64.StdEncoding.DecodeString(data[key])
			if err != nil {
				t.Fatalf("Secret key %s: %v", key, err)
			}
			if !bytes.Equal(decoded, b) {
				t.Errorf("Secret key %s differs from %s", key, file)
			}
		}
	})
}
