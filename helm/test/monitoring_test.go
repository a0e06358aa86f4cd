package helmtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func monitoringValues(t testing.TB) map[string]any {
	return readYAMLFile(t, repoPath(t, "helm", "monitoring", "values.yaml"))
}

// selector turns a LabelSelector from values into one that matches labels.
func selector(t testing.TB, v any) labels.Selector {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var ls metav1.LabelSelector
	if err := json.Unmarshal(b, &ls); err != nil {
		t.Fatalf("label selector %s: %v", b, err)
	}
	s, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		t.Fatalf("label selector %s: %v", b, err)
	}
	return s
}

// TestMonitoringStackPicksUpSmartScale: the Prometheus and Alertmanager
// that helm/monitoring/values.yaml configures select the chart's and the
// GitOps objects, and Grafana's sidecar loads the dashboards.
func TestMonitoringStackPicksUpSmartScale(t *testing.T) {
	t.Parallel()
	mv := monitoringValues(t)
	ps := dig(mv, "prometheus", "prometheusSpec")
	r := render(t, renderOpts{})

	// With NilUsesHelmValues true, kube-prometheus-stack replaces an empty
	// selector by release=<its release>, which no SmartScale object carries.
	for _, k := range []string{"ruleSelectorNilUsesHelmValues", "serviceMonitorSelectorNilUsesHelmValues"} {
		if dig(ps, k) != false {
			t.Errorf("prometheusSpec.%s must be false", k)
		}
	}
	rules := selector(t, dig(ps, "ruleSelector"))
	if rules.Empty() {
		t.Error("ruleSelector selects everything; it should name SmartScale's (and the stack's own) rules")
	}
	gitopsRules := kustomize(t, repoPath(t, "helm", "gitops", "rules"))
	for _, o := range append(r.byKind("PrometheusRule"), gitopsRules...) {
		if !rules.Matches(labels.Set(o.labels())) {
			t.Errorf("ruleSelector %s does not select PrometheusRule %s %v", rules, o.name(), o.labels())
		}
	}
	// kube-prometheus-stack's own rules carry part-of=kube-prometheus-stack.
	if !rules.Matches(labels.Set{"app.kubernetes.io/part-of": "kube-prometheus-stack"}) {
		t.Errorf("ruleSelector %s drops kube-prometheus-stack's own rules", rules)
	}
	sm := selector(t, dig(ps, "serviceMonitorSelector"))
	if o := r.one(t, "ServiceMonitor", ""); !sm.Matches(labels.Set(o.labels())) {
		t.Errorf("serviceMonitorSelector %s does not select the chart's ServiceMonitor", sm)
	}

	am := dig(mv, "alertmanager", "alertmanagerSpec")
	amc := selector(t, dig(am, "alertmanagerConfigSelector"))
	if o := r.one(t, "AlertmanagerConfig", ""); !amc.Matches(labels.Set(o.labels())) {
		t.Errorf("alertmanagerConfigSelector %s does not select the chart's AlertmanagerConfig", amc)
	}
	// The scaling alerts carry no namespace label: the operator's default
	// OnNamespace strategy would add namespace="<ns>" to the route and
	// nothing would match it.
	if got := str(dig(am, "alertmanagerConfigMatcherStrategy", "type")); got != "None" {
		t.Errorf("alertmanagerConfigMatcherStrategy.type = %q, want None", got)
	}

	side := dig(mv, "grafana", "sidecar", "dashboards")
	if dig(side, "enabled") != true {
		t.Error("grafana.sidecar.dashboards is not enabled")
	}
	if ns := str(dig(side, "searchNamespace")); ns != "ALL" && !strings.Contains(ns, releaseNamespace) {
		t.Errorf("the dashboard sidecar searches %q, not the release namespace", ns)
	}
	label, value := str(dig(side, "label")), str(dig(side, "labelValue"))
	var dashboards int
	for _, cm := range r.byKind("ConfigMap") {
		if cm.labels()[label] == value {
			dashboards++
		}
	}
	if want := len(globNames(t, repoPath(t, "helm", "smartscale", "dashboards"), "*.json")); dashboards != want {
		t.Errorf("the sidecar (%s=%q) finds %d dashboard ConfigMaps, want %d", label, value, dashboards, want)
	}
}

