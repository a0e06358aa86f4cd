package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/alert"
	"github.com/smartscale/smartscale/internal/rules"
)

// forScale shrinks every for: by 30 (3m -> 6s, 10m -> 20s, 2m -> 4s) in the
// exported test copy; thresholds and expressions stay the real ones.
const forScale = 1.0 / 30

// The timers of alertmanager.yml this test relies on.
const (
	webhookGroupWait = 10 * time.Second
	scaleUpFor       = 6 * time.Second // 3m x forScale
)

const webhookToken = "live-test-token"

// TestLivePrometheusAlertmanager loads the exported rules (for: scaled by
// `rules export --for-scale`) into a real Prometheus that scrapes a tiny
// exporter in this test, with a real Alertmanager running
// alertmanager/alertmanager.yml (only receiver endpoints and secret files
// swapped for local sinks), and checks what reaches the webhook, Slack and
// SNS.
func TestLivePrometheusAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and Alertmanager")
	}
	t.Parallel() // mostly waiting on for: and group_wait
	t.Run("cpu", func(t *testing.T) {
		t.Parallel()
		liveCPU(t)
	})
	t.Run("backlog", func(t *testing.T) {
		t.Parallel()
		liveBacklog(t)
	})
}

// liveCPU: CPU at 95% on node group workers.
//   - ScaleUpCPUHigh reaches the webhook after for: + group_wait, with the
//     contract labels and the bearer token, and decodes into one high
//     scale_up signal for workers;
//   - ScaleUpCPU (normal) fires too but is inhibited by the high one;
//   - the people-only NotifyWebhookUnavailable (no SmartScale target here)
//     reaches SNS and Slack's critical channel, never the webhook;
//   - the scaling alert also reaches Slack (continue: true).
func liveCPU(t *testing.T) {
	l := startLive(t, exporterState{cpuBusy: 0.95, memUsed: 0.4})
	ctx := t.Context()

	n := l.webhook.await(t, 90*time.Second, "ScaleUpCPUHigh")
	if got := n.header.Get("Authorization"); got != "Bearer "+webhookToken {
		t.Errorf("webhook Authorization %q, want the token from the credentials file", got)
	}
	msg, err := alert.Decode(n.body)
	if err != nil {
		t.Fatalf("webhook payload does not decode: %v\n%s", err, n.body)
	}
	if msg.Receiver != "smartscale" || msg.GroupLabels["alertname"] != "ScaleUpCPUHigh" || msg.GroupLabels["smartscale_nodegroup"] != "workers" {
		t.Errorf("receiver %q group labels %v; want smartscale, {alertname=ScaleUpCPUHigh, smartscale_nodegroup=workers}", msg.Receiver, msg.GroupLabels)
	}
	got := alert.Contract(msg, func(g string) bool { return g == "workers" })
	if len(got.Signals) != 1 || len(got.Ignored) != 0 {
		t.Fatalf("want exactly one signal, got %+v", got)
	}
	s := got.Signals[0]
	if s.Action != alert.ScaleUp || s.Urgency != alert.High || s.NodeGroup != "workers" || s.AlertName != "ScaleUpCPUHigh" || s.Severity != "warning" {
		t.Errorf("signal %+v; want scale_up high workers ScaleUpCPUHigh warning", s)
	}
	if !strings.Contains(s.Annotations.Summary, "CPU above 90%") || s.Annotations.RunbookURL == "" || s.Annotations.DashboardURL == "" || s.Annotations.Description == "" {
		t.Errorf("annotations did not travel: %+v", s.Annotations)
	}

	// Timing: Prometheus fired (startsAt) no earlier than for: after the
	// alert became active, and Alertmanager held it group_wait.
	// Alertmanager's API carries milliseconds, Prometheus' nanoseconds.
	active := l.activeAt(ctx, t, "ScaleUpCPUHigh").Truncate(time.Millisecond)
	startsAt := msg.Alerts[0].StartsAt
	if held := startsAt.Sub(active); held < scaleUpFor {
		t.Errorf("fired %s after becoming active, want at least for: %s", held, scaleUpFor)
	}
	if waited := n.at.Sub(startsAt); waited < webhookGroupWait {
		t.Errorf("delivered %s after firing, want at least group_wait %s", waited, webhookGroupWait)
	}
	t.Logf("ScaleUpCPUHigh: active %s, firing +%s, webhook +%s (exporter started %s before activation)",
		active.Format(time.TimeOnly), startsAt.Sub(active).Round(time.Millisecond), n.at.Sub(startsAt).Round(time.Millisecond), active.Sub(l.started).Round(time.Millisecond))

	// The normal CPU alert is in Alertmanager, inhibited by the high one.
	l.awaitSuppressed(t, "ScaleUpCPU")

	// People-only critical: SNS and Slack, not the webhook.
	pub := l.sns.await(t, 90*time.Second, "NotifyWebhookUnavailable")
	if pub.Get("TopicArn") != "arn:aws:sns:us-east-1:123456789012:smartscale-critical" || pub.Get("Subject") != "[FIRING] NotifyWebhookUnavailable" ||
		!strings.Contains(pub.Get("Message"), "Runbook: https://github.com/smartscale/smartscale/blob/main/rules/runbooks.md#notifywebhookunavailable") {
		t.Errorf("SNS publish: %v", pub)
	}
	crit := l.slack.await(t, 90*time.Second, "slack-critical", "NotifyWebhookUnavailable")
	if !strings.Contains(crit, ":rotating_light:") || !strings.Contains(crit, "No SmartScale replica is up") {
		t.Errorf("Slack critical message: %s", crit)
	}
	warn := l.slack.await(t, 90*time.Second, "slack-warning", "ScaleUpCPUHigh")
	for _, want := range []string{"CPU above 90%", "95%", "SmartScale adds two nodes to workers", "|:book: Runbook>", "|:bar_chart: Grafana>"} {
		if !strings.Contains(warn, want) {
			t.Errorf("Slack message lacks %q: %s", want, warn)
		}
	}
	if names := l.webhook.alertNames(); slices.Contains(names, "NotifyWebhookUnavailable") || slices.Contains(names, "ScaleUpCPU") {
		t.Errorf("the webhook received %v; want neither people-only nor inhibited alerts", names)
	}
}

