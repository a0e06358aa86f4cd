package helmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smartscale/smartscale/e2e/stack"
)

// kubectl runs the pinned kubectl against a stack's API server, with its
// discovery cache in a temporary folder.
type kubectl struct {
	bin, kubeconfig, cacheDir string
}

func newKubectl(t testing.TB, s *stack.Stack) kubectl {
	return kubectl{bin: toolPath(t, "kubectl"), kubeconfig: s.KubeconfigPath, cacheDir: t.TempDir()}
}

func (k kubectl) run(args ...string) (string, error) {
	return runTool(k.bin, nil, append([]string{"--kubeconfig", k.kubeconfig, "--cache-dir", k.cacheDir}, args...)...)
}

func (k kubectl) must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := k.run(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeObjects writes objects' YAML stream to a temporary file.
func writeManifest(t testing.TB, name, yamlStream string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(yamlStream), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestManifestsAcceptedByAPIServer applies everything this folder ships to a
// real kube-apiserver with the pinned prometheus-operator and Flux CRDs
// installed, with --dry-run=server: the API server runs its full
// validation (OpenAPI schemas of the CRDs, CEL rules, defaulting) and
// admission, and stores nothing. Then it installs the chart's RBAC for real
// and asks the API server what the ServiceAccount may do.
func TestManifestsAcceptedByAPIServer(t *testing.T) {
	crds := crdFiles(t)
	s := stack.Start(t, stack.Options{Kube: true})
	k := newKubectl(t, s)

	// Server-side apply: the prometheus-operator CRDs are too large for
	// client-side apply's last-applied annotation (256 KiB).
	var crdNames []string
	for _, f := range crds {
		k.must(t, "apply", "--server-side", "-f", f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeStream(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			crdNames = append(crdNames, "crd/"+o.name())
		}
	}
	k.must(t, append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, crdNames...)...)
	for _, ns := range []string{releaseNamespace, "monitoring", "flux-system"} {
		k.must(t, "create", "namespace", ns)
	}

	manifests := map[string]string{}
	for name, o := range valueSets(t) {
		manifests["chart "+name] = render(t, o).yaml
	}
	for _, dir := range []string{"cluster", "rules", "alertmanager"} {
		out, err := runTool(toolPath(t, "kubectl"), nil, "kustomize", "--load-restrictor", "LoadRestrictionsNone", repoPath(t, "helm", "gitops", dir))
		if err != nil {
			t.Fatalf("kubectl kustomize helm/gitops/%s: %v\n%s", dir, err, out)
		}
		manifests["gitops "+dir] = out
	}

	for name, stream := range manifests {
		t.Run("dry-run "+name, func(t *testing.T) {
			objs, err := decodeStream(stream)
			if err != nil {
				t.Fatal(err)
			}
			out, err := k.run("apply", "--dry-run=server", "-f", writeManifest(t, "manifest", stream))
			if err != nil {
				t.Fatalf("the API server rejected %s: %v\n%s", name, err, out)
			}
			accepted := strings.Count(out, "(server dry run)")
			if accepted != len(objs) {
				t.Fatalf("%d of %d objects accepted:\n%s", accepted, len(objs), out)
			}
			kinds := map[string]bool{}
			for _, o := range objs {
				kinds[o.kind()] = true
			}
			t.Logf("%d objects accepted (%s)", accepted, strings.Join(keys(kinds), ", "))
		})
	}

	t.Run("rbac", func(t *testing.T) { testRBAC(t, k) })
}

// wantRBAC is the issue's least-privilege list, as `kubectl auth can-i
// --list` prints resources: nodes get/list/watch/patch/delete, pods
// list/watch, pods/eviction create, PDBs list/watch, events create/patch.
var wantRBAC = map[string][]string{
	"nodes":                       {"delete", "get", "list", "patch", "watch"},
	"pods":                        {"list", "watch"},
	"pods/eviction":               {"create"},
	"poddisruptionbudgets.policy": {"list", "watch"},
	"events":                      {"create", "patch"},
}

// testRBAC installs the chart's ServiceAccount, ClusterRole and binding and
// compares what the API server grants the ServiceAccount with wantRBAC:
// exactly, for the AWS provider; plus "create nodes" for kwok, whose
// launches are Node objects.
func testRBAC(t *testing.T, k kubectl) {
	sa := fmt.Sprintf("system:serviceaccount:%s:%s", releaseNamespace, releaseName)
	for _, tc := range []struct {
		name   string
		values renderOpts
		extra  map[string][]string
	}{
		{"production (aws)", renderOpts{files: []string{productionValues(t)}}, nil},
		{"default (kwok)", renderOpts{}, map[string][]string{"nodes": {"create"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var docs []string
			for _, o := range render(t, tc.values).objects {
				switch o.kind() {
				case "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
					b, err := yamlMarshal(o)
					if err != nil {
						t.Fatal(err)
					}
					docs = append(docs, b)
				}
			}
			k.must(t, "apply", "-f", writeManifest(t, "rbac", strings.Join(docs, "---\n")))

			want := map[string][]string{}
			for r, v := range wantRBAC {
				want[r] = slices.Clone(v)
			}
			for r, v := range tc.extra {
				want[r] = append(want[r], v...)
				slices.Sort(want[r])
			}
			// What every ServiceAccount may do without any binding (self
			// reviews, cluster trust bundles...) is not the chart's grant.
			baseline := grantedResources(t, k.must(t, "auth", "can-i", "--list", "--as",
				fmt.Sprintf("system:serviceaccount:%s:unbound", releaseNamespace)))
			got := grantedResources(t, k.must(t, "auth", "can-i", "--list", "--as", sa))
			for r, verbs := range baseline {
				got[r] = slices.DeleteFunc(got[r], func(v string) bool { return slices.Contains(verbs, v) })
				if len(got[r]) == 0 {
					delete(got, r)
				}
			}
			for r, verbs := range want {
				if !slices.Equal(got[r], verbs) {
					t.Errorf("%s may %v on %s, want %v", sa, got[r], r, verbs)
				}
			}
			for r, verbs := range got {
				if _, ok := want[r]; !ok {
					t.Errorf("%s may %v on %s, which SmartScale does not need", sa, verbs, r)
				}
			}
			// Spot checks through SubjectAccessReview, the way the API
			// server authorizes requests.
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"create", "pods", "--subresource=eviction", "-A"}, "yes"},
				{[]string{"delete", "pods", "-A"}, "no"},
				{[]string{"get", "secrets", "-A"}, "no"},
				{[]string{"update", "nodes"}, "no"},
			} {
				out, _ := k.run(append([]string{"auth", "can-i", "--as", sa}, c.args...)...)
				// The answer is the last line (warnings may come first).
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if got := strings.TrimSpace(lines[len(lines)-1]); got != c.want {
					t.Errorf("can-i %s: %q, want %q", strings.Join(c.args, " "), got, c.want)
				}
			}
		})
	}
}

// grantedResources parses `kubectl auth can-i --list`: resource -> sorted
// verbs.
func grantedResources(t testing.TB, out string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for i, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 || strings.HasPrefix(f[0], "[") {
			continue
		}
		verbs := strings.Fields(strings.Trim(strings.Join(f[3:], " "), "[]"))
		got[f[0]] = append(got[f[0]], verbs...)
	}
	for r := range got {
		slices.Sort(got[r])
		got[r] = slices.Compact(got[r])
	}
	return got
}