// TestMonitoringValuesFollowTheSeed checks the settings the seed design
// asks of the monitoring stack.
func TestMonitoringValuesFollowTheSeed(t *testing.T) {
	t.Parallel()
	mv := monitoringValues(t)
	ps := dig(mv, "prometheus", "prometheusSpec")
	for path, want := range map[string]string{
		"scrapeInterval": "15s", "evaluationInterval": "15s", "retention": "7d",
	} {
		if got := str(dig(ps, path)); got != want {
			t.Errorf("prometheusSpec.%s = %q, want %q", path, got, want)
		}
	}
	if str(dig(ps, "retentionSize")) == "" {
		t.Error("prometheusSpec.retentionSize is not set: the master's disk is small")
	}
	for _, k := range []string{"nodeExporter", "kubeStateMetrics"} {
		if dig(mv, k, "enabled") != true {
			t.Errorf("%s is not enabled", k)
		}
	}
	for _, svc := range [][]any{{"prometheus", "service", "type"}, {"grafana", "service", "type"}, {"alertmanager", "service", "type"}} {
		if got := str(dig(mv, svc...)); got != "ClusterIP" {
			t.Errorf("%v = %q: Prometheus, Grafana and Alertmanager stay inside the VPC (ClusterIP)", svc, got)
		}
	}
	for _, k := range [][]any{{"prometheus", "prometheusSpec", "resources"}, {"alertmanager", "alertmanagerSpec", "resources"},
		{"grafana", "resources"}, {"kube-state-metrics", "resources"}, {"prometheus-node-exporter", "resources"}} {
		if stringMap(dig(mv, append(k, "limits")...))["memory"] == "" {
			t.Errorf("%v has no memory limit", k)
		}
	}
}

// labelTokenRE finds kube-state-metrics node-label series labels in PromQL.
var labelTokenRE = regexp.MustCompile(`\blabel_[a-z0-9_]+\b`)

// TestKubeStateMetricsExportsTheNodeLabelsUsed: every label_<x> that rules/
// or the dashboards read is a node label the monitoring values allow-list
// in kube-state-metrics (it exports none by default).
func TestKubeStateMetricsExportsTheNodeLabelsUsed(t *testing.T) {
	t.Parallel()
	exported := map[string]bool{}
	for _, entry := range list(dig(monitoringValues(t), "kube-state-metrics", "metricLabelsAllowlist")) {
		res, keysPart, ok := strings.Cut(str(entry), "=")
		if !ok || res != "nodes" {
			continue
		}
		for _, k := range strings.Split(strings.Trim(keysPart, "[]"), ",") {
			// kube-state-metrics: label_ + the key with every character
			// outside [a-zA-Z0-9_] replaced by _.
			exported["label_"+regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(strings.TrimSpace(k), "_")] = true
		}
	}
	var exprs []string
	for _, m := range ruleManifests(t) {
		for _, g := range list(dig(m, "spec", "groups")) {
			for _, r := range list(dig(g, "rules")) {
				exprs = append(exprs, str(dig(r, "expr")))
			}
		}
	}
	for _, d := range loadDashboards(t) {
		for _, q := range d.queries() {
			exprs = append(exprs, q.expr)
		}
	}
	used := 0
	for _, e := range exprs {
		for _, tok := range labelTokenRE.FindAllString(e, -1) {
			if slices.Contains([]string{"label_replace", "label_join", "label_values"}, tok) {
				continue
			}
			used++
			if !exported[tok] {
				t.Errorf("%s is read in %q but kube-state-metrics does not export it (allow-list: %v)", tok, e, keys(exported))
			}
		}
	}
	if used == 0 {
		t.Fatal("no node label read by rules/ or the dashboards")
	}

	// rules/recording.yaml joins node-exporter to Nodes on "node".
	found := false
	for _, rl := range list(dig(monitoringValues(t), "prometheus-node-exporter", "prometheus", "monitor", "relabelings")) {
		if str(dig(rl, "targetLabel")) == "node" && slices.Contains(list(dig(rl, "sourceLabels")), any("__meta_kubernetes_pod_node_name")) {
			found = true
		}
	}
	if !found {
		t.Error("node-exporter series get no node label (relabel __meta_kubernetes_pod_node_name to node)")
	}
}

