package helmtest

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smartscale/smartscale/internal/config"
)

// valueSets are the values files every rendering test covers: the chart's
// defaults (the kwok demo) and the production file (AWS).
func valueSets(t testing.TB) map[string]renderOpts {
	return map[string]renderOpts{
		"default":    {},
		"production": {files: []string{productionValues(t)}},
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	for name, o := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// --strict turns lint warnings into failures.
			args := append([]string{"lint", "--strict", chartDir(t), "--namespace", releaseNamespace}, o.args()...)
			out, errOut, err := helmCmd(t, args...)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint did not lint the chart:\n%s", out)
			}
		})
	}
}

// TestTemplateRendersEveryObject renders both values sets and checks that
// each object the issue asks for is there, once.
func TestTemplateRendersEveryObject(t *testing.T) {
	t.Parallel()
	rulesFiles := globNames(t, repoPath(t, "rules"), "*.yaml")
	dashboards := globNames(t, repoPath(t, "helm", "smartscale", "dashboards"), "*.json")
	for name, o := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := render(t, o)
			for _, kind := range []string{"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
				"Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"} {
				r.one(t, kind, "")
			}
			if got := len(r.byKind("PrometheusRule")); got != len(rulesFiles) {
				t.Errorf("%d PrometheusRules rendered, want one per rules/ file (%d)", got, len(rulesFiles))
			}
			var dash int
			for _, cm := range r.byKind("ConfigMap") {
				if cm.labels()["grafana_dashboard"] == "1" {
					dash++
				}
			}
			if dash != len(dashboards) {
				t.Errorf("%d dashboard ConfigMaps, want %d (one per dashboards/*.json)", dash, len(dashboards))
			}
			for _, o := range r.objects {
				if ns := str(dig(o, "metadata", "namespace")); ns != "" && ns != releaseNamespace {
					t.Errorf("%s %s in namespace %q, want the release namespace", o.kind(), o.name(), ns)
				}
			}
		})
	}
}

// TestDeploymentHardening checks the pod spec the issue asks for on both
// values sets.
func TestDeploymentHardening(t *testing.T) {
	t.Parallel()
	for name, o := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := render(t, o)
			d := r.one(t, "Deployment", "")
			if got := dig(d, "spec", "replicas"); got != float64(2) {
				t.Errorf("replicas = %v, want 2", got)
			}
			pod := dig(d, "spec", "template", "spec")
			if dig(pod, "securityContext", "runAsNonRoot") != true {
				t.Error("pod securityContext.runAsNonRoot is not true")
			}
			if got := str(dig(pod, "securityContext", "seccompProfile", "type")); got != "RuntimeDefault" {
				t.Errorf("pod seccompProfile = %q, want RuntimeDefault", got)
			}
			c := dig(pod, "containers", 0)
			sc := dig(c, "securityContext")
			if dig(sc, "readOnlyRootFilesystem") != true || dig(sc, "allowPrivilegeEscalation") != false {
				t.Errorf("container securityContext not read-only / no escalation: %v", sc)
			}
			if drop := list(dig(sc, "capabilities", "drop")); !slices.Contains(drop, any("ALL")) {
				t.Errorf("capabilities.drop = %v, want ALL", drop)
			}
			for _, k := range []string{"requests", "limits"} {
				if res := stringMap(dig(c, "resources", k)); res["memory"] == "" {
					t.Errorf("resources.%s.memory missing: %v", k, res)
				}
			}
			if p := str(dig(c, "livenessProbe", "httpGet", "path")); p != "/healthz" {
				t.Errorf("liveness probe path %q, want /healthz", p)
			}
			if p := str(dig(c, "readinessProbe", "httpGet", "path")); p != "/readyz" {
				t.Errorf("readiness probe path %q, want /readyz", p)
			}
			var topologies []string
			anti := dig(pod, "affinity", "podAntiAffinity")
			for _, term := range list(dig(anti, "requiredDuringSchedulingIgnoredDuringExecution")) {
				topologies = append(topologies, str(dig(term, "topologyKey")))
			}
			for _, term := range list(dig(anti, "preferredDuringSchedulingIgnoredDuringExecution")) {
				topologies = append(topologies, str(dig(term, "podAffinityTerm", "topologyKey")))
			}
			if !slices.Contains(topologies, "topology.kubernetes.io/zone") {
				t.Errorf("no pod anti-affinity across zones: %v", topologies)
			}
			pdb := r.one(t, "PodDisruptionBudget", "")
			if got := dig(pdb, "spec", "minAvailable"); got != float64(1) {
				t.Errorf("PDB minAvailable = %v, want 1", got)
			}
			if sel, want := stringMap(dig(pdb, "spec", "selector", "matchLabels")), stringMap(dig(d, "spec", "selector", "matchLabels")); !mapsEqual(sel, want) {
				t.Errorf("PDB selects %v, the Deployment's pods are %v", sel, want)
			}
			// No secret in the rendered chart, only references.
			if n := len(r.byKind("Secret")); n != 0 {
				t.Errorf("the chart renders %d Secrets; secrets must come from existing Secrets", n)
			}
		})
	}
}