// liveBacklog: an idle node group (CPU 10%, memory 30%, no pending pods)
// with a RabbitMQ backlog. ScaleDownIdle fires in Prometheus, but the
// firing ScaleUpQueueDepth of the same node group inhibits it, so only the
// scale-up reaches the webhook.
func liveBacklog(t *testing.T) {
	l := startLive(t, exporterState{cpuBusy: 0.10, memUsed: 0.3, queue: 5000})
	ctx := t.Context()

	n := l.webhook.await(t, 90*time.Second, "ScaleUpQueueDepth")
	msg, err := alert.Decode(n.body)
	if err != nil {
		t.Fatal(err)
	}
	got := alert.Contract(msg, func(g string) bool { return g == "workers" })
	if len(got.Signals) != 1 || got.Signals[0].Action != alert.ScaleUp || got.Signals[0].Urgency != alert.Normal {
		t.Fatalf("want one normal scale_up signal, got %+v", got)
	}

	// ScaleDownIdle (for: 20s) fires in Prometheus...
	deadline := time.Now().Add(90 * time.Second)
	for l.alertState(ctx, t, "ScaleDownIdle") != "firing" {
		if time.Now().After(deadline) {
			t.Fatal("ScaleDownIdle never fired in Prometheus")
		}
		time.Sleep(500 * time.Millisecond)
	}
	// ...and sits in Alertmanager inhibited; after its group_wait has
	// passed, the webhook still has not heard of it.
	l.awaitSuppressed(t, "ScaleDownIdle")
	time.Sleep(webhookGroupWait + 2*time.Second)
	if names := l.webhook.alertNames(); slices.Contains(names, "ScaleDownIdle") {
		t.Errorf("the webhook received ScaleDownIdle while a scale-up was firing: %v", names)
	}
}

// live is one running Prometheus + Alertmanager with sinks.
type live struct {
	stack   *stack.Stack
	webhook *webhookSink
	slack   *slackSink
	sns     *snsSink
	started time.Time
}

