package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Slack posts to an incoming webhook.
type Slack struct {
	url    string
	client *http.Client
}

// NewSlack posts to webhookURL (a secret: never logged).
func NewSlack(webhookURL string, client *http.Client) *Slack {
	if client == nil {
		client = http.DefaultClient
	}
	return &Slack{url: webhookURL, client: client}
}

// Name is the notifier's metric label.
func (s *Slack) Name() string { return "slack" }

// Notify posts the notice as blocks, with the title as fallback text.
func (s *Slack) Notify(ctx context.Context, n Notice) error {
	body, err := json.Marshal(SlackMessage(n))
	if err != nil {
		return fmt.Errorf("encode slack message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("slack request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL is a secret; the client error would print it.
		return fmt.Errorf("post to slack: %w", redact(err, s.url))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("slack answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secret string) error {
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "<slack-webhook-url>"), err: err}
}

// SlackMessage renders the incoming-webhook payload: emoji by outcome, the
// group and before → after count, nodes with zone and market, reasons,
// links, and a recommendation when something went wrong.
func SlackMessage(n Notice) map[string]any {
	emoji := map[string]string{"succeeded": ":white_check_mark:", "partial": ":warning:", "failed": ":x:", "dry_run": ":test_tube:"}[n.Outcome]
	if emoji == "" {
		emoji = ":information_source:"
	}
	if n.Action == "interruption" && n.Outcome != "failed" {
		emoji = ":rotating_light:"
	}
	blocks := []any{
		section(fmt.Sprintf("%s *%s*", emoji, n.Title())),
	}
	fields := []any{
		mrkdwn("*Node group*\n" + n.NodeGroup),
		mrkdwn(fmt.Sprintf("*Nodes*\n%d → %d", n.Before, n.After)),
		mrkdwn("*Action*\n" + n.Action),
		mrkdwn(fmt.Sprintf("*Took*\n%s", n.Duration.Round(100_000_000))),
	}
	blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
	if len(n.Nodes) > 0 {
		var lines []string
		for _, nd := range n.Nodes {
			lines = append(lines, fmt.Sprintf("• `%s` %s %s %s %s", nd.Name, nd.InstanceID, nd.Zone, nd.Market, nd.InstanceType))
		}
		blocks = append(blocks, section("*Nodes*\n"+strings.Join(lines, "\n")))
	}
	if len(n.Reasons) > 0 {
		blocks = append(blocks, section("*Why*\n• "+strings.Join(n.Reasons, "\n• ")))
	}
	if n.Error != "" {
		blocks = append(blocks, section("*Error*\n```"+n.Error+"```"))
	}
	if n.Recommendation != "" {
		blocks = append(blocks, section(":bulb: *Recommendation*: "+n.Recommendation))
	}
	var links []string
	if n.DashboardURL != "" {
		links = append(links, fmt.Sprintf("<%s|Grafana dashboard>", n.DashboardURL))
	}
	if n.RunbookURL != "" {
		links = append(links, fmt.Sprintf("<%s|Runbook>", n.RunbookURL))
	}
	if len(links) > 0 {
		blocks = append(blocks, map[string]any{"type": "context", "elements": []any{mrkdwn(strings.Join(links, " · "))}})
	}
	return map[string]any{"text": n.Title(), "blocks": blocks}
}

func section(text string) map[string]any {
	return map[string]any{"type": "section", "text": mrkdwn(text)}
}

func mrkdwn(text string) map[string]any { return map[string]any{"type": "mrkdwn", "text": text} }
