// Package harness runs SmartScale itself in end-to-end tests: the
// `smartscale` binary built from this checkout, `serve` processes configured
// against a stack from package e2e/stack (dynamodb state on dynalite, kwok
// provider on the stack's API server), a Slack sink, an Alertmanager
// configuration derived from alertmanager/alertmanager.yml that delivers to
// those processes, and helpers to read decisions, nodes and logs.
//
//	bin := harness.Build(t)                      // ./cmd/smartscale, once per call
//	s := stack.Start(t, stack.Options{Dynalite: true, Kwok: true})
//	sink := harness.NewSlackSink(t)
//	sv := harness.StartServe(t, harness.ServeOptions{Bin: bin, Stack: s, SlackURL: sink.URL})
//	sv.Post(ctx, body)                           // POST /v1/alerts with the token
//	sv.Decisions(ctx, "workers")
//	sv.Kill(); sv.Start(t)                       // a crash and a restart, same port
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/decision"
	"github.com/smartscale/smartscale/internal/state/dynamo"
)

// RepoRoot is the checkout this package was compiled from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Build compiles ./cmd/smartscale (with the given build tags) into a
// temporary folder of t and returns the binary's path. The Go build cache
// makes repeated builds a link step.
func Build(t testing.TB, tags ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "smartscale")
	if err := BuildTo(context.Background(), out, tags...); err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildTo compiles ./cmd/smartscale into out.
func BuildTo(ctx context.Context, out string, tags ...string) error {
	return BuildPackage(ctx, "./cmd/smartscale", out, tags...)
}