// TestConfigMapIsAValidConfig runs the rendered configuration through the
// same parser `smartscale serve --config` and `smartscale config check` use,
// and checks that the files it names are where the Deployment mounts them.
func TestConfigMapIsAValidConfig(t *testing.T) {
	t.Parallel()
	for name, o := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := render(t, o)
			d := r.one(t, "Deployment", "")
			pod := dig(d, "spec", "template", "spec")
			c := dig(pod, "containers", 0)

			configPath := ""
			for _, a := range list(dig(c, "args")) {
				if v, ok := strings.CutPrefix(str(a), "--config="); ok {
					configPath = v
				}
			}
			if configPath == "" {
				t.Fatalf("container args %v name no --config", dig(c, "args"))
			}
			files := mountedFiles(t, r, pod, c)
			data, ok := files[configPath]
			if !ok {
				t.Fatalf("--config=%s is not a file the pod mounts (mounted: %v)", configPath, keys(files))
			}
			cfg, err := config.Parse(name+" chart ConfigMap", []byte(data))
			if err != nil {
				t.Fatalf("rendered config is invalid:\n%v\n--- config ---\n%s", err, data)
			}

			// The listen port is the container port the Service targets.
			port := strings.TrimPrefix(cfg.Server.ListenAddress, ":")
			if cp := dig(c, "ports", 0, "containerPort"); fmtNumber(cp) != port {
				t.Errorf("server.listenAddress %q, containerPort %v", cfg.Server.ListenAddress, cp)
			}
			if !cfg.Kube.InCluster {
				t.Error("kube.inCluster is false inside the cluster")
			}
			// Secret files: each path the config names is a key of a Secret volume.
			secrets := mountedSecretFiles(pod, c)
			if _, ok := secrets[cfg.Server.Auth.BearerTokenFile]; !ok {
				t.Errorf("server.auth.bearerTokenFile %q is no mounted Secret key (mounted: %v)", cfg.Server.Auth.BearerTokenFile, keys(secrets))
			}
			if f := cfg.Notify.Slack.WebhookURLFile; f != "" {
				if _, ok := secrets[f]; !ok {
					t.Errorf("notify.slack.webhookURLFile %q is no mounted Secret key (mounted: %v)", f, keys(secrets))
				}
			}
		})
	}
}

// mountedFiles maps each file path the container sees from a ConfigMap
// volume to its rendered content.
func mountedFiles(t testing.TB, r rendered, pod, c any) map[string]string {
	t.Helper()
	volumes := map[string]any{}
	for _, v := range list(dig(pod, "volumes")) {
		volumes[str(dig(v, "name"))] = v
	}
	out := map[string]string{}
	for _, m := range list(dig(c, "volumeMounts")) {
		v := volumes[str(dig(m, "name"))]
		cmName := str(dig(v, "configMap", "name"))
		if cmName == "" {
			continue
		}
		data := stringMap(dig(r.one(t, "ConfigMap", cmName), "data"))
		mountPath := str(dig(m, "mountPath"))
		if sub := str(dig(m, "subPath")); sub != "" {
			out[mountPath] = data[sub]
			continue
		}
		for k, val := range data {
			out[path.Join(mountPath, k)] = val
		}
	}
	return out
}

// mountedSecretFiles maps each file path the container sees from a Secret
// volume to "secret/key".
func mountedSecretFiles(pod, c any) map[string]string {
	volumes := map[string]any{}
	for _, v := range list(dig(pod, "volumes")) {
		volumes[str(dig(v, "name"))] = v
	}
	out := map[string]string{}
	for _, m := range list(dig(c, "volumeMounts")) {
		v := volumes[str(dig(m, "name"))]
		secret := str(dig(v, "secret", "secretName"))
		if secret == "" {
			continue
		}
		for _, it := range list(dig(v, "secret", "items")) {
			out[path.Join(str(dig(m, "mountPath")), str(dig(it, "path")))] = secret + "/" + str(dig(it, "key"))
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// fmtNumber prints a JSON number the way it appears in an address.
func fmtNumber(v any) string {
	f, ok := v.(float64)
	if !ok {
		return ""
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
