package helmtest

import (
	"github.com/smartscale/smartscale/internal/notify"
	"github.com/smartscale/smartscale/internal/scaler"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/memory"

	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/alert/alerttest"
	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/server"
)

// dashboard is one Grafana dashboard JSON from the chart.
type dashboard struct {
	file string
	json map[string]any
}

func (d dashboard) uid() string { return str(d.json["uid"]) }

func loadDashboards(t testing.TB) []dashboard {
	t.Helper()
	var out []dashboard
	for _, name := range globNames(t, repoPath(t, "helm", "smartscale", "dashboards"), "*.json") {
		b, err := os.ReadFile(repoPath(t, "helm", "smartscale", "dashboards", name))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("dashboards/%s: %v", name, err)
		}
		out = append(out, dashboard{file: name, json: m})
	}
	if len(out) == 0 {
		t.Fatal("no dashboards in helm/smartscale/dashboards")
	}
	return out
}

// panels returns every panel, rows' nested panels included.
func (d dashboard) panels() []map[string]any {
	var out []map[string]any
	var walk func([]any)
	walk = func(ps []any) {
		for _, p := range ps {
			m, ok := p.(map[string]any)
			if !ok {
				continue
			}
			out = append(out, m)
			walk(list(m["panels"]))
		}
	}
	walk(list(d.json["panels"]))
	return out
}

// variables returns the names of the dashboard's template variables.
func (d dashboard) variables() []string {
	var out []string
	for _, v := range list(dig(d.json, "templating", "list")) {
		out = append(out, str(dig(v, "name")))
	}
	return out
}

// query is one PromQL expression a dashboard runs, with where it is.
type query struct {
	where string
	expr  string
}

// queries returns every PromQL expression of the dashboard: panel targets,
// query variables (label_values / query_result) and annotation queries.
func (d dashboard) queries() []query {
	var out []query
	for _, p := range d.panels() {
		for i, tg := range list(p["targets"]) {
			if e := str(dig(tg, "expr")); e != "" {
				out = append(out, query{fmt.Sprintf("%s panel %q target %d", d.file, str(p["title"]), i), e})
			}
		}
	}
	for _, v := range list(dig(d.json, "templating", "list")) {
		if str(dig(v, "type")) != "query" {
			continue
		}
		q := str(dig(v, "query", "query"))
		if q == "" {
			q = str(dig(v, "query"))
		}
		if e := variableExpr(q); e != "" {
			out = append(out, query{fmt.Sprintf("%s variable %q", d.file, str(dig(v, "name"))), e})
		}
	}
	for _, a := range list(dig(d.json, "annotations", "list")) {
		if e := str(dig(a, "expr")); e != "" {
			out = append(out, query{fmt.Sprintf("%s annotation %q", d.file, str(dig(a, "name"))), e})
		}
	}
	return out
}

var (
	labelValuesRE = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	queryResultRE = regexp.MustCompile(`^\s*query_result\((.*)\)\s*$`)
	// $var, ${var}, ${var:format}, [[var]]
	grafanaVarRE = regexp.MustCompile(`\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)|\[\[([a-zA-Z_][a-zA-Z0-9_]*)\]\]`)
)

// variableExpr returns the PromQL inside a Prometheus query variable.
func variableExpr(q string) string {
	if m := labelValuesRE.FindStringSubmatch(q); m != nil {
		return m[1]
	}
	if m := queryResultRE.FindStringSubmatch(q); m != nil {
		return m[1]
	}
	return ""
}

// grafanaVars returns the template variables an expression references.
func grafanaVars(expr string) []string {
	var out []string
	for _, m := range grafanaVarRE.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1]+m[2]+m[3])
	}
	return out
}

// substitute replaces Grafana's variables the way Grafana would before the
// query reaches Prometheus: interval variables by a duration, the others
// by a value that fits both a label matcher and arithmetic.
func substitute(expr string) string {
	return grafanaVarRE.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.Contains(v, "__") {
			return "5m" // $__rate_interval, $__interval, $__range
		}
		return "1"
	})
}

// metricNames parses expr and returns the metric names it selects.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(substitute(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			names = append(names, vs.Name)
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && vs.Name == "" {
				names = append(names, m.Value)
			}
		}
		return nil
	})
	return names, nil
}

// TestDashboardQueriesParse: every PromQL expression of every dashboard
// parses with Prometheus' own parser, after Grafana's variable substitution,
// and references only variables the dashboard defines.
func TestDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	for _, d := range loadDashboards(t) {
		qs := d.queries()
		if len(qs) == 0 {
			t.Errorf("%s has no queries", d.file)
		}
		vars := d.variables()
		for _, q := range qs {
			if _, err := metricNames(q.expr); err != nil {
				t.Errorf("%s: %q does not parse: %v", q.where, q.expr, err)
			}
			for _, v := range grafanaVars(q.expr) {
				if !strings.HasPrefix(v, "__") && !slices.Contains(vars, v) {
					t.Errorf("%s: $%s is not a variable of the dashboard (%v)", q.where, v, vars)
				}
			}
		}
	}
}

