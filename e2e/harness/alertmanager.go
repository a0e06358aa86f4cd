package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/smartscale/smartscale/e2e/stack"
)

// AlertmanagerOptions points alertmanager/alertmanager.yml at a test.
type AlertmanagerOptions struct {
	// WebhookURLs receive the smartscale receiver's notifications (base
	// URLs of serve processes; /v1/alerts is appended). Several URLs
	// become several webhook_configs, so every replica gets every
	// notification, the harshest duplicate case.
	WebhookURLs []string
	// TokenFile holds the webhooks' bearer token.
	TokenFile string
	// SlackURL, when set, receives the Slack receivers' posts (with the
	// receiver's name appended to the path); empty removes them.
	SlackURL string
	// SNSURL, when set, receives the SNS receiver's publishes (signed with
	// test credentials); empty removes them.
	SNSURL string
	// GroupWait, GroupInterval and RepeatInterval replace the smartscale
	// route's timers when set (tests cannot wait 10s/1m/5m).
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// Dir receives the secret files the configuration names.
	Dir string
}

// AlertmanagerConfig is alertmanager/alertmanager.yml with its receivers'
// endpoints and secret files pointed at a test: routes, inhibitions and
// templates are the real ones; only the smartscale route's timers may be
// shortened.
func AlertmanagerConfig(opts AlertmanagerOptions) (string, error) {
	root := RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, "alertmanager", "alertmanager.yml"))
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("alertmanager/alertmanager.yml: %w", err)
	}
	cfg["templates"] = []any{filepath.Join(root, "alertmanager", "templates", "*.tmpl")}

	route, _ := cfg["route"].(map[string]any)
	routes, _ := route["routes"].([]any)
	timersSet := false
	for _, r := range routes {
		rm, _ := r.(map[string]any)
		if rm["receiver"] != "smartscale" {
			continue
		}
		for key, d := range map[string]time.Duration{"group_wait": opts.GroupWait, "group_interval": opts.GroupInterval, "repeat_interval": opts.RepeatInterval} {
			if d > 0 {
				rm[key] = d.String()
			}
		}
		timersSet = true
	}
	if !timersSet {
		return "", fmt.Errorf("alertmanager/alertmanager.yml: no route to receiver smartscale")
	}

	write := func(name, content string) (string, error) {
		p := filepath.Join(opts.Dir, name)
		return p, os.WriteFile(p, []byte(content), 0o600)
	}
	receivers, _ := cfg["receivers"].([]any)
	for _, r := range receivers {
		rm, _ := r.(map[string]any)
		name, _ := rm["name"].(string)
		if hooks := list(rm, "webhook_configs"); len(hooks) > 0 {
			template := hooks[0]
			var out []any
			for _, u := range opts.WebhookURLs {
				h := map[string]any{}
				for k, v := range template {
					h[k] = v
				}
				h["url"] = u + "/v1/alerts"
				h["http_config"] = map[string]any{"authorization": map[string]any{"type": "Bearer", "credentials_file": opts.TokenFile}}
				out = append(out, h)
			}
			rm["webhook_configs"] = out
		}
		if opts.SlackURL == "" {
			delete(rm, "slack_configs")
		}
		for _, sc := range list(rm, "slack_configs") {
			p, err := write(name+"-slack-url", opts.SlackURL+"/"+name)
			if err != nil {
				return "", err
			}
			sc["api_url_file"] = p
		}
		if opts.SNSURL == "" {
			delete(rm, "sns_configs")
		}
		for _, sc := range list(rm, "sns_configs") {
			sc["api_url"] = opts.SNSURL
			if sig, ok := sc["sigv4"].(map[string]any); ok {
				sig["access_key"], sig["secret_key"] = "test", "test"
			}
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

func list(m map[string]any, key string) []map[string]any {
	var out []map[string]any
	items, _ := m[key].([]any)
	for _, e := range items {
		if em, ok := e.(map[string]any); ok {
			out = append(out, em)
		}
	}
	return out
}

// PointAlertmanagers writes AlertmanagerConfig(opts) as the stack's
// Alertmanager configuration (a token file with token in opts.Dir) and
// reloads every replica.
func PointAlertmanagers(ctx context.Context, st *stack.Stack, token string, opts AlertmanagerOptions) error {
	opts.TokenFile = filepath.Join(opts.Dir, "smartscale-token")
	if err := os.WriteFile(opts.TokenFile, []byte(token), 0o600); err != nil {
		return err
	}
	cfg, err := AlertmanagerConfig(opts)
	if err != nil {
		return err
	}
	if err := os.WriteFile(st.AlertmanagerConfigPath(), []byte(cfg), 0o600); err != nil {
		return err
	}
	return st.ReloadAlertmanagers(ctx)
}
