package interruption

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smartscale/smartscale/internal/cloud"
)

const queueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/smartscale-interruptions"

// sqsRequest is one AWS JSON 1.0 request as the server received it.
type sqsRequest struct {
	Target string
	Body   map[string]any
}

// batch is one ReceiveMessage answer: message bodies, or an error document.
type batch struct {
	bodies    []string
	errStatus int
	errBody   string
	errQuery  string
}

// fakeSQS speaks SQS's AWS JSON 1.0 protocol: ReceiveMessage answers with
// the next queued batch (or, like a long poll with nothing to deliver, an
// empty answer after a short wait), DeleteMessage records the handle. An SDK
// retry of one invocation (same Amz-Sdk-Invocation-Id, see
// aws/aws-sdk-go-v2#1825) gets the same answer and is not recorded again.
type fakeSQS struct {
	t       *testing.T
	mu      sync.Mutex
	reqs    []sqsRequest
	batches []batch
	deleted []string
	seq     int
	sent    map[string]sentReply
}

type sentReply struct {
	status int
	query  string
	body   []byte
}

func newFakeSQS(t *testing.T) (*fakeSQS, *sqs.Client) {
	t.Helper()
	f := &fakeSQS{t: t, sent: map[string]sentReply{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: sdkaws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
}

func (f *fakeSQS) push(b batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, b)
}

func (f *fakeSQS) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		f.t.Errorf("request body is not JSON: %q", raw)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.0" {
		f.t.Errorf("Content-Type = %q, want application/x-amz-json-1.0", ct)
	}
	target := r.Header.Get("X-Amz-Target")
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	invocation := r.Header.Get("Amz-Sdk-Invocation-Id")
	f.mu.Lock()
	if rep, ok := f.sent[invocation]; ok && invocation != "" {
		f.mu.Unlock()
		if rep.query != "" {
			w.Header().Set("x-amzn-query-error", rep.query)
		}
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
		return
	}
	f.reqs = append(f.reqs, sqsRequest{Target: target, Body: body})
	send := func(status int, query string, out []byte) {
		f.mu.Lock()
		f.sent[invocation] = sentReply{status, query, out}
		f.mu.Unlock()
		if query != "" {
			w.Header().Set("x-amzn-query-error", query)
		}
		w.WriteHeader(status)
		_, _ = w.Write(out)
	}
	switch target {
	case "AmazonSQS.ReceiveMessage":
		if len(f.batches) == 0 {
			f.mu.Unlock()
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Millisecond):
			}
			send(http.StatusOK, "", []byte("{}"))
			return
		}
		b := f.batches[0]
		f.batches = f.batches[1:]
		var msgs []map[string]string
		for _, body := range b.bodies {
			f.seq++
			sum := md5.Sum([]byte(body))
			msgs = append(msgs, map[string]string{
				"MessageId":     fmt.Sprintf("6a7e8f7c-0d2b-4c1e-9f3a-%012d", f.seq),
				"ReceiptHandle": fmt.Sprintf("AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a-%d", f.seq),
				"MD5OfBody":     hex.EncodeToString(sum[:]),
				"Body":          body,
			})
		}
		f.mu.Unlock()
		if b.errStatus != 0 {
			send(b.errStatus, b.errQuery, []byte(b.errBody))
			return
		}
		out, _ := json.Marshal(map[string]any{"Messages": msgs})
		send(http.StatusOK, "", out)
	case "AmazonSQS.DeleteMessage":
		h, _ := body["ReceiptHandle"].(string)
		f.deleted = append(f.deleted, h)
		f.mu.Unlock()
		send(http.StatusOK, "", []byte("{}"))
	default:
		f.mu.Unlock()
		f.t.Errorf("unexpected target %q", target)
		w.WriteHeader(http.StatusBadRequest)
	}
}

func (f *fakeSQS) deletedHandles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deleted)
}