// TestDashboardMetricsExist: every metric a dashboard queries is exported by
// SmartScale (a live /metrics), recorded by a rule in rules/, or in the
// documented list of external metrics — and every entry of that list is
// still needed.
func TestDashboardMetricsExist(t *testing.T) {
	t.Parallel()
	live := liveMetricNames(t)
	recorded := recordedMetrics(t)
	external := externalMetrics(t)

	used := map[string]bool{}
	for _, d := range loadDashboards(t) {
		for _, q := range d.queries() {
			names, err := metricNames(q.expr)
			if err != nil {
				continue // TestDashboardQueriesParse reports it
			}
			for _, n := range names {
				used[n] = true
				switch {
				case live[n], recorded[n], external[n]:
				case strings.HasPrefix(n, "smartscale_"):
					t.Errorf("%s: %s is not exported by SmartScale (live /metrics has %v)", q.where, n, keys(live))
				default:
					t.Errorf("%s: %s is neither a SmartScale metric, nor recorded in rules/, nor listed in dashboards/external-metrics.txt", q.where, n)
				}
			}
		}
	}
	for n := range external {
		if !used[n] {
			t.Errorf("dashboards/external-metrics.txt lists %s, which no dashboard uses", n)
		}
		if live[n] || recorded[n] {
			t.Errorf("dashboards/external-metrics.txt lists %s, which SmartScale or rules/ provide", n)
		}
	}
}

// recordingScaler stands in for the scaler behind the server: it accepts
// every signal group and lists what it accepted. The server's metrics do not
// depend on what the scaler decides.
type recordingScaler struct {
	mu      sync.Mutex
	records []decision.Record
}

func (r *recordingScaler) Handle(_ context.Context, n alert.Notification) ([]decision.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []decision.Record
	for _, g := range n.Groups() {
		out = append(out, decision.Record{Time: time.Now(), NodeGroup: g, Action: "scale_up", Outcome: decision.Accepted, Reasons: []string{"helm test"}})
	}
	r.records = append(r.records, out...)
	return out, nil
}

func (r *recordingScaler) Decisions(_ context.Context, group string, limit int) ([]decision.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []decision.Record
	for _, rec := range slices.Backward(r.records) {
		if (group == "" || rec.NodeGroup == group) && len(out) < limit {
			out = append(out, rec)
		}
	}
	return out, nil
}

