// Package alert decodes Alertmanager webhook notifications and turns their
// alerts into scaling signals through the label contract shared with rules/:
//
//	smartscale_action     scale_up | scale_down   (required; routes to the webhook)
//	smartscale_nodegroup  a configured group       (default "workers")
//	smartscale_urgency    normal | high            (default "normal")
//
// Decoding is strict about structure (a payload that is not a version "4"
// notification is a 400 naming the field) and lenient about additions
// (unknown fields are ignored, as newer Alertmanagers add them). Contract
// checks are per alert: one alert that breaks the contract is ignored with
// a reason, and never costs the good alerts of the same notification.
package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// Version is the webhook payload version SmartScale understands.
const Version = "4"

// MaxAlerts bounds the alerts of one notification; Alertmanager's
// max_alerts on the webhook receiver should stay below it.
const MaxAlerts = 1000

// Message is Alertmanager's webhook body: the fields of
// notify/webhook.Message, declared here so that decoding a payload does not
// pull in Alertmanager's whole notification pipeline (template.Data alone is
// a small dependency).
type Message struct {
	template.Data
	Version         string
	GroupKey        string
	TruncatedAlerts uint64
}

// DecodeError says which field of a payload is wrong, and why.
type DecodeError struct {
	Field   string `json:"field"`
	Problem string `json:"error"`
}

func (e *DecodeError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Problem) }

func fieldErr(field, format string, args ...any) *DecodeError {
	return &DecodeError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// wireMessage holds the top level with every field raw, so that each can be
// decoded on its own and an error can name it.
type wireMessage struct {
	Version           json.RawMessage `json:"version"`
	GroupKey          json.RawMessage `json:"groupKey"`
	TruncatedAlerts   json.RawMessage `json:"truncatedAlerts"`
	Status            json.RawMessage `json:"status"`
	Receiver          json.RawMessage `json:"receiver"`
	NotificationReson json.RawMessage `json:"notification_reason"`
	GroupLabels       json.RawMessage `json:"groupLabels"`
	CommonLabels      json.RawMessage `json:"commonLabels"`
	CommonAnnotations json.RawMessage `json:"commonAnnotations"`
	RouteLabels       json.RawMessage `json:"routeLabels"`
	ExternalURL       json.RawMessage `json:"externalURL"`
	Alerts            json.RawMessage `json:"alerts"`
}

type wireAlert struct {
	Status       json.RawMessage `json:"status"`
	Labels       json.RawMessage `json:"labels"`
	Annotations  json.RawMessage `json:"annotations"`
	StartsAt     json.RawMessage `json:"startsAt"`
	EndsAt       json.RawMessage `json:"endsAt"`
	GeneratorURL json.RawMessage `json:"generatorURL"`
	Fingerprint  json.RawMessage `json:"fingerprint"`
}

// Decode parses one webhook body. Every error is a *DecodeError.
func Decode(body []byte) (*Message, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, fieldErr("body", "empty body, want an Alertmanager webhook notification (JSON object)")
	}
	if body[0] != '{' {
		return nil, fieldErr("body", "want a JSON object")
	}
	var w wireMessage
	if err := strictUnmarshal(body, &w); err != nil {
		return nil, fieldErr("body", "not valid JSON: %v", err)
	}

	m := &Message{}
	var err error
	if isAbsent(w.Version) {
		return nil, fieldErr("version", "missing, want %q", Version)
	}
	if m.Version, err = str("version", w.Version, true); err != nil {
		return nil, err
	}
	if m.Version != Version {
		return nil, fieldErr("version", "unsupported payload version %q, want %q", m.Version, Version)
	}
	if m.GroupKey, err = str("groupKey", w.GroupKey, false); err != nil {
		return nil, err
	}
	if !isAbsent(w.TruncatedAlerts) {
		if err := json.Unmarshal(w.TruncatedAlerts, &m.TruncatedAlerts); err != nil {
			return nil, fieldErr("truncatedAlerts", "want a non-negative integer, got %s", clip(w.TruncatedAlerts))
		}
	}
	if m.Status, err = status("status", w.Status); err != nil {
		return nil, err
	}
	if m.Receiver, err = str("receiver", w.Receiver, false); err != nil {
		return nil, err
	}
	if m.NotificationReason, err = str("notification_reason", w.NotificationReson, false); err != nil {
		return nil, err
	}
	if m.ExternalURL, err = str("externalURL", w.ExternalURL, false); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *template.KV
	}{
		{"groupLabels", w.GroupLabels, &m.GroupLabels},
		{"commonLabels", w.CommonLabels, &m.CommonLabels},
		{"commonAnnotations", w.CommonAnnotations, &m.CommonAnnotations},
		{"routeLabels", w.RouteLabels, &m.RouteLabels},
	} {
		if *f.dst, err = kv(f.name, f.raw); err != nil {
			return nil, err
		}
	}

	if isAbsent(w.Alerts) {
		return nil, fieldErr("alerts", "missing, want an array of alerts")
	}
	var rawAlerts []json.RawMessage
	if err := json.Unmarshal(w.Alerts, &rawAlerts); err != nil {
		return nil, fieldErr("alerts", "want an array of alerts, got %s", clip(w.Alerts))
	}
	if len(rawAlerts) > MaxAlerts {
		return nil, fieldErr("alerts", "%d alerts exceed the limit of %d (set max_alerts on the webhook receiver)", len(rawAlerts), MaxAlerts)
	}
	m.Alerts = make(template.Alerts, 0, len(rawAlerts))
	for i, raw := range rawAlerts {
		a, err := decodeAlert(fmt.Sprintf("alerts[%d]", i), raw)
		if err != nil {
			return nil, err
		}
		m.Alerts = append(m.Alerts, a)
	}
	return m, nil
}

