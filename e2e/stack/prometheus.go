package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// PrometheusConfigPath is where the generated prometheus.yml lives.
func (s *Stack) PrometheusConfigPath() string { return filepath.Join(s.Dir, "prometheus.yml") }

// prometheusConfig renders prometheus.yml for the components of this stack.
func (s *Stack) prometheusConfig(selfAddr string) ([]byte, error) {
	o := s.opts
	static := func(job string, targets []string) map[string]any {
		return map[string]any{"job_name": job, "static_configs": []any{map[string]any{"targets": targets}}}
	}
	scrapes := []any{static("prometheus", []string{selfAddr})}
	if s.KubeStateMetricsURL != "" {
		j := static("kube-state-metrics", []string{strings.TrimPrefix(s.KubeStateMetricsURL, "http://")})
		// Keep KSM's own namespace/pod/node labels rather than renaming them
		// exported_*, as the usual Kubernetes setups do.
		j["honor_labels"] = true
		scrapes = append(scrapes, j)
	}
	if s.NodeExporterURL != "" {
		// One target per Node, labelled instance=node=<node name>.
		scrapes = append(scrapes, map[string]any{
			"job_name":        "node-exporter",
			"http_sd_configs": []any{map[string]any{"url": s.NodeExporterURL + "/targets", "refresh_interval": "1s"}},
		})
	}
	if len(s.AlertmanagerURLs) > 0 {
		var t []string
		for _, u := range s.AlertmanagerURLs {
			t = append(t, strings.TrimPrefix(u, "http://"))
		}
		scrapes = append(scrapes, static("alertmanager", t))
	}
	for _, st := range o.ScrapeTargets {
		sc := map[string]string{}
		for k, v := range st.Labels {
			sc[k] = v
		}
		j := map[string]any{"job_name": st.JobName, "static_configs": []any{map[string]any{"targets": st.Targets, "labels": sc}}}
		if st.MetricsPath != "" {
			j["metrics_path"] = st.MetricsPath
		}
		if st.HonorLabels {
			j["honor_labels"] = true
		}
		scrapes = append(scrapes, j)
	}
	if strings.TrimSpace(o.ExtraScrapeConfigs) != "" {
		var extra []any
		if err := yaml.Unmarshal([]byte(o.ExtraScrapeConfigs), &extra); err != nil {
			return nil, fmt.Errorf("ExtraScrapeConfigs: want a YAML list of scrape configs: %w", err)
		}
		scrapes = append(scrapes, extra...)
	}
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     o.ScrapeInterval.String(),
			"scrape_timeout":      o.ScrapeInterval.String(),
			"evaluation_interval": o.EvaluationInterval.String(),
		},
		"scrape_configs": scrapes,
	}
	if len(o.RuleFiles) > 0 {
		var files []string
		for _, f := range o.RuleFiles {
			abs, err := filepath.Abs(f)
			if err != nil {
				return nil, err
			}
			files = append(files, abs)
		}
		cfg["rule_files"] = files
	}
	if len(s.AlertmanagerURLs) > 0 {
		var t []string
		for _, u := range s.AlertmanagerURLs {
			t = append(t, strings.TrimPrefix(u, "http://"))
		}
		cfg["alerting"] = map[string]any{"alertmanagers": []any{map[string]any{
			"api_version":    "v2",
			"static_configs": []any{map[string]any{"targets": t}},
		}}}
	}
	return yaml.Marshal(cfg)
}

func (s *Stack) addPrometheus(ctx context.Context) error {
	bin, err := ToolPath("prometheus")
	if err != nil {
		return err
	}
	data := filepath.Join(s.Dir, "prometheus-data")
	var port int
	alloc, err := onePort(&port, func(p int) { s.PrometheusURL = "http://" + hostPort(p) })
	if err != nil {
		return err
	}
	c := &component{
		name: Prometheus,
		cfg: func() (ProcessConfig, error) {
			cfg, err := s.prometheusConfig(hostPort(port))
			if err != nil {
				return ProcessConfig{}, err
			}
			if err := os.WriteFile(s.PrometheusConfigPath(), cfg, 0o644); err != nil {
				return ProcessConfig{}, err
			}
			return ProcessConfig{Name: string(Prometheus), Path: bin, LogPath: s.logFile(Prometheus), Args: []string{
				"--config.file=" + s.PrometheusConfigPath(),
				"--storage.tsdb.path=" + data,
				"--web.listen-address=" + hostPort(port),
				"--web.external-url=" + s.PrometheusURL,
				// POST /-/reload after a test rewrites a rule file.
				"--web.enable-lifecycle",
				// Re-send firing alerts every second rather than every minute,
				// so a restarted Alertmanager hears of them quickly.
				"--rules.alert.resend-delay=1s",
			}}, nil
		},
		ready: func(ctx context.Context) error { return httpOK(ctx, s.PrometheusURL+"/-/ready", "", "") },
	}
	return s.register(ctx, c, alloc)
}

// ReloadPrometheus makes Prometheus re-read its config and rule files.
func (s *Stack) ReloadPrometheus(ctx context.Context) error {
	return postReload(ctx, s.PrometheusURL)
}

func postReload(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/-/reload", nil)
	if err != nil {
		return err
	}
	resp, err := insecureHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("reload %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("reload %s: %s: %s", base, resp.Status, b)
	}
	return nil
}

// Sample is one series of an instant-query result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query against Prometheus and returns its
// vector result (scalars come back as one sample without labels).
func (s *Stack) Query(ctx context.Context, promql string) ([]Sample, error) {
	u := s.PrometheusURL + "/api/v1/query?" + url.Values{"query": {promql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := insecureHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", promql, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: decode: %w", promql, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", promql, body.Error)
	}
	parse := func(v [2]any) (float64, error) {
		str, _ := v[1].(string)
		return strconv.ParseFloat(str, 64)
	}
	switch body.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		out := make([]Sample, 0, len(vec))
		for _, e := range vec {
			f, err := parse(e.Value)
			if err != nil {
				return nil, fmt.Errorf("query %q: value: %w", promql, err)
			}
			out = append(out, Sample{Metric: e.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		f, err := parse(v)
		if err != nil {
			return nil, fmt.Errorf("query %q: value: %w", promql, err)
		}
		return []Sample{{Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %q: unsupported result type %s", promql, body.Data.ResultType)
	}
}
