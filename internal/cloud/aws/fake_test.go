package aws

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// call is one EC2 Query API request as the server received it.
type call struct {
	Action string
	Form   url.Values
}

// reply is one canned response: an HTTP status and a fixture document.
type reply struct {
	status int
	body   string
}

// fakeEC2 is an httptest server that speaks the EC2 Query protocol from
// fixtures: it answers each action with the next reply queued for it and
// records every request's form values.
//
// A retry of one SDK invocation (same Amz-Sdk-Invocation-Id) gets the same
// reply again and is not a new call, as EC2's client tokens make it: the SDK
// retries a 200 whose body read failed because it closed the request body
// while the transport was still checking it for extra bytes
// (aws/aws-sdk-go-v2#1825), which a loopback server answers fast enough to
// hit now and then.
type fakeEC2 struct {
	t       *testing.T
	mu      sync.Mutex
	calls   []call
	replies map[string][]reply
	sent    map[string]reply // by invocation id
	retries int
}

func newFakeEC2(t *testing.T) (*fakeEC2, *ec2.Client) {
	t.Helper()
	f := &fakeEC2{t: t, replies: map[string][]reply{}, sent: map[string]reply{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	client := ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: sdkaws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
	return f, client
}

// on queues a reply for action.
func (f *fakeEC2) on(action string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[action] = append(f.replies[action], reply{status, body})
}

func (f *fakeEC2) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("parse form: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	action := r.PostForm.Get("Action")
	invocation := r.Header.Get("Amz-Sdk-Invocation-Id")
	f.mu.Lock()
	rep, ok := f.sent[invocation]
	if ok && invocation != "" {
		f.retries++
	} else {
		f.calls = append(f.calls, call{Action: action, Form: r.PostForm})
		queue := f.replies[action]
		ok = len(queue) > 0
		if ok {
			rep, f.replies[action] = queue[0], queue[1:]
			f.sent[invocation] = rep
		}
	}
	f.mu.Unlock()
	if !ok {
		f.t.Errorf("unexpected %s request: %v", action, r.PostForm)
		http.Error(w, "no reply queued", http.StatusNotImplemented)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(rep.body)))
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
}

// actions lists the actions received, in order.
func (f *fakeEC2) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = c.Action
	}
	return out
}

func (f *fakeEC2) call(i int) call {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.calls) {
		f.t.Fatalf("want request %d, got %d requests", i+1, len(f.calls))
	}
	return f.calls[i]
}

// fixture reads testdata/name; with data, it is a text/template.
func fixture(t *testing.T, name string, data ...any) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		return string(b)
	}
	tmpl, err := template.New(name).Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, data[0]); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// logBuffer returns a JSON logger writing into a buffer the test can read.
func logBuffer() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
