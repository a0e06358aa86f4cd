package harness

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// SQSQueue is one SQS queue on 127.0.0.1 speaking the AWS JSON 1.0
// protocol of aws-sdk-go-v2's SQS client (ReceiveMessage, DeleteMessage),
// for `serve` processes pointed at it with AWS_ENDPOINT_URL_SQS. A message
// stays in flight after a receive until it is deleted or its visibility
// timeout (5s) passes, as in SQS.
type SQSQueue struct {
	// Endpoint is the value for AWS_ENDPOINT_URL_SQS; URL is the queue URL.
	Endpoint, URL string

	mu      sync.Mutex
	seq     int
	msgs    []*sqsMessage
	deleted []string
	srv     *http.Server
}

type sqsMessage struct {
	id, handle, body string
	visibleAt        time.Time
	deleted          bool
}

// NewSQSQueue starts a queue stopped at the end of t.
func NewSQSQueue(t testing.TB) *SQSQueue {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	q := &SQSQueue{Endpoint: "http://" + l.Addr().String()}
	q.URL = q.Endpoint + "/123456789012/smartscale-interruptions"
	q.srv = &http.Server{Handler: http.HandlerFunc(q.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = q.srv.Serve(l) }()
	t.Cleanup(func() { _ = q.srv.Close() })
	return q
}

// Send enqueues a message body (an EventBridge event document).
func (q *SQSQueue) Send(body string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	q.msgs = append(q.msgs, &sqsMessage{
		id:     fmt.Sprintf("5fea7756-0ea4-451a-a703-%012d", q.seq),
		handle: fmt.Sprintf("AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq-%d", q.seq),
		body:   body,
	})
}

// Deleted returns the receipt handles deleted so far (handled messages).
func (q *SQSQueue) Deleted() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.deleted...)
}

func (q *SQSQueue) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	var in map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &in)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":%q}`, err.Error())
		return
	}
	switch r.Header.Get("X-Amz-Target") {
	case "AmazonSQS.ReceiveMessage":
		out := q.receive(time.Now())
		// Long polling, shortened: an empty queue answers after a pause
		// instead of at once, so the poller does not spin.
		if len(out) == 0 {
			select {
			case <-r.Context().Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		b, _ := json.Marshal(map[string]any{"Messages": out})
		_, _ = w.Write(b)
	case "AmazonSQS.DeleteMessage":
		handle, _ := in["ReceiptHandle"].(string)
		q.delete(handle)
		_, _ = w.Write([]byte("{}"))
	default:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"__type":"com.amazonaws.sqs#UnsupportedOperation","message":"%s is not supported by this stub"}`, r.Header.Get("X-Amz-Target"))
	}
}

func (q *SQSQueue) receive(now time.Time) []map[string]string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []map[string]string
	for _, m := range q.msgs {
		if m.deleted || now.Before(m.visibleAt) {
			continue
		}
		m.visibleAt = now.Add(5 * time.Second)
		sum := md5.Sum([]byte(m.body))
		out = append(out, map[string]string{"MessageId": m.id, "ReceiptHandle": m.handle, "MD5OfBody": hex.EncodeToString(sum[:]), "Body": m.body})
	}
	return out
}

func (q *SQSQueue) delete(handle string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if m.handle == handle && !m.deleted {
			m.deleted = true
			q.deleted = append(q.deleted, handle)
		}
	}
}
