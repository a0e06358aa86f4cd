// Package alerttest holds webhook payloads for tests of the decoder and of
// the HTTP layer: a valid notification builder and the malformed cases,
// each with the status code and field the answer must name.
package alerttest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Alert builds one alert of a notification.
type Alert struct {
	Name, Action, NodeGroup, Urgency, Status, Fingerprint string
	StartsAt                                              time.Time
}

// Notification renders a version "4" webhook body as Alertmanager v0.35
// sends it (with notification_reason and routeLabels).
func Notification(groupKey string, alerts ...Alert) []byte {
	b, err := json.Marshal(notificationMap(groupKey, alerts...))
	if err != nil {
		panic(err) // only maps of plain values: cannot fail
	}
	return b
}

func notificationMap(groupKey string, alerts ...Alert) map[string]any {
	status := "resolved"
	var list []any
	for i, a := range alerts {
		if a.Status == "" {
			a.Status = "firing"
		}
		if a.Status == "firing" {
			status = "firing"
		}
		if a.Fingerprint == "" {
			a.Fingerprint = fmt.Sprintf("%016x", i+1)
		}
		if a.StartsAt.IsZero() {
			a.StartsAt = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		}
		labels := map[string]any{"alertname": a.Name, "severity": "warning"}
		if a.Action != "" {
			labels["smartscale_action"] = a.Action
		}
		if a.NodeGroup != "" {
			labels["smartscale_nodegroup"] = a.NodeGroup
		}
		if a.Urgency != "" {
			labels["smartscale_urgency"] = a.Urgency
		}
		endsAt := "0001-01-01T00:00:00Z"
		if a.Status == "resolved" {
			endsAt = a.StartsAt.Add(10 * time.Minute).Format(time.RFC3339Nano)
		}
		list = append(list, map[string]any{
			"status":       a.Status,
			"labels":       labels,
			"annotations":  map[string]any{"summary": a.Name + " summary", "runbook_url": "https://runbooks.example.com/" + a.Name},
			"startsAt":     a.StartsAt.Format(time.RFC3339Nano),
			"endsAt":       endsAt,
			"generatorURL": "http://prometheus:9090/graph?g0.expr=up",
			"fingerprint":  a.Fingerprint,
		})
	}
	if list == nil {
		list = []any{}
	}
	return map[string]any{
		"receiver":            "smartscale",
		"status":              status,
		"notification_reason": "new_alerts",
		"alerts":              list,
		"groupLabels":         map[string]any{},
		"commonLabels":        map[string]any{},
		"commonAnnotations":   map[string]any{},
		"routeLabels":         map[string]any{},
		"externalURL":         "http://alertmanager:9093",
		"version":             "4",
		"groupKey":            groupKey,
		"truncatedAlerts":     0,
	}
}

// Case is one malformed request and the answer it must get.
type Case struct {
	Name        string
	Body        string
	ContentType string // "" means application/json
	Code        int
	Field       string
}