func decodeAlert(field string, raw json.RawMessage) (template.Alert, error) {
	var a template.Alert
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return a, fieldErr(field, "want an alert object, got %s", clip(raw))
	}
	var w wireAlert
	if err := json.Unmarshal(raw, &w); err != nil {
		return a, fieldErr(field, "%v", err)
	}
	var err error
	if a.Status, err = status(field+".status", w.Status); err != nil {
		return a, err
	}
	if isAbsent(w.Labels) {
		return a, fieldErr(field+".labels", "missing")
	}
	if a.Labels, err = kv(field+".labels", w.Labels); err != nil {
		return a, err
	}
	if a.Annotations, err = kv(field+".annotations", w.Annotations); err != nil {
		return a, err
	}
	if isAbsent(w.StartsAt) {
		return a, fieldErr(field+".startsAt", "missing")
	}
	if a.StartsAt, err = timestamp(field+".startsAt", w.StartsAt); err != nil {
		return a, err
	}
	if !isAbsent(w.EndsAt) {
		if a.EndsAt, err = timestamp(field+".endsAt", w.EndsAt); err != nil {
			return a, err
		}
	}
	if a.GeneratorURL, err = str(field+".generatorURL", w.GeneratorURL, false); err != nil {
		return a, err
	}
	if a.Fingerprint, err = str(field+".fingerprint", w.Fingerprint, true); err != nil {
		return a, err
	}
	return a, nil
}

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

func str(field string, raw json.RawMessage, required bool) (string, error) {
	if isAbsent(raw) {
		if required {
			return "", fieldErr(field, "missing")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(field, "want a string, got %s", clip(raw))
	}
	if required && s == "" {
		return "", fieldErr(field, "must not be empty")
	}
	return s, nil
}

func status(field string, raw json.RawMessage) (string, error) {
	s, err := str(field, raw, true)
	if err != nil {
		return "", err
	}
	if s != "firing" && s != "resolved" {
		return "", fieldErr(field, "want \"firing\" or \"resolved\", got %q", s)
	}
	return s, nil
}

func kv(field string, raw json.RawMessage) (template.KV, error) {
	if isAbsent(raw) {
		return template.KV{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fieldErr(field, "want an object of string values, got %s", clip(raw))
	}
	out := make(template.KV, len(m))
	for k, v := range m {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fieldErr(field+"."+k, "want a string value, got %s", clip(v))
		}
		out[k] = s
	}
	return out, nil
}

func timestamp(field string, raw json.RawMessage) (time.Time, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fieldErr(field, "want an RFC 3339 timestamp string, got %s", clip(raw))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fieldErr(field, "want an RFC 3339 timestamp, got %q", s)
	}
	return t, nil
}

// strictUnmarshal rejects trailing data after the JSON value.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// clip shortens a raw value for an error message.
func clip(raw []byte) string {
	const max = 40
	if len(raw) == 0 {
		return "nothing"
	}
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}