func startLive(t *testing.T, st exporterState) *live {
	t.Helper()
	dir, ms, _ := export(t, rules.ExportOptions{ForScale: forScale})
	var files []string
	for _, m := range ms {
		files = append(files, filepath.Join(dir, rules.FileName(m)))
	}
	exp := &exporter{start: time.Now(), state: st}
	expSrv := httptest.NewServer(exp)
	t.Cleanup(expSrv.Close)

	l := &live{webhook: newWebhookSink(t), slack: newSlackSink(t), sns: newSNSSink(t), started: exp.start}
	cfg := alertmanagerTestConfig(t, l.webhook.url, l.slack.url, l.sns.url)
	l.stack = stack.Start(t, stack.Options{
		Prometheus:         true,
		Alertmanager:       true,
		AlertmanagerConfig: cfg,
		RuleFiles:          files,
		ScrapeTargets:      []stack.ScrapeTarget{{JobName: "test-exporter", Targets: []string{strings.TrimPrefix(expSrv.URL, "http://")}}},
	})
	return l
}

// alertmanagerTestConfig is alertmanager/alertmanager.yml with the
// receivers' endpoints and secret files pointed at this test: routes,
// timers, inhibitions and templates are the real ones.
func alertmanagerTestConfig(t *testing.T, webhookURL, slackURL, snsURL string) string {
	t.Helper()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(webhookToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := harness.AlertmanagerConfig(harness.AlertmanagerOptions{
		WebhookURLs: []string{webhookURL}, TokenFile: token, SlackURL: slackURL, SNSURL: snsURL, Dir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// exporterState is what the tiny exporter reports for node group workers
// (nodes w1 and w2, 2 cpus each).
type exporterState struct {
	cpuBusy float64 // fraction of every cpu
	memUsed float64 // fraction of MemTotal
	queue   float64 // messages in RabbitMQ queue orders; 0: no queue metric
}

// exporter serves node-exporter, kube-state-metrics and RabbitMQ series with
// the names and labels of the real exporters; counters advance with wall
// time, so rates read exactly the configured busy fraction.
type exporter struct {
	start time.Time
	state exporterState
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	el := time.Since(e.start).Seconds()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	b.WriteString("# TYPE kube_node_labels gauge\n")
	for _, n := range []string{"w1", "w2"} {
		fmt.Fprintf(&b, "kube_node_labels{node=%q,label_smartscale_io_nodegroup=\"workers\"} 1\n", n)
	}
	b.WriteString("# TYPE kube_pod_info gauge\nkube_pod_info{namespace=\"shop\",pod=\"web-a\",uid=\"ua\",node=\"w1\"} 1\n")
	b.WriteString("# TYPE node_cpu_seconds_total counter\n")
	for _, n := range []string{"w1", "w2"} {
		for cpu := range 2 {
			fmt.Fprintf(&b, "node_cpu_seconds_total{node=%q,cpu=\"%d\",mode=\"idle\"} %g\n", n, cpu, (1-e.state.cpuBusy)*el)
			fmt.Fprintf(&b, "node_cpu_seconds_total{node=%q,cpu=\"%d\",mode=\"user\"} %g\n", n, cpu, e.state.cpuBusy*el)
		}
	}
	b.WriteString("# TYPE node_memory_MemTotal_bytes gauge\n# TYPE node_memory_MemAvailable_bytes gauge\n")
	for _, n := range []string{"w1", "w2"} {
		fmt.Fprintf(&b, "node_memory_MemTotal_bytes{node=%q} 4e+09\n", n)
		fmt.Fprintf(&b, "node_memory_MemAvailable_bytes{node=%q} %g\n", n, (1-e.state.memUsed)*4e9)
	}
	if e.state.queue > 0 {
		fmt.Fprintf(&b, "# TYPE rabbitmq_queue_messages gauge\nrabbitmq_queue_messages{vhost=\"/\",queue=\"orders\"} %g\n", e.state.queue)
	}
	io.WriteString(w, b.String())
}

// notification is one request a sink received.
type notification struct {
	at     time.Time
	header http.Header
	body   []byte
}

// webhookSink stands in for `smartscale serve`: it records every delivery
// and answers 200.
type webhookSink struct {
	url string
	mu  sync.Mutex
	got []notification
}

func newWebhookSink(t *testing.T) *webhookSink {
	s := &webhookSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, notification{at: time.Now(), header: r.Header.Clone(), body: body})
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// await returns the first firing delivery that carries alertname.
func (s *webhookSink) await(t *testing.T, timeout time.Duration, alertname string) notification {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		for _, n := range s.got {
			if m, err := alert.Decode(n.body); err == nil && m.Status == "firing" {
				for _, a := range m.Alerts {
					if a.Labels["alertname"] == alertname {
						s.mu.Unlock()
						return n
					}
				}
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the webhook got no firing %s within %s (got %v)", alertname, timeout, s.alertNames())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *webhookSink) alertNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, n := range s.got {
		if m, err := alert.Decode(n.body); err == nil {
			for _, a := range m.Alerts {
				names = append(names, a.Labels["alertname"])
			}
		}
	}
	return names
}

// slackSink is Slack's incoming-webhook endpoint; each receiver posts to
// /<receiver name> (its api_url_file says so).
type slackSink struct {
	url string
	mu  sync.Mutex
	got map[string][]string // receiver -> raw JSON bodies
}

func newSlackSink(t *testing.T) *slackSink {
	s := &slackSink{got: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got[strings.TrimPrefix(r.URL.Path, "/")] = append(s.got[strings.TrimPrefix(r.URL.Path, "/")], string(body))
		s.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// await returns the title and text of the first message to receiver that
// mentions alertname.
func (s *slackSink) await(t *testing.T, timeout time.Duration, receiver, alertname string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		for _, body := range s.got[receiver] {
			var msg struct {
				Attachments []struct {
					Title string `json:"title"`
					Text  string `json:"text"`
				} `json:"attachments"`
			}
			if json.Unmarshal([]byte(body), &msg) == nil {
				for _, a := range msg.Attachments {
					if strings.Contains(a.Title, alertname) {
						s.mu.Unlock()
						return a.Title + "\n" + a.Text
					}
				}
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("Slack %s got no %s within %s", receiver, alertname, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// snsSink answers SNS Publish (AWS query protocol) like the real service.
type snsSink struct {
	url string
	mu  sync.Mutex
	got []url.Values
}

func newSNSSink(t *testing.T) *snsSink {
	s := &snsSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("Action") != "Publish" {
			http.Error(w, "want a Publish", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, r.PostForm)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult><MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult>
  <ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata>
</PublishResponse>`)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *snsSink) await(t *testing.T, timeout time.Duration, alertname string) url.Values {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		for _, v := range s.got {
			if strings.Contains(v.Get("Subject"), alertname) {
				s.mu.Unlock()
				return v
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("SNS got no %s within %s", alertname, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// promAlert is an entry of Prometheus' /api/v1/alerts.
type promAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

func (l *live) promAlerts(ctx context.Context, t *testing.T) []promAlert {
	t.Helper()
	var body struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	getJSON(ctx, t, l.stack.PrometheusURL+"/api/v1/alerts", &body)
	return body.Data.Alerts
}

func (l *live) activeAt(ctx context.Context, t *testing.T, name string) time.Time {
	t.Helper()
	for _, a := range l.promAlerts(ctx, t) {
		if a.Labels["alertname"] == name {
			return a.ActiveAt
		}
	}
	t.Fatalf("Prometheus has no %s alert", name)
	return time.Time{}
}

func (l *live) alertState(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	for _, a := range l.promAlerts(ctx, t) {
		if a.Labels["alertname"] == name {
			return a.State
		}
	}
	return ""
}

// awaitSuppressed waits until Alertmanager holds alert name and checks it
// is inhibited (not silenced).
func (l *live) awaitSuppressed(t *testing.T, name string) {
	t.Helper()
	u := l.stack.AlertmanagerURLs[0] + "/api/v2/alerts?" + url.Values{"filter": {fmt.Sprintf("alertname=%q", name)}}.Encode()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var alerts []struct {
			Status struct {
				State       string   `json:"state"`
				InhibitedBy []string `json:"inhibitedBy"`
				SilencedBy  []string `json:"silencedBy"`
			} `json:"status"`
		}
		getJSON(t.Context(), t, u, &alerts)
		if len(alerts) == 1 {
			st := alerts[0].Status
			if st.State != "suppressed" || len(st.InhibitedBy) == 0 || len(st.SilencedBy) != 0 {
				t.Fatalf("%s in Alertmanager: %+v; want suppressed by an inhibition", name, st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager never received %s (got %d matching alerts)", name, len(alerts))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getJSON(ctx context.Context, t *testing.T, u string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
