package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smartscale.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheck(t *testing.T) {
	out, err := run(t, "config", "check", "../../internal/config/smartscale.example.yaml")
	if err != nil || !strings.Contains(out, ": ok: cluster local") {
		t.Fatalf("example: %v %s", err, out)
	}
	for _, tt := range []struct{ name, yaml, key string }{
		{"unknown key", "clusterID: a\nnodeGroups:\n  - name: workers\n    maxNode: 3\n", "nodeGroups[0].maxNode"},
		{"min > max", "nodeGroups:\n  - name: workers\n    minNodes: 8\n    maxNodes: 4\n", "nodeGroups[0].minNodes"},
		{"negative duration", "nodeGroups:\n  - name: workers\n    drainTimeout: -1m\n", "nodeGroups[0].drainTimeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.yaml)
			_, err := run(t, "config", "check", p)
			if err == nil || !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v does not name key %s and file %s", err, tt.key, p)
			}
		})
	}
}

func TestConfigExampleIsValid(t *testing.T) {
	out, err := run(t, "config", "example")
	if err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, out)
	if _, err := run(t, "config", "check", p); err != nil {
		t.Errorf("printed example fails its own check: %v", err)
	}
}

func TestServeRefusesWithoutAuth(t *testing.T) {
	t.Setenv(envBearerToken, "")
	_, err := run(t, "serve", "--listen", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "--insecure-no-auth") {
		t.Errorf("serve without auth: %v, want a refusal naming --insecure-no-auth", err)
	}
}

func TestServeReadsSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	p := writeFile(t, "server:\n  auth:\n    bearerTokenFile: "+empty+"\n")
	_, err := run(t, "serve", "--config", p)
	if err == nil || !strings.Contains(err.Error(), "server.auth.bearerTokenFile") {
		t.Errorf("empty token file: %v, want an error naming the key", err)
	}
	p = writeFile(t, "server:\n  auth:\n    basicAuth: {username: am, passwordFile: "+filepath.Join(dir, "missing")+"}\n")
	_, err = run(t, "serve", "--config", p)
	if err == nil || !strings.Contains(err.Error(), "server.auth.basicAuth.passwordFile") {
		t.Errorf("missing password file: %v, want an error naming the key", err)
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"config", "--help"}, {"config", "check", "--help"}, {"version", "--help"}} {
		out, err := run(t, args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %v %q", args, err, out)
		}
	}
	out, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "smartscale ") {
		t.Errorf("version: %v %q", err, out)
	}
}
