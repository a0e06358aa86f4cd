package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smartscale/smartscale/internal/notify"
)

func sample() notify.Notice {
	return notify.Notice{
		Time: time.Date(2026, 11, 27, 9, 3, 0, 0, time.UTC), Cluster: "prod", NodeGroup: "workers",
		Action: "scale_up", Outcome: "failed", Before: 10, After: 10,
		Reasons:        []string{"at_max: 10 nodes, maxNodes 10"},
		RunbookURL:     "https://runbooks.example.com/pending",
		DashboardURL:   "https://grafana.example.com/d/smartscale",
		Recommendation: notify.Recommend("failed", []string{"at_max: 10 nodes, maxNodes 10"}),
		Nodes:          []notify.Node{{Name: "ip-10-0-1-5", InstanceID: "i-0abc", Zone: "us-east-1a", Market: "spot", InstanceType: "t3.small"}},
		Duration:       1500 * time.Millisecond,
	}
}

func TestSlackMessage(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	if err := notify.NewSlack(srv.URL+"/services/T000/B000/XXXX", nil).Notify(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(got)
	text := buf.String()
	for _, want := range []string{
		"SmartScale scale-up failed of workers: 10 → 10 nodes", ":x:", "at_max", "raise maxNodes",
		"<https://grafana.example.com/d/smartscale|Grafana dashboard>", "<https://runbooks.example.com/pending|Runbook>",
		"ip-10-0-1-5", "us-east-1a", "spot",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("slack message lacks %q: %s", want, text)
		}
	}
	if _, ok := got["blocks"].([]any); !ok {
		t.Errorf("no blocks: %s", text)
	}
}

func TestSlackErrorsHideTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid_token", http.StatusForbidden)
	}))
	err := notify.NewSlack(srv.URL+"/services/SECRET", nil).Notify(context.Background(), sample())
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "invalid_token") {
		t.Errorf("error %v, want the status and Slack's answer", err)
	}
	srv.Close()
	err = notify.NewSlack(srv.URL+"/services/SECRET", nil).Notify(context.Background(), sample())
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %v leaks the webhook URL", err)
	}
}

func TestSNSPublish(t *testing.T) {
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ = url.ParseQuery(string(b))
		w.Header().Set("Content-Type", "text/xml")
		// The SNS Query API's answer to Publish, as AWS sends it.
		_, _ = io.WriteString(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult>
    <MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId>
  </PublishResult>
  <ResponseMetadata>
    <RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0</RequestId>
  </ResponseMetadata>
</PublishResponse>`)
	}))
	defer srv.Close()
	client := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	arn := "arn:aws:sns:us-east-1:123456789012:smartscale-alerts"
	if err := notify.NewSNS(client, arn).Notify(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	if form.Get("Action") != "Publish" || form.Get("TopicArn") != arn {
		t.Errorf("request %v", form)
	}
	subject := form.Get("Subject")
	if len(subject) > 100 || !strings.Contains(subject, "10 -> 10 nodes") {
		t.Errorf("subject %q: want ASCII, ≤ 100 characters", subject)
	}
	var body notify.Notice
	if err := json.Unmarshal([]byte(form.Get("Message")), &body); err != nil || body.NodeGroup != "workers" || body.Outcome != "failed" {
		t.Errorf("message %q: %v", form.Get("Message"), err)
	}
}

// slowNotifier stands for Slack being down: it hangs until its deadline.
type slowNotifier struct{ calls atomic.Int32 }

func (s *slowNotifier) Name() string { return "slack" }
func (s *slowNotifier) Notify(ctx context.Context, _ notify.Notice) error {
	s.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func TestFanoutNeverBlocksTheAction(t *testing.T) {
	reg := prometheus.NewRegistry()
	slow := &slowNotifier{}
	f := notify.NewFanout(reg, slog.New(slog.DiscardHandler), 300*time.Millisecond, slow)
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	f.Send(ctx, sample())
	cancel() // the action's context ends; the notice still gets its own time
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Send took %s: it must return at once", d)
	}
	f.Wait()
	if slow.calls.Load() != 1 {
		t.Errorf("notifier called %d times", slow.calls.Load())
	}
	want := `
# HELP smartscale_notices_sent_total Action notices sent to people, by notifier and result (ok, error).
# TYPE smartscale_notices_sent_total counter
smartscale_notices_sent_total{notifier="slack",result="error"} 1
smartscale_notices_sent_total{notifier="slack",result="ok"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "smartscale_notices_sent_total"); err != nil {
		t.Error(err)
	}
}

func TestRecommend(t *testing.T) {
	for _, tt := range []struct {
		outcome string
		reasons []string
		want    string
	}{
		{"failed", []string{"at_max: 10"}, "raise maxNodes"},
		{"failed", []string{"drain_failed: pdb"}, "uncordoned"},
		{"partial", []string{"node_ready_timeout: i-1"}, "launch template"},
		{"failed", []string{"boom"}, "logs"},
		{"succeeded", []string{"pending_pods_need: 2"}, ""},
	} {
		got := notify.Recommend(tt.outcome, tt.reasons)
		if (tt.want == "" && got != "") || !strings.Contains(got, tt.want) {
			t.Errorf("Recommend(%s, %v) = %q, want %q", tt.outcome, tt.reasons, got, tt.want)
		}
	}
}