func (f *fakeSQS) requests() []sqsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// owners is a fixed answer to "is this instance ours?".
type owners struct {
	mu    sync.Mutex
	known map[string]cloud.Instance
	err   error
	asked []string
}

func (o *owners) Find(_ context.Context, id string) (cloud.Instance, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, id)
	if o.err != nil {
		return cloud.Instance{}, false, o.err
	}
	i, ok := o.known[id]
	return i, ok, nil
}

// recorder is a Handler that records what it accepted or fails on demand.
type recorder struct {
	mu   sync.Mutex
	got  []Interruption
	fail error
}

func (r *recorder) HandleInterruption(_ context.Context, in Interruption) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, in)
	return r.fail
}

func (r *recorder) handled() []Interruption {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

var ours = cloud.Instance{
	ID: "i-0f3e2d1c0b9a80002", Group: "workers", NodeName: "ip-10-0-2-81.ec2.internal",
	ProviderID: "aws:///us-east-1b/i-0f3e2d1c0b9a80002", Zone: "us-east-1b",
	Market: cloud.Spot, Type: "t3.small", State: cloud.Running,
}

type pollHarness struct {
	sqs   *fakeSQS
	owner *owners
	h     *recorder
	p     *Poller
	logs  *bytes.Buffer
}

func newPollHarness(t *testing.T) *pollHarness {
	t.Helper()
	f, client := newFakeSQS(t)
	ph := &pollHarness{sqs: f, owner: &owners{known: map[string]cloud.Instance{ours.ID: ours}}, h: &recorder{}, logs: &bytes.Buffer{}}
	var err error
	ph.p, err = New(client, ph.owner, ph.h, Options{
		QueueURL:   queueURL,
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond,
		Logger:     slog.New(slog.NewJSONHandler(&lockedWriter{w: ph.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ph
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPollSendsLongPollAndDeletesAcceptedMessages(t *testing.T) {
	ph := newPollHarness(t)
	ph.sqs.push(batch{bodies: []string{read(t, "spot-interruption-warning.json")}})

	if err := ph.p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := ph.sqs.requests()
	if len(reqs) != 2 {
		t.Fatalf("requests = %+v, want receive + delete", reqs)
	}
	if want := (sqsRequest{Target: "AmazonSQS.ReceiveMessage", Body: map[string]any{
		"QueueUrl": queueURL, "MaxNumberOfMessages": 10.0, "WaitTimeSeconds": 20.0,
	}}); !reflect.DeepEqual(reqs[0], want) {
		t.Errorf("receive = %+v\nwant %+v", reqs[0], want)
	}
	if want := (sqsRequest{Target: "AmazonSQS.DeleteMessage", Body: map[string]any{
		"QueueUrl": queueURL, "ReceiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a-1",
	}}); !reflect.DeepEqual(reqs[1], want) {
		t.Errorf("delete = %+v\nwant %+v", reqs[1], want)
	}
	eventTime := time.Date(2026, 3, 2, 10, 41, 7, 0, time.UTC)
	want := []Interruption{{
		Kind: SpotInterruption, InstanceID: ours.ID, Group: "workers", Instance: ours,
		Deadline: eventTime.Add(2 * time.Minute), Action: "terminate",
		EventID: "1e5527d7-bb36-4607-3370-4164db56a40e", EventTime: eventTime,
	}}
	if got := ph.h.handled(); !reflect.DeepEqual(got, want) {
		t.Errorf("handled:\n got %+v\nwant %+v", got, want)
	}
	if got := testutil.ToFloat64(ph.p.messages.WithLabelValues("spot_interruption", "handled")); got != 1 {
		t.Errorf("handled counter = %v", got)
	}
}

func TestPollEventKinds(t *testing.T) {
	for _, tc := range []struct {
		fixture  string
		handled  bool
		kind     Kind
		deadline time.Time
		state    string
	}{
		{"spot-interruption-warning.json", true, SpotInterruption, time.Date(2026, 3, 2, 10, 43, 7, 0, time.UTC), ""},
		{"rebalance-recommendation.json", true, Rebalance, time.Time{}, ""},
		{"state-change-shutting-down.json", true, StateChange, time.Date(2026, 3, 2, 10, 43, 9, 0, time.UTC), "shutting-down"},
		// A state change to pending is not an interruption: deleted, not handed on.
		{"state-change-pending.json", false, "", time.Time{}, ""},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			ph := newPollHarness(t)
			ph.owner.known["i-0f3e2d1c0b9a80003"] = cloud.Instance{ID: "i-0f3e2d1c0b9a80003", Group: "workers"}
			ph.sqs.push(batch{bodies: []string{read(t, tc.fixture)}})
			if err := ph.p.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := ph.h.handled()
			if !tc.handled {
				if len(got) != 0 {
					t.Errorf("handled %+v, want nothing", got)
				}
			} else if len(got) != 1 || got[0].Kind != tc.kind || !got[0].Deadline.Equal(tc.deadline) ||
				got[0].State != tc.state || got[0].Group != "workers" {
				t.Errorf("handled %+v, want one %s with deadline %s state %q", got, tc.kind, tc.deadline, tc.state)
			}
			if d := ph.sqs.deletedHandles(); len(d) != 1 {
				t.Errorf("deleted %v, want the message deleted", d)
			}
		})
	}
}

func TestPollIgnoresInstancesNotOurs(t *testing.T) {
	ph := newPollHarness(t)
	delete(ph.owner.known, ours.ID)
	ph.sqs.push(batch{bodies: []string{read(t, "spot-interruption-warning.json")}})
	if err := ph.p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ph.h.handled(); len(got) != 0 {
		t.Errorf("handled %+v, want nothing", got)
	}
	if !slices.Equal(ph.owner.asked, []string{ours.ID}) {
		t.Errorf("owner asked about %v", ph.owner.asked)
	}
	if d := ph.sqs.deletedHandles(); len(d) != 1 {
		t.Errorf("deleted %v, want the message deleted", d)
	}
	if !strings.Contains(ph.logs.String(), `"reason":"not_ours"`) {
		t.Errorf("no not_ours log line:\n%s", ph.logs)
	}
}

func TestPollDeletesMalformedMessagesWithALogLine(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "malformed"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 6 {
		t.Fatalf("only %d malformed fixtures", len(entries))
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			ph := newPollHarness(t)
			body := read(t, filepath.Join("malformed", e.Name()))
			if _, _, err := Parse([]byte(body)); !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse error = %v, want ErrMalformed", err)
			}
			ph.sqs.push(batch{bodies: []string{body}})
			if err := ph.p.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := ph.h.handled(); len(got) != 0 {
				t.Errorf("handled %+v", got)
			}
			if len(ph.owner.asked) != 0 {
				t.Errorf("owner asked about %v for a malformed message", ph.owner.asked)
			}
			if d := ph.sqs.deletedHandles(); len(d) != 1 {
				t.Errorf("deleted %v, want the message deleted", d)
			}
			var line map[string]any
			for l := range strings.Lines(ph.logs.String()) {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "malformed interruption message deleted" {
					line = m
				}
			}
			if line == nil || line["reason"] == "" || line["message_id"] == "" {
				t.Errorf("no malformed log line with reason and message id:\n%s", ph.logs)
			}
			if got := testutil.ToFloat64(ph.p.messages.WithLabelValues("unknown", "malformed")); got != 1 {
				t.Errorf("malformed counter = %v", got)
			}
		})
	}
}

func TestPollKeepsMessageWhenHandlerOrOwnerFails(t *testing.T) {
	t.Run("handler", func(t *testing.T) {
		ph := newPollHarness(t)
		ph.h.fail = errors.New("state store unavailable")
		ph.sqs.push(batch{bodies: []string{read(t, "spot-interruption-warning.json")}})
		if err := ph.p.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(ph.h.handled()) != 1 {
			t.Errorf("handler not called")
		}
		if d := ph.sqs.deletedHandles(); len(d) != 0 {
			t.Errorf("deleted %v, want the message kept for redelivery", d)
		}
	})
	t.Run("owner", func(t *testing.T) {
		ph := newPollHarness(t)
		ph.owner.err = errors.New("DescribeInstances: RequestLimitExceeded")
		ph.sqs.push(batch{bodies: []string{read(t, "spot-interruption-warning.json")}})
		if err := ph.p.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(ph.h.handled()) != 0 {
			t.Errorf("handler called without knowing the group")
		}
		if d := ph.sqs.deletedHandles(); len(d) != 0 {
			t.Errorf("deleted %v, want the message kept for redelivery", d)
		}
	})
}

func TestPollHandlesABatch(t *testing.T) {
	ph := newPollHarness(t)
	ph.sqs.push(batch{bodies: []string{
		read(t, "rebalance-recommendation.json"),
		read(t, "malformed/not-json.txt"),
		read(t, "spot-interruption-warning.json"),
	}})
	if err := ph.p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ph.h.handled(); len(got) != 2 {
		t.Errorf("handled %d, want 2", len(got))
	}
	d := ph.sqs.deletedHandles()
	slices.Sort(d)
	if want := []string{"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a-1", "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a-2", "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a-3"}; !slices.Equal(d, want) {
		t.Errorf("deleted %v, want %v", d, want)
	}
}

func TestRunRecoversFromReceiveErrorsAndStopsWithContext(t *testing.T) {
	ph := newPollHarness(t)
	ph.sqs.push(batch{errStatus: http.StatusBadRequest, errBody: read(t, "sqs-error-queue-does-not-exist.json"),
		errQuery: "AWS.SimpleQueueService.NonExistentQueue;Sender"})
	ph.sqs.push(batch{bodies: []string{read(t, "spot-interruption-warning.json")}})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ph.p.Run(ctx) }()

	// Wait (bounded) until the message after the failed receive is handled.
	deadline := time.Now().Add(10 * time.Second)
	for len(ph.sqs.deletedHandles()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if got := ph.h.handled(); len(got) != 1 {
		t.Errorf("handled %d after the receive error, want 1", len(got))
	}
	// SQS is awsQueryCompatible: the SDK reports the x-amzn-query-error code.
	if !strings.Contains(ph.logs.String(), "AWS.SimpleQueueService.NonExistentQueue") {
		t.Errorf("receive error not logged:\n%s", ph.logs)
	}
}

func TestParseDeadlines(t *testing.T) {
	in, ok, err := Parse([]byte(read(t, "spot-interruption-warning.json")))
	if err != nil || !ok {
		t.Fatalf("Parse = %v, %v", ok, err)
	}
	if got := in.Deadline.Sub(in.EventTime); got != SpotWarning {
		t.Errorf("spot deadline is %s after the event, want %s", got, SpotWarning)
	}
	in, ok, err = Parse([]byte(read(t, "state-change-pending.json")))
	if err != nil || ok || in.State != "pending" {
		t.Errorf("pending state change: %+v, %v, %v; want well-formed, nothing to do", in, ok, err)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	_, client := newFakeSQS(t)
	o, h := &owners{}, &recorder{}
	for name, opts := range map[string]Options{
		"no queue":     {},
		"long wait":    {QueueURL: queueURL, WaitTime: 21 * time.Second},
		"big batch":    {QueueURL: queueURL, MaxMessages: 11},
		"negative max": {QueueURL: queueURL, MaxMessages: -1},
	} {
		if _, err := New(client, o, h, opts); err == nil {
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
	if _, err := New(nil, o, h, Options{QueueURL: queueURL}); err == nil {
		t.Error("New accepted a nil queue")
	}
}