// liveMetricNames starts SmartScale's HTTP server in this process on a free
// loopback port, with the registry `smartscale serve` builds (runtime
// collectors plus the server's own metrics), exercises every route once so
// that labelled series exist, and returns the names /metrics exposes
// (histograms as _bucket, _sum and _count).
func liveMetricNames(t testing.TB) map[string]bool {
	t.Helper()
	cfg, err := config.Parse("example", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	server.RegisterRuntime(reg)
	// The scaler's and the notices' metrics, registered as serve does; no
	// action runs here (the server answers through recordingScaler), the
	// series exist from registration.
	notices := notify.NewFanout(reg, log, time.Second, notify.NewSlack("http://127.0.0.1:1/unused", nil))
	if _, err := scaler.New(memory.New(state.Options{}), nil, nil, notices, scaler.Options{
		Groups: cfg.NodeGroups, Registry: reg, Logger: log}); err != nil {
		t.Fatal(err)
	}
	rec := &recordingScaler{}
	srv := server.New(server.Options{
		Scaler: rec, Decisions: rec, Registry: reg, Logger: log,
		KnownGroup: func(g string) bool { _, ok := cfg.Group(g); return ok },
	})
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, server.ListenConfig{
			Address: "127.0.0.1:0", ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
			IdleTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second,
			Ready: func(a net.Addr) { addrc <- a },
		})
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	body := alerttest.Notification(`{}:{alertname="ScaleUpCPU"}`,
		alerttest.Alert{Name: "ScaleUpCPU", Action: "scale_up", NodeGroup: "workers", Urgency: "normal"},
		alerttest.Alert{Name: "NotifyNodeNotReady"})
	resp, err := http.Post(base+"/v1/alerts", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /v1/alerts: %s", resp.Status)
	}
	for _, p := range []string{"/healthz", "/readyz", "/v1/decisions"} {
		r, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	for name, f := range families {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

// recordedMetrics returns the names the recording rules in rules/ record.
func recordedMetrics(t testing.TB) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range ruleManifests(t) {
		for _, g := range list(dig(m, "spec", "groups")) {
			for _, r := range list(dig(g, "rules")) {
				if rec := str(dig(r, "record")); rec != "" {
					out[rec] = true
				}
			}
		}
	}
	return out
}

// externalMetrics reads dashboards/external-metrics.txt: one name per line,
// # comments.
func externalMetrics(t testing.TB) map[string]bool {
	t.Helper()
	f, err := os.Open(repoPath(t, "helm", "smartscale", "dashboards", "external-metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !model.LegacyValidation.IsValidMetricName(line) {
			t.Errorf("external-metrics.txt: %q is not a metric name", line)
		}
		out[line] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDashboardsAreWellFormed checks what Grafana's sidecar and users rely
// on: unique uids, unique panel ids, every query on the ${datasource}
// variable, and the panels the issue names.
func TestDashboardsAreWellFormed(t *testing.T) {
	t.Parallel()
	uids := map[string]string{}
	byUID := map[string]dashboard{}
	for _, d := range loadDashboards(t) {
		if d.uid() == "" || str(d.json["title"]) == "" {
			t.Errorf("%s: no uid or title", d.file)
		}
		if other, ok := uids[d.uid()]; ok {
			t.Errorf("%s and %s share uid %s", d.file, other, d.uid())
		}
		uids[d.uid()] = d.file
		byUID[d.uid()] = d
		if d.json["id"] != nil {
			t.Errorf("%s: a provisioned dashboard must not carry a database id", d.file)
		}
		ids := map[float64]bool{}
		for _, p := range d.panels() {
			id, _ := p["id"].(float64)
			if ids[id] {
				t.Errorf("%s: panel id %v used twice", d.file, id)
			}
			ids[id] = true
			for _, tg := range list(p["targets"]) {
				if uid := str(dig(tg, "datasource", "uid")); uid != "${datasource}" {
					t.Errorf("%s panel %q: target datasource %q, want ${datasource}", d.file, str(p["title"]), uid)
				}
			}
		}
		if !slices.Contains(d.variables(), "datasource") {
			t.Errorf("%s: no datasource variable", d.file)
		}
	}

	// Cost: seven panels.
	if cost, ok := byUID["smartscale-cost"]; !ok {
		t.Error("no Cost dashboard (uid smartscale-cost)")
	} else if n := len(cost.panels()); n != 7 {
		t.Errorf("the Cost dashboard has %d panels, want 7", n)
	}
	// Autoscaler Performance: an alert list of the scaling alerts.
	found := false
	for _, p := range byUID["smartscale-autoscaler"].panels() {
		if str(p["type"]) == "alertlist" && strings.Contains(str(dig(p, "options", "alertInstanceLabelFilter")), "smartscale_action") {
			found = true
		}
	}
	if !found {
		t.Error("the Autoscaler Performance dashboard (uid smartscale-autoscaler) has no alert list filtered on smartscale_action")
	}
	for _, uid := range []string{"smartscale-cluster", "smartscale-application"} {
		if _, ok := byUID[uid]; !ok {
			t.Errorf("no dashboard with uid %s", uid)
		}
	}
}

// TestRulesLinkToShippedDashboards: every dashboard_url annotation in
// rules/ opens a dashboard the chart ships, with variables it defines.
func TestRulesLinkToShippedDashboards(t *testing.T) {
	t.Parallel()
	byUID := map[string]dashboard{}
	for _, d := range loadDashboards(t) {
		byUID[d.uid()] = d
	}
	checked := 0
	for key, m := range ruleManifests(t) {
		for _, g := range list(dig(m, "spec", "groups")) {
			for _, r := range list(dig(g, "rules")) {
				raw := str(dig(r, "annotations", "dashboard_url"))
				if raw == "" {
					continue
				}
				checked++
				// Alert templates ({{ $labels.x }}) become a plain value for parsing.
				u, err := url.Parse(regexp.MustCompile(`\{\{[^}]*\}\}`).ReplaceAllString(raw, "x"))
				if err != nil {
					t.Errorf("rules/%s %s: dashboard_url %q: %v", key, str(dig(r, "alert")), raw, err)
					continue
				}
				parts := strings.Split(strings.Trim(u.Path, "/"), "/")
				if len(parts) < 2 || parts[0] != "d" {
					t.Errorf("rules/%s %s: dashboard_url %q is not a /d/<uid> link", key, str(dig(r, "alert")), raw)
					continue
				}
				d, ok := byUID[parts[1]]
				if !ok {
					t.Errorf("rules/%s %s: dashboard_url names uid %s, which the chart does not ship", key, str(dig(r, "alert")), parts[1])
					continue
				}
				for param := range u.Query() {
					if v, ok := strings.CutPrefix(param, "var-"); ok && !slices.Contains(d.variables(), v) {
						t.Errorf("rules/%s %s: dashboard_url sets var-%s; %s has variables %v", key, str(dig(r, "alert")), v, d.file, d.variables())
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no dashboard_url annotation in rules/")
	}
}

// TestDashboardConfigMapsCarryTheFiles: each dashboard ConfigMap holds its
// JSON file unchanged, labelled for the Grafana sidecar.
func TestDashboardConfigMapsCarryTheFiles(t *testing.T) {
	t.Parallel()
	r := render(t, renderOpts{})
	files := map[string]string{}
	for _, cm := range r.byKind("ConfigMap") {
		if cm.labels()["grafana_dashboard"] != "1" {
			continue
		}
		for k, v := range stringMap(cm["data"]) {
			files[k] = v
		}
	}
	for _, d := range loadDashboards(t) {
		b, err := os.ReadFile(repoPath(t, "helm", "smartscale", "dashboards", d.file))
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := files[d.file]; !ok {
			t.Errorf("no ConfigMap carries %s", d.file)
		} else if strings.TrimSpace(got) != strings.TrimSpace(string(b)) {
			t.Errorf("the ConfigMap's %s differs from the file", d.file)
		}
	}
}
