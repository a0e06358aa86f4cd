package harness

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// SlackMessage is one incoming-webhook post the sink received.
type SlackMessage struct {
	Time time.Time
	Body map[string]any
	Raw  []byte
}

// SlackSink is a Slack incoming webhook on 127.0.0.1 that records what it
// is sent and answers "ok" as Slack does.
type SlackSink struct {
	URL string

	mu   sync.Mutex
	msgs []SlackMessage
	srv  *http.Server
}

// NewSlackSink starts a sink stopped at the end of t.
func NewSlackSink(t testing.TB) *SlackSink {
	t.Helper()
	s, err := StartSlackSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartSlackSink starts a sink; the caller closes it.
func StartSlackSink() (*SlackSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SlackSink{URL: "http://" + l.Addr().String() + "/services/T000/B000/XXXX"}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *SlackSink) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, SlackMessage{Time: time.Now(), Body: body, Raw: raw})
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

// Messages returns what was received so far, in order.
func (s *SlackSink) Messages() []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackMessage(nil), s.msgs...)
}

// Close stops the sink.
func (s *SlackSink) Close() { _ = s.srv.Close() }