// BuildPackage compiles a main package of this module (e.g. ./cmd/demoapp)
// into out.
func BuildPackage(ctx context.Context, pkg, out string, tags ...string) error {
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// DefaultNodeGroups is the nodeGroups block the scenarios use unless they
// say otherwise: the embedded example's group with timers short enough
// for a test, two zones, two nodes minimum.
const DefaultNodeGroups = `  - name: workers
    minNodes: 2
    maxNodes: 6
    zones: [us-east-1a, us-east-1b]
    instanceTypes: [t3.small, t3a.small]
    spotPercentage: 50
    scaleUpStep: {normal: 1, high: 2}
    cooldowns: {scaleUp: 20s, scaleDown: 15s}
    scaleDownDelayAfterScaleUp: 10s
    minNodeAge: 0s
    nodeReadyTimeout: 20s
    drainTimeout: 30s
`

// ServeOptions configures one `smartscale serve` process.
type ServeOptions struct {
	// Bin is the smartscale binary (Build).
	Bin string
	// Stack must run Kube (and Kwok for nodes to become Ready); with
	// Dynalite the state is DynamoDB on it, otherwise memory.
	Stack *stack.Stack
	// Name labels the process and its log file (default "smartscale").
	Name string
	// Table is the DynamoDB table, created if missing (default
	// "smartscale"). Replicas share state by naming the same table.
	Table string
	// ClusterID scopes the state items (default "e2e").
	ClusterID string
	// NodeGroups is the YAML list under nodeGroups: (default
	// DefaultNodeGroups).
	NodeGroups string
	// SlackURL, when set, receives SmartScale's Slack notices.
	SlackURL string
	// Token is the webhook's bearer token (default: random). Replicas
	// behind one Alertmanager configuration share it.
	Token string
	// LockTTL, ReconcileInterval and DedupeTTL set the scaler: section
	// (defaults 6s, 2s and 3s: a killed replica's groups are taken over
	// within seconds, and an alert that stays firing is reconsidered at
	// each Alertmanager repeat of a few seconds).
	LockTTL, ReconcileInterval, DedupeTTL time.Duration
	// InterruptionQueueURL makes serve poll an SQS queue (SQSQueue.URL;
	// point AWS_ENDPOINT_URL_SQS at SQSQueue.Endpoint through Env).
	InterruptionQueueURL string
	// Extra is YAML appended to the configuration (top-level keys).
	Extra string
	// Env is added to the process environment.
	Env []string
	// Args are added after `serve --config FILE`.
	Args []string
}

// Serve is a `smartscale serve` process of a test. Kill and Start crash and
// restart it on the same port with the same configuration.
type Serve struct {
	URL        string // http://127.0.0.1:PORT
	Token      string
	TokenFile  string
	ConfigPath string
	LogPath    string // one file across restarts

	opts ServeOptions
	mu   sync.Mutex
	proc *stack.Process
}

// StartServe writes the configuration, creates the table, starts the
// process and waits until /readyz answers 200.
func StartServe(t testing.TB, opts ServeOptions) *Serve {
	t.Helper()
	sv, err := NewServe(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	sv.Start(t)
	return sv
}

// NewServe prepares a process in dir without starting it (for programs;
// tests use StartServe).
func NewServe(dir string, opts ServeOptions) (*Serve, error) {
	if opts.Bin == "" || opts.Stack == nil {
		return nil, errors.New("harness: ServeOptions needs Bin and Stack")
	}
	opts.Name = or(opts.Name, "smartscale")
	opts.Table = or(opts.Table, "smartscale")
	opts.ClusterID = or(opts.ClusterID, "e2e")
	opts.NodeGroups = or(opts.NodeGroups, DefaultNodeGroups)
	if opts.Token == "" {
		opts.Token = RandomToken()
	}
	port, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	sv := &Serve{
		URL: fmt.Sprintf("http://127.0.0.1:%d", port), Token: opts.Token,
		TokenFile:  filepath.Join(dir, opts.Name+".token"),
		ConfigPath: filepath.Join(dir, opts.Name+".yaml"),
		LogPath:    filepath.Join(dir, opts.Name+".log"),
		opts:       opts,
	}
	if err := os.WriteFile(sv.TokenFile, []byte(opts.Token+"\n"), 0o600); err != nil {
		return nil, err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "clusterID: %s\nnodeGroups:\n%s", opts.ClusterID, opts.NodeGroups)
	if opts.Stack.DynamoEndpoint != "" {
		fmt.Fprintf(&cfg, "state:\n  backend: dynamodb\n  dynamodb: {table: %s, region: us-east-1, endpoint: %q, timeout: 2s}\n",
			opts.Table, opts.Stack.DynamoEndpoint)
	}
	fmt.Fprintf(&cfg, "cloud:\n  provider: kwok\n  aws: {region: us-east-1, interruptionQueueURL: %q}\nkube:\n  kubeconfig: %s\n",
		opts.InterruptionQueueURL, opts.Stack.KubeconfigPath)
	fmt.Fprintf(&cfg, "server:\n  listenAddress: 127.0.0.1:%d\n  auth:\n    bearerTokenFile: %s\n", port, sv.TokenFile)
	if opts.SlackURL != "" {
		slackFile := filepath.Join(dir, opts.Name+".slack-url")
		if err := os.WriteFile(slackFile, []byte(opts.SlackURL+"\n"), 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(&cfg, "notify:\n  dashboardURL: http://grafana.invalid/d/smartscale\n  slack:\n    webhookURLFile: %s\n", slackFile)
	}
	fmt.Fprintf(&cfg, "scaler:\n  lockTTL: %s\n  reconcileInterval: %s\n  dedupeTTL: %s\n", orDuration(opts.LockTTL, 6*time.Second),
		orDuration(opts.ReconcileInterval, 2*time.Second), orDuration(opts.DedupeTTL, 3*time.Second))
	cfg.WriteString(opts.Extra)
	if err := os.WriteFile(sv.ConfigPath, []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	return sv, nil
}

// Start starts the process (again, after Kill or Stop) and waits until
// it is ready. It fails t when it does not come up.
func (sv *Serve) Start(t testing.TB) {
	t.Helper()
	if err := sv.StartContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	proc := sv.Process()
	t.Cleanup(func() {
		_ = proc.Stop(stack.DefaultGrace)
		if t.Failed() {
			t.Logf("---- %s log tail (%s) ----\n%s", sv.opts.Name, sv.LogPath, proc.LogTail(40))
		}
	})
}

// StartContext is Start for programs: the caller stops the process.
func (sv *Serve) StartContext(ctx context.Context) error {
	if sv.opts.Stack.DynamoEndpoint != "" {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := dynamo.CreateTable(tctx, sv.opts.Stack.DynamoClient(), sv.opts.Table, 30*time.Second)
		cancel()
		if err != nil && !errors.Is(err, dynamo.ErrTTLUnsupported) {
			return fmt.Errorf("create table %s: %w", sv.opts.Table, err)
		}
	}
	proc, err := stack.StartProcess(stack.ProcessConfig{
		Name: sv.opts.Name, Path: sv.opts.Bin, LogPath: sv.LogPath, Env: sv.opts.Env,
		Args: append([]string{"serve", "--config", sv.ConfigPath}, sv.opts.Args...),
	})
	if err != nil {
		return err
	}
	sv.mu.Lock()
	sv.proc = proc
	sv.mu.Unlock()
	if err := sv.waitReady(ctx, 60*time.Second); err != nil {
		_ = proc.Kill()
		return fmt.Errorf("%s: %w\n%s", sv.opts.Name, err, proc.LogTail(30))
	}
	return nil
}

// Process is the running (or last) process.
func (sv *Serve) Process() *stack.Process {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.proc
}

// Kill sends SIGKILL (a crash) and waits until the process is gone.
func (sv *Serve) Kill() error {
	p := sv.Process()
	if err := p.Kill(); err != nil {
		return err
	}
	<-p.Done()
	return nil
}

// Stop sends SIGTERM and waits (SIGKILL after grace).
func (sv *Serve) Stop(grace time.Duration) error { return sv.Process().Stop(grace) }

func (sv *Serve) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p := sv.Process(); p.Exited() {
			return fmt.Errorf("exited before it was ready: %v", p.Wait())
		}
		code, body, err := sv.Call(ctx, http.MethodGet, "/readyz", nil)
		if err == nil && code == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("%d %s %v", code, bytes.TrimSpace(body), err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s (last /readyz: %s)", timeout, last)
}

// Call sends an authenticated request and returns the status and body.
func (sv *Serve) Call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, sv.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+sv.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Answer is the webhook's reply to a notification.
type Answer struct {
	Status    string            `json:"status"`
	Decisions []decision.Record `json:"decisions"`
	Error     string            `json:"error"`
}

// Post sends a notification (Alertmanager's webhook JSON) and decodes the
// answer.
func (sv *Serve) Post(ctx context.Context, body []byte) (int, Answer, error) {
	code, b, err := sv.Call(ctx, http.MethodPost, "/v1/alerts", body)
	if err != nil {
		return code, Answer{}, err
	}
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return code, a, fmt.Errorf("answer %q: %w", b, err)
	}
	return code, a, nil
}

// Decisions returns the group's recorded decisions, newest first.
func (sv *Serve) Decisions(ctx context.Context, group string) ([]decision.Record, error) {
	code, b, err := sv.Call(ctx, http.MethodGet, "/v1/decisions?limit=200&group="+group, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/decisions: %d %s", code, b)
	}
	var list struct {
		Decisions []decision.Record `json:"decisions"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("decode decisions: %w", err)
	}
	return list.Decisions, nil
}

// LogLine is one JSON line of the process log.
type LogLine struct {
	Time  time.Time
	Msg   string
	Attrs map[string]any
}

// Str returns attribute key as a string ("" when absent).
func (l LogLine) Str(key string) string {
	v, ok := l.Attrs[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Logs parses the process log (all runs) into its JSON lines, skipping
// anything that is not one.
func (sv *Serve) Logs() ([]LogLine, error) {
	f, err := os.Open(sv.LogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []LogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var attrs map[string]any
		if json.Unmarshal(line, &attrs) != nil {
			continue
		}
		l := LogLine{Attrs: attrs}
		l.Msg, _ = attrs["msg"].(string)
		if ts, ok := attrs["time"].(string); ok {
			l.Time, _ = time.Parse(time.RFC3339Nano, ts)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// FirstLog returns the first line at or after since for which match holds.
func (sv *Serve) FirstLog(since time.Time, match func(LogLine) bool) (LogLine, bool, error) {
	lines, err := sv.Logs()
	if err != nil {
		return LogLine{}, false, err
	}
	for _, l := range lines {
		if !l.Time.Before(since) && match(l) {
			return l, true, nil
		}
	}
	return LogLine{}, false, nil
}

// RandomToken returns 32 random hex characters.
func RandomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
