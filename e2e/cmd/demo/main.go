// Command demo is `make demo`: SmartScale's main job on the local stack.
// It starts a real Kubernetes control plane with kwok (fake kubelets) on
// loopback, runs `smartscale serve` on the embedded defaults (memory state,
// kwok provider) with a fresh bearer token and demo-short cooldowns, and
// tells the story: the reconciler brings an empty group to its minimum,
// a scale-up notification (as Alertmanager sends it) adds nodes, its repeat
// is held by the cooldown, a scale-down notification drains and removes a
// node. It prints a timeline and every decision's reasons, then stops
// everything it started, by PID. DEMO_KEEP=1 keeps it running until Ctrl-C.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/smartscale/smartscale/e2e/stack"
	"github.com/smartscale/smartscale/internal/decision"
)

func main() {
	bin := flag.String("bin", "bin/smartscale", "smartscale binary")
	sample := flag.String("notification", "e2e/testdata/sample-notification.json", "notification to post")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *sample); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	start  time.Time
	base   string
	token  string
	client kubernetes.Interface
}

func (d *demo) say(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, bin, sample string) error {
	d := &demo{start: time.Now()}
	work, err := os.MkdirTemp("", "smartscale-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	d.say("starting the local stack: etcd, kube-apiserver, controller-manager, scheduler, kwok (127.0.0.1 only)")
	st, err := stack.Launch(ctx, stack.Options{Kwok: true, Logf: func(string, ...any) {}}, filepath.Join(work, "stack"))
	if err != nil {
		return fmt.Errorf("start the stack (run `make tools` first if a binary is missing): %w", err)
	}
	defer st.Stop()
	d.client = st.Client()
	d.say("stack ready: API server %s", st.APIServerURL)

	port, err := freePort()
	if err != nil {
		return err
	}
	var raw [18]byte
	_, _ = rand.Read(raw[:])
	d.token = hex.EncodeToString(raw[:])
	tokenFile := filepath.Join(work, "token")
	cfgFile := filepath.Join(work, "smartscale.yaml")
	if err := os.WriteFile(tokenFile, []byte(d.token+"\n"), 0o600); err != nil {
		return err
	}
	// The embedded defaults, with demo-short cooldowns so the story fits in
	// a minute, and the stack's kubeconfig.
	cfg := fmt.Sprintf(`clusterID: demo
nodeGroups:
  - name: workers
    cooldowns: {scaleUp: 10s, scaleDown: 5s}
    scaleDownDelayAfterScaleUp: 5s
    minNodeAge: 0s
    nodeReadyTimeout: 60s
    drainTimeout: 60s
kube:
  kubeconfig: %s
server:
  listenAddress: 127.0.0.1:%d
  auth:
    bearerTokenFile: %s
`, st.KubeconfigPath, port, tokenFile)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return err
	}
	d.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	serve, err := stack.StartProcess(stack.ProcessConfig{Name: "smartscale", Path: bin,
		Args: []string{"serve", "--config", cfgFile}, LogPath: filepath.Join(work, "smartscale.log")})
	if err != nil {
		return err
	}
	defer func() { _ = serve.Stop(10 * time.Second) }()
	if err := d.waitReady(ctx); err != nil {
		return fmt.Errorf("%w\n%s", err, serve.LogTail(30))
	}
	d.say("smartscale serve ready on %s (memory state, kwok provider)", d.base)

	d.say("the group starts empty; the reconciler enforces minNodes=2, one per zone, with no alert")
	if err := d.waitNodes(ctx, 2, 90*time.Second); err != nil {
		return err
	}

	d.say("that launch started the 10s scale-up cooldown; waiting it out")
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(11 * time.Second):
	}

	body, err := os.ReadFile(sample)
	if err != nil {
		return err
	}
	body = bytes.ReplaceAll(body, []byte("__NOW__"), []byte(time.Now().UTC().Format(time.RFC3339)))
	d.say("POST /v1/alerts: SmartScalePodsPending (scale_up, urgency high) + SmartScaleNodeGroupIdle (scale_down) + an alert for an unknown group")
	if err := d.post(ctx, body, http.StatusAccepted); err != nil {
		return err
	}
	if err := d.waitNodes(ctx, 4, 90*time.Second); err != nil {
		return err
	}
	d.say("the same notification again (Alertmanager's repeat, or its HA peer's copy)")
	if err := d.post(ctx, body, http.StatusOK); err != nil {
		return err
	}

	d.say("waiting out the scale-down delay after the scale-up (5s)")
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(6 * time.Second):
	}
	idle := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"smartscale","groupKey":"{}:{alertname=\"SmartScaleNodeGroupIdle\"}",