// TestAlertmanagerRunsTheRepositoryConfig: the monitoring stack's
// Alertmanager runs alertmanager/alertmanager.yml from the Secret the GitOps
// kustomization builds, with every secret file it names mounted, and loads
// its templates where the operator puts the config. amtool checks the
// configuration in that exact layout.
func TestAlertmanagerRunsTheRepositoryConfig(t *testing.T) {
	t.Parallel()
	am := dig(monitoringValues(t), "alertmanager", "alertmanagerSpec")
	built := kustomize(t, repoPath(t, "helm", "gitops", "alertmanager"))
	if len(built) != 1 {
		t.Fatalf("helm/gitops/alertmanager builds %d objects, want the config Secret", len(built))
	}
	secret := built[0]
	if dig(am, "useExistingSecret") != true || str(dig(am, "configSecret")) != secret.name() {
		t.Errorf("alertmanagerSpec runs configSecret %q (useExistingSecret %v), the GitOps Secret is %q",
			dig(am, "configSecret"), dig(am, "useExistingSecret"), secret.name())
	}
	secretData := map[string][]byte{}
	for k, v := range stringMap(secret["data"]) {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		secretData[k] = b
	}
	cfgBytes := secretData["alertmanager.yaml"]
	var cfg map[string]any
	if err := yamlUnmarshal(cfgBytes, &cfg); err != nil {
		t.Fatal(err)
	}

	// Every *_file under /etc/alertmanager/secrets/<name>/ needs Secret <name> mounted.
	mounted := list(dig(am, "secrets"))
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if p, ok := val.(string); ok && strings.HasSuffix(k, "_file") {
					rest, ok := strings.CutPrefix(p, "/etc/alertmanager/secrets/")
					name, _, _ := strings.Cut(rest, "/")
					if !ok || !slices.Contains(mounted, any(name)) {
						t.Errorf("alertmanager.yml %s: %s is not in a Secret alertmanagerSpec.secrets mounts (%v)", k, p, mounted)
					}
				}
				walk(val)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(cfg)

	// The operator runs /etc/alertmanager/config_out/alertmanager.env.yaml;
	// lay the files out as the pod sees them and let amtool load it.
	layout := func(withMounts bool) string {
		root := t.TempDir()
		out := filepath.Join(root, "etc/alertmanager/config_out")
		writeFile(t, filepath.Join(out, "alertmanager.env.yaml"), cfgBytes)
		if withMounts {
			volumes := map[string]any{}
			for _, v := range list(dig(am, "volumes")) {
				volumes[str(dig(v, "name"))] = v
			}
			for _, m := range list(dig(am, "volumeMounts")) {
				v := volumes[str(dig(m, "name"))]
				if str(dig(v, "secret", "secretName")) != secret.name() {
					t.Fatalf("volume %s mounts Secret %q, not the config Secret", dig(m, "name"), dig(v, "secret", "secretName"))
				}
				for _, it := range list(dig(v, "secret", "items")) {
					data, ok := secretData[str(dig(it, "key"))]
					if !ok {
						t.Fatalf("volume %s mounts key %s, which the config Secret lacks", dig(m, "name"), dig(it, "key"))
					}
					writeFile(t, filepath.Join(root, str(dig(m, "mountPath")), str(dig(it, "path"))), data)
				}
			}
		}
		return filepath.Join(out, "alertmanager.env.yaml")
	}
	// Alertmanager resolves relative template globs against the config
	// file's folder; do the same to see which templates it would load.
	loaded := func(configFile string) []string {
		var files []string
		for _, pat := range list(cfg["templates"]) {
			p := str(pat)
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(configFile), p)
			}
			m, err := filepath.Glob(p)
			if err != nil {
				t.Fatalf("template glob %s: %v", p, err)
			}
			for _, f := range m {
				files = append(files, filepath.Base(f))
			}
		}
		return files
	}
	withMounts := layout(true)
	if got := loaded(withMounts); !slices.Contains(got, "smartscale.tmpl") {
		t.Errorf("in the operator's layout alertmanager.yml's templates %v load %v, not smartscale.tmpl", cfg["templates"], got)
	}
	// Without the mount the templates would be silently missing: the reason it exists.
	if got := loaded(layout(false)); len(got) != 0 {
		t.Errorf("the templates load even without the config_out mount (%v); drop the mount", got)
	}
	// amtool parses the configuration and the templates it loads.
	if out, err := runTool(toolPath(t, "amtool"), nil, "check-config", withMounts); err != nil || !strings.Contains(out, "SUCCESS") {
		t.Errorf("amtool check-config in the operator's layout: %v\n%s", err, out)
	}
}