// mutate returns a valid two-alert body with one change applied.
func mutate(change func(m map[string]any, alerts []any)) string {
	m := notificationMap("{}:{}",
		Alert{Name: "SmartScaleCPUHigh", Action: "scale_up", NodeGroup: "workers"},
		Alert{Name: "SmartScaleIdle", Action: "scale_down", NodeGroup: "workers"})
	change(m, m["alerts"].([]any))
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func first(alerts []any) map[string]any { return alerts[0].(map[string]any) }

// Malformed returns the malformed payloads; every one must be refused with
// Code and name Field.
func Malformed() []Case {
	valid := mutate(func(map[string]any, []any) {})
	many := make([]any, 1001)
	c := []Case{
		{Name: "empty body", Body: "", Field: "body"},
		{Name: "whitespace body", Body: " \n\t ", Field: "body"},
		{Name: "not JSON", Body: "hello alertmanager", Field: "body"},
		{Name: "JSON array", Body: "[]", Field: "body"},
		{Name: "JSON string", Body: `"version 4"`, Field: "body"},
		{Name: "truncated JSON", Body: valid[:len(valid)/2], Field: "body"},
		{Name: "trailing garbage", Body: valid + " xyz", Field: "body"},
		{Name: "two objects", Body: valid + valid, Field: "body"},
		{Name: "missing version", Body: mutate(func(m map[string]any, _ []any) { delete(m, "version") }), Field: "version"},
		{Name: "version 3", Body: mutate(func(m map[string]any, _ []any) { m["version"] = "3" }), Field: "version"},
		{Name: "version as number", Body: mutate(func(m map[string]any, _ []any) { m["version"] = 4 }), Field: "version"},
		{Name: "empty version", Body: mutate(func(m map[string]any, _ []any) { m["version"] = "" }), Field: "version"},
		{Name: "missing alerts", Body: mutate(func(m map[string]any, _ []any) { delete(m, "alerts") }), Field: "alerts"},
		{Name: "null alerts", Body: mutate(func(m map[string]any, _ []any) { m["alerts"] = nil }), Field: "alerts"},
		{Name: "alerts object", Body: mutate(func(m map[string]any, _ []any) { m["alerts"] = map[string]any{"a": 1} }), Field: "alerts"},
		{Name: "alerts string", Body: mutate(func(m map[string]any, _ []any) { m["alerts"] = "[]" }), Field: "alerts"},
		{Name: "too many alerts", Body: mutate(func(m map[string]any, _ []any) { m["alerts"] = many }), Field: "alerts"},
		{Name: "missing status", Body: mutate(func(m map[string]any, _ []any) { delete(m, "status") }), Field: "status"},
		{Name: "unknown status", Body: mutate(func(m map[string]any, _ []any) { m["status"] = "pending" }), Field: "status"},
		{Name: "status as number", Body: mutate(func(m map[string]any, _ []any) { m["status"] = 1 }), Field: "status"},
		{Name: "groupKey as number", Body: mutate(func(m map[string]any, _ []any) { m["groupKey"] = 42 }), Field: "groupKey"},
		{Name: "negative truncatedAlerts", Body: mutate(func(m map[string]any, _ []any) { m["truncatedAlerts"] = -1 }), Field: "truncatedAlerts"},
		{Name: "truncatedAlerts as string", Body: mutate(func(m map[string]any, _ []any) { m["truncatedAlerts"] = "3" }), Field: "truncatedAlerts"},
		{Name: "fractional truncatedAlerts", Body: mutate(func(m map[string]any, _ []any) { m["truncatedAlerts"] = 1.5 }), Field: "truncatedAlerts"},
		{Name: "receiver as number", Body: mutate(func(m map[string]any, _ []any) { m["receiver"] = 7 }), Field: "receiver"},
		{Name: "externalURL as bool", Body: mutate(func(m map[string]any, _ []any) { m["externalURL"] = true }), Field: "externalURL"},
		{Name: "groupLabels array", Body: mutate(func(m map[string]any, _ []any) { m["groupLabels"] = []any{"a"} }), Field: "groupLabels"},
		{Name: "commonLabels value number", Body: mutate(func(m map[string]any, _ []any) { m["commonLabels"] = map[string]any{"severity": 3} }), Field: "commonLabels.severity"},
		{Name: "alert is a string", Body: mutate(func(_ map[string]any, a []any) { a[0] = "alert" }), Field: "alerts[0]"},
		{Name: "alert is null", Body: mutate(func(_ map[string]any, a []any) { a[0] = nil }), Field: "alerts[0]"},
		{Name: "alert without status", Body: mutate(func(_ map[string]any, a []any) { delete(first(a), "status") }), Field: "alerts[0].status"},
		{Name: "alert status active", Body: mutate(func(_ map[string]any, a []any) { first(a)["status"] = "active" }), Field: "alerts[0].status"},
		{Name: "alert without labels", Body: mutate(func(_ map[string]any, a []any) { delete(first(a), "labels") }), Field: "alerts[0].labels"},
		{Name: "alert labels array", Body: mutate(func(_ map[string]any, a []any) { first(a)["labels"] = []any{} }), Field: "alerts[0].labels"},
		{Name: "alert label value number", Body: mutate(func(_ map[string]any, a []any) {
			first(a)["labels"] = map[string]any{"alertname": "X", "smartscale_action": 1}
		}), Field: "alerts[0].labels.smartscale_action"},
		{Name: "alert annotations string", Body: mutate(func(_ map[string]any, a []any) { first(a)["annotations"] = "summary" }), Field: "alerts[0].annotations"},
		{Name: "alert without startsAt", Body: mutate(func(_ map[string]any, a []any) { delete(first(a), "startsAt") }), Field: "alerts[0].startsAt"},
		{Name: "startsAt not a time", Body: mutate(func(_ map[string]any, a []any) { first(a)["startsAt"] = "yesterday" }), Field: "alerts[0].startsAt"},
		{Name: "startsAt as number", Body: mutate(func(_ map[string]any, a []any) { first(a)["startsAt"] = 1764234000 }), Field: "alerts[0].startsAt"},
		{Name: "startsAt without zone", Body: mutate(func(_ map[string]any, a []any) { first(a)["startsAt"] = "2026-11-27T09:00:00" }), Field: "alerts[0].startsAt"},
		{Name: "endsAt month 13", Body: mutate(func(_ map[string]any, a []any) { first(a)["endsAt"] = "2026-13-01T00:00:00Z" }), Field: "alerts[0].endsAt"},
		{Name: "alert without fingerprint", Body: mutate(func(_ map[string]any, a []any) { delete(first(a), "fingerprint") }), Field: "alerts[0].fingerprint"},
		{Name: "fingerprint as number", Body: mutate(func(_ map[string]any, a []any) { first(a)["fingerprint"] = 12 }), Field: "alerts[0].fingerprint"},
		{Name: "generatorURL as number", Body: mutate(func(_ map[string]any, a []any) { first(a)["generatorURL"] = 1 }), Field: "alerts[0].generatorURL"},
		{Name: "second alert bad startsAt", Body: mutate(func(_ map[string]any, a []any) {
			a[1].(map[string]any)["startsAt"] = "2026-11-27 09:00"
		}), Field: "alerts[1].startsAt"},
		{Name: "text/plain content type", Body: valid, ContentType: "text/plain", Code: 415, Field: "Content-Type"},
		{Name: "form content type", Body: valid, ContentType: "application/x-www-form-urlencoded", Code: 415, Field: "Content-Type"},
		{Name: "body over 1 MiB", Body: `{"version":"4","alerts":[],"status":"firing","receiver":"` + strings.Repeat("x", 2<<20) + `"}`, Code: 413, Field: "body"},
	}
	for i := range c {
		if c[i].Code == 0 {
			c[i].Code = 400
		}
	}
	return c
}