"alerts":[{"status":"firing","labels":{"alertname":"SmartScaleNodeGroupIdle","smartscale_action":"scale_down","smartscale_nodegroup":"workers","severity":"info"},
"annotations":{"summary":"workers idle for 10m"},"startsAt":%q,"fingerprint":"7c6a180b36896a0b"}]}`, time.Now().UTC().Format(time.RFC3339))
	d.say("POST /v1/alerts: SmartScaleNodeGroupIdle alone (scale_down)")
	if err := d.post(ctx, []byte(idle), http.StatusAccepted); err != nil {
		return err
	}
	if err := d.waitNodes(ctx, 3, 90*time.Second); err != nil {
		return err
	}
	if err := d.printDecisions(ctx); err != nil {
		return err
	}
	if os.Getenv("DEMO_KEEP") == "1" {
		d.say("DEMO_KEEP=1: kubeconfig %s, webhook %s, token in %s — Ctrl-C to stop", st.KubeconfigPath, d.base, tokenFile)
		<-ctx.Done()
	}
	d.say("done: stopping smartscale and the stack")
	return nil
}

func (d *demo) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		code, _, err := d.call(ctx, http.MethodGet, "/readyz", nil)
		if err == nil && code == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("smartscale serve not ready after 60s")
}

// waitNodes waits until the group has want Ready nodes, printing changes.
func (d *demo) waitNodes(ctx context.Context, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		list, err := d.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "smartscale.io/nodegroup=workers"})
		if err != nil {
			return err
		}
		var names []string
		readyCount := 0
		for _, n := range list.Items {
			state := "NotReady"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					state, readyCount = "Ready", readyCount+1
				}
			}
			if n.Spec.Unschedulable {
				state += ",cordoned"
			}
			names = append(names, fmt.Sprintf("%s(%s %s %s)", n.Name, n.Labels[corev1.LabelTopologyZone], n.Labels["smartscale.io/market"], state))
		}
		sort.Strings(names)
		if now := strings.Join(names, " "); now != last {
			d.say("nodes: %d  %s", len(names), now)
			last = now
		}
		if readyCount == want && len(list.Items) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the group did not reach %d Ready nodes within %s", want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (d *demo) post(ctx context.Context, body []byte, want int) error {
	code, reply, err := d.call(ctx, http.MethodPost, "/v1/alerts", body)
	if err != nil {
		return err
	}
	var answer struct {
		Status    string            `json:"status"`
		Decisions []decision.Record `json:"decisions"`
	}
	if err := json.Unmarshal(reply, &answer); err != nil {
		return fmt.Errorf("answer %q: %w", reply, err)
	}
	d.say("answer: HTTP %d %s", code, answer.Status)
	for _, rec := range answer.Decisions {
		fmt.Printf("           decision: nodegroup=%s action=%s outcome=%s count=%d node=%s\n", rec.NodeGroup, rec.Action, rec.Outcome, rec.Count, rec.Node)
		for _, r := range rec.Reasons {
			fmt.Printf("               why: %s\n", r)
		}
	}
	if code != want {
		return fmt.Errorf("expected HTTP %d, got %d", want, code)
	}
	return nil
}

func (d *demo) printDecisions(ctx context.Context) error {
	_, reply, err := d.call(ctx, http.MethodGet, "/v1/decisions?group=workers&limit=20", nil)
	if err != nil {
		return err
	}
	var list struct {
		Decisions []decision.Record `json:"decisions"`
	}
	if err := json.Unmarshal(reply, &list); err != nil {
		return err
	}
	d.say("GET /v1/decisions?group=workers — %d recorded, oldest first:", len(list.Decisions))
	for i := len(list.Decisions) - 1; i >= 0; i-- {
		r := list.Decisions[i]
		why := ""
		if len(r.Reasons) > 0 {
			why = r.Reasons[0]
		}
		fmt.Printf("           %s %-12s %-10s %s\n", r.Time.Format("15:04:05"), r.Action, r.Outcome, why)
	}
	return nil
}

func (d *demo) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