// TestOneRouteToTheWebhook: with the production values the chart renders no
// AlertmanagerConfig, because alertmanager/alertmanager.yml already posts to
// this release's Service; the chart's AlertmanagerConfig (default values)
// routes and inhibits exactly like alertmanager.yml.
func TestOneRouteToTheWebhook(t *testing.T) {
	t.Parallel()
	var cfg map[string]any
	b, err := os.ReadFile(repoPath(t, "alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yamlUnmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	var receiver, route map[string]any
	for _, rc := range list(cfg["receivers"]) {
		if str(dig(rc, "name")) == "smartscale" {
			receiver, _ = rc.(map[string]any)
		}
	}
	for _, rt := range list(dig(cfg, "route", "routes")) {
		if str(dig(rt, "receiver")) == "smartscale" {
			route, _ = rt.(map[string]any)
		}
	}
	if receiver == nil || route == nil {
		t.Fatal("alertmanager.yml has no smartscale receiver and route")
	}
	hook := dig(receiver, "webhook_configs", 0)

	prod := render(t, renderOpts{files: []string{productionValues(t)}})
	if n := len(prod.byKind("AlertmanagerConfig")); n != 0 {
		t.Errorf("production values render %d AlertmanagerConfigs next to alertmanager.yml's route: notifications would arrive twice", n)
	}
	svc := prod.one(t, "Service", "")
	wantURL := fmt.Sprintf("http://%s.%s.svc:%s/v1/alerts", svc.name(), releaseNamespace, fmtNumber(dig(svc, "spec", "ports", 0, "port")))
	if got := str(dig(hook, "url")); got != wantURL {
		t.Errorf("alertmanager.yml posts to %s; the production release serves %s", got, wantURL)
	}

	amc := render(t, renderOpts{}).one(t, "AlertmanagerConfig", "")
	spec := dig(amc, "spec")
	if got := str(dig(spec, "receivers", 0, "webhookConfigs", 0, "url")); got != wantURL {
		t.Errorf("the AlertmanagerConfig posts to %s, want %s", got, wantURL)
	}
	for _, c := range []struct{ am, amc any }{
		{route["group_by"], dig(spec, "route", "groupBy")},
		{route["group_wait"], dig(spec, "route", "groupWait")},
		{route["group_interval"], dig(spec, "route", "groupInterval")},
		{route["repeat_interval"], dig(spec, "route", "repeatInterval")},
		{dig(hook, "max_alerts"), dig(spec, "receivers", 0, "webhookConfigs", 0, "maxAlerts")},
		{dig(hook, "send_resolved"), dig(spec, "receivers", 0, "webhookConfigs", 0, "sendResolved")},
		{matcherStrings(list(route["matchers"])), crdMatchers(list(dig(spec, "route", "matchers")))},
	} {
		if fmt.Sprint(c.am) != fmt.Sprint(c.amc) {
			t.Errorf("alertmanager.yml has %v, the AlertmanagerConfig %v", c.am, c.amc)
		}
	}
	if got := str(dig(spec, "receivers", 0, "webhookConfigs", 0, "httpConfig", "authorization", "type")); got != "Bearer" {
		t.Errorf("the AlertmanagerConfig authorizes with %q, want Bearer", got)
	}
	var want, got []string
	for _, ir := range list(cfg["inhibit_rules"]) {
		want = append(want, fmt.Sprint(matcherStrings(list(dig(ir, "source_matchers"))), matcherStrings(list(dig(ir, "target_matchers"))), dig(ir, "equal")))
	}
	for _, ir := range list(dig(spec, "inhibitRules")) {
		got = append(got, fmt.Sprint(crdMatchers(list(dig(ir, "sourceMatch"))), crdMatchers(list(dig(ir, "targetMatch"))), dig(ir, "equal")))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("inhibit rules differ:\nalertmanager.yml    %v\nAlertmanagerConfig  %v", want, got)
	}
}

var matcherRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$`)

// matcherStrings canonicalises Alertmanager matcher strings (name="v").
func matcherStrings(ms []any) []string {
	var out []string
	for _, m := range ms {
		p := matcherRE.FindStringSubmatch(str(m))
		if p == nil {
			out = append(out, "unparsed:"+str(m))
			continue
		}
		out = append(out, p[1]+p[2]+p[3])
	}
	slices.Sort(out)
	return out
}

// crdMatchers canonicalises AlertmanagerConfig matchers the same way.
func crdMatchers(ms []any) []string {
	var out []string
	for _, m := range ms {
		op := str(dig(m, "matchType"))
		if op == "" {
			op = "="
			if dig(m, "regex") == true {
				op = "=~"
			}
		}
		out = append(out, str(dig(m, "name"))+op+str(dig(m, "value")))
	}
	slices.Sort(out)
	return out
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
