// Command demo is `make demo`: it starts `smartscale serve` on its embedded
// defaults (memory state, dry run) with a fresh bearer token, posts a
// notification shaped exactly as Alertmanager v0.35 sends it, and prints
// what SmartScale decided and why. It stops the server it started, by PID.
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
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/smartscale/smartscale/internal/decision"
)

func main() {
	bin := flag.String("bin", "bin/smartscale", "smartscale binary")
	sample := flag.String("notification", "e2e/testdata/sample-notification.json", "notification to post")
	flag.Parse()
	if err := run(*bin, *sample); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin, sample string) error {
	work, err := os.MkdirTemp("", "smartscale-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	port, err := freePort()
	if err != nil {
		return err
	}
	var raw [18]byte
	_, _ = rand.Read(raw[:])
	token := hex.EncodeToString(raw[:])
	tokenFile := filepath.Join(work, "token")
	cfgFile := filepath.Join(work, "smartscale.yaml")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	cfg := fmt.Sprintf("clusterID: demo\ndryRun: true\nserver:\n  listenAddress: 127.0.0.1:%d\n  auth:\n    bearerTokenFile: %s\n", port, tokenFile)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return err
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	fmt.Printf("==> smartscale serve (embedded defaults: memory state, kwok, dry run) on %s\n", base)
	logFile, err := os.Create(filepath.Join(work, "serve.log"))
	if err != nil {
		return err
	}
	serve := exec.Command(bin, "serve", "--config", cfgFile)
	serve.Stdout, serve.Stderr = logFile, logFile
	if err := serve.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	defer func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = serve.Process.Kill()
			<-exited
		}
	}()
	if err := waitHealthy(base, exited); err != nil {
		log, _ := os.ReadFile(logFile.Name())
		return fmt.Errorf("%w\n%s", err, log)
	}

	body, err := os.ReadFile(sample)
	if err != nil {
		return err
	}
	body = bytes.ReplaceAll(body, []byte("__NOW__"), []byte(time.Now().UTC().Format(time.RFC3339)))
	var shown struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(body, &shown); err != nil {
		return fmt.Errorf("%s: %w", sample, err)
	}
	fmt.Printf("==> POST /v1/alerts: one notification as Alertmanager sends it, %d alerts\n", len(shown.Alerts))
	for _, a := range shown.Alerts {
		fmt.Printf("    %-26s %-8s action=%s nodegroup=%s urgency=%s\n", a.Labels["alertname"], a.Status,
			a.Labels["smartscale_action"], a.Labels["smartscale_nodegroup"], a.Labels["smartscale_urgency"])
	}
	code, reply, err := call(http.MethodPost, base+"/v1/alerts", token, body)
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
	fmt.Printf("==> answer: HTTP %d, %s\n", code, answer.Status)
	for _, d := range answer.Decisions {
		fmt.Printf("    decision: nodegroup=%s action=%s outcome=%s count=%d\n", d.NodeGroup, d.Action, d.Outcome, d.Count)
		for _, r := range d.Reasons {
			fmt.Printf("        why: %s\n", r)
		}
	}
	if code != http.StatusAccepted {
		return fmt.Errorf("expected 202 Accepted, got %d", code)
	}

	_, listed, err := call(http.MethodGet, base+"/v1/decisions?limit=10", token, nil)
	if err != nil {
		return err
	}
	var log struct {
		Decisions []decision.Record `json:"decisions"`
	}
	if err := json.Unmarshal(listed, &log); err != nil {
		return err
	}
	fmt.Printf("==> GET /v1/decisions: %d recorded\n", len(log.Decisions))

	code, bad, err := call(http.MethodPost, base+"/v1/alerts", token, []byte(`{"version":"3","alerts":[]}`))
	if err != nil {
		return err
	}
	fmt.Printf("==> a bad payload: HTTP %d %s\n", code, strings.TrimSpace(string(bad)))
	code, _, err = call(http.MethodPost, base+"/v1/alerts", "wrong-token", body)
	if err != nil {
		return err
	}
	fmt.Printf("==> a wrong token: HTTP %d\n", code)
	fmt.Println("==> done (see README.md: `make test` runs every test)")
	return nil
}

func call(method, url, token string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func waitHealthy(base string, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("smartscale serve exited: %v", err)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("smartscale serve not healthy after 15s")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
