package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// matchPattern evaluates an EventBridge event pattern against an event the
// way EventBridge does: every field of the pattern must match (AND); a
// nested object matches the event's object at that key; an array lists the
// accepted values (OR); an event field that is itself an array matches when
// any of its elements does. Content filters (prefix, suffix, anything-but,
// exists, numeric, equals-ignore-case) are supported; anything else is an
// error rather than a guess.
func matchPattern(pattern, event map[string]any) (bool, error) {
	for key, want := range pattern {
		got, present := event[key]
		switch w := want.(type) {
		case map[string]any:
			obj, ok := got.(map[string]any)
			if !present || !ok {
				return false, nil
			}
			ok, err := matchPattern(w, obj)
			if err != nil || !ok {
				return false, err
			}
		case []any:
			ok, err := matchAnyOf(w, got, present)
			if err != nil || !ok {
				return false, err
			}
		default:
			return false, fmt.Errorf("pattern field %q: want an array or an object, got %T", key, want)
		}
	}
	return true, nil
}

func matchAnyOf(accepted []any, got any, present bool) (bool, error) {
	candidates := []any{got}
	if arr, ok := got.([]any); ok {
		candidates = arr
	}
	for _, a := range accepted {
		if filter, ok := a.(map[string]any); ok {
			ok, err := matchFilter(filter, candidates, present)
			if err != nil || ok {
				return ok, err
			}
			continue
		}
		if !present {
			continue
		}
		for _, c := range candidates {
			if equalJSON(a, c) {
				return true, nil
			}
		}
	}
	return false, nil
}

func matchFilter(filter map[string]any, candidates []any, present bool) (bool, error) {
	if len(filter) != 1 {
		return false, fmt.Errorf("content filter %v: want exactly one operator", filter)
	}
	for op, arg := range filter {
		if op == "exists" {
			want, ok := arg.(bool)
			if !ok {
				return false, fmt.Errorf("exists: want true or false, got %v", arg)
			}
			return want == present, nil
		}
		if !present {
			return false, nil
		}
		for _, c := range candidates {
			ok, err := matchOperator(op, arg, c)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

func matchOperator(op string, arg, c any) (bool, error) {
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		want, ok := arg.(string)
		if !ok {
			return false, fmt.Errorf("%s: want a string, got %v", op, arg)
		}
		s, ok := c.(string)
		if !ok {
			return false, nil
		}
		switch op {
		case "prefix":
			return strings.HasPrefix(s, want), nil
		case "suffix":
			return strings.HasSuffix(s, want), nil
		}
		return strings.EqualFold(s, want), nil
	case "anything-but":
		excluded := []any{arg}
		if list, ok := arg.([]any); ok {
			excluded = list
		}
		for _, e := range excluded {
			if nested, ok := e.(map[string]any); ok {
				for nop, narg := range nested {
					hit, err := matchOperator(nop, narg, c)
					if err != nil || hit {
						return false, err
					}
				}
				continue
			}
			if equalJSON(e, c) {
				return false, nil
			}
		}
		return true, nil
	case "numeric":
		return matchNumeric(arg, c)
	}
	return false, fmt.Errorf("content filter %q is not supported by this matcher", op)
}

func matchNumeric(arg, c any) (bool, error) {
	terms, ok := arg.([]any)
	if !ok || len(terms) == 0 || len(terms)%2 != 0 {
		return false, fmt.Errorf("numeric: want [op, value, ...], got %v", arg)
	}
	n, ok := c.(float64)
	if !ok {
		return false, nil
	}
	for i := 0; i < len(terms); i += 2 {
		op, _ := terms[i].(string)
		v, ok := terms[i+1].(float64)
		if !ok {
			return false, fmt.Errorf("numeric: %v is not a number", terms[i+1])
		}
		var hold bool
		switch op {
		case "<":
			hold = n < v
		case "<=":
			hold = n <= v
		case "=":
			hold = n == v
		case ">":
			hold = n > v
		case ">=":
			hold = n >= v
		default:
			return false, fmt.Errorf("numeric: unknown operator %q", op)
		}
		if !hold {
			return false, nil
		}
	}
	return true, nil
}

// equalJSON compares decoded JSON scalars: a string never equals a number.
func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	return false
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// The matcher itself is tested on the cases of the EventBridge user guide's
// "Event patterns" and "Content filtering" pages.
func TestMatchPattern(t *testing.T) {
	event := decode(t, `{
		"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
		"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"],
		"detail": {"instance-id": "i-0abc", "state": "terminated", "count": 5, "flag": null,
			"tags": ["a", "b"], "nested": {"deep": "yes"}}
	}`)
	cases := []struct {
		name    string
		pattern string
		want    bool
		wantErr bool
	}{
		{"one literal", `{"source": ["aws.ec2"]}`, true, false},
		{"any of several", `{"source": ["aws.s3", "aws.ec2"]}`, true, false},
		{"none of several", `{"source": ["aws.s3", "aws.sqs"]}`, false, false},
		{"all fields must match", `{"source": ["aws.ec2"], "detail-type": ["Other"]}`, false, false},
		{"nested object", `{"detail": {"state": ["stopped", "terminated"]}}`, true, false},
		{"nested object mismatch", `{"detail": {"state": ["running"]}}`, false, false},
		{"two levels deep", `{"detail": {"nested": {"deep": ["yes"]}}}`, true, false},
		{"missing field", `{"detail": {"missing": ["x"]}}`, false, false},
		{"object where event has a string", `{"source": {"x": ["y"]}}`, false, false},
		{"event array: any element", `{"detail": {"tags": ["b"]}}`, true, false},
		{"event array: no element", `{"detail": {"tags": ["c"]}}`, false, false},
		{"number is not a string", `{"detail": {"count": ["5"]}}`, false, false},
		{"number", `{"detail": {"count": [5]}}`, true, false},
		{"null literal", `{"detail": {"flag": [null]}}`, true, false},
		{"null does not match missing", `{"detail": {"missing": [null]}}`, false, false},
		{"prefix", `{"resources": [{"prefix": "arn:aws:ec2:"}]}`, true, false},
		{"suffix mismatch", `{"detail-type": [{"suffix": "Warning"}]}`, false, false},
		{"exists true", `{"detail": {"instance-id": [{"exists": true}]}}`, true, false},
		{"exists false", `{"detail": {"missing": [{"exists": false}]}}`, true, false},
		{"exists false on present", `{"detail": {"state": [{"exists": false}]}}`, false, false},
		{"anything-but hit", `{"detail": {"state": [{"anything-but": ["running", "pending"]}]}}`, true, false},
		{"anything-but miss", `{"detail": {"state": [{"anything-but": "terminated"}]}}`, false, false},
		{"anything-but prefix", `{"detail": {"state": [{"anything-but": {"prefix": "term"}}]}}`, false, false},
		{"numeric range", `{"detail": {"count": [{"numeric": [">", 0, "<=", 5]}]}}`, true, false},
		{"numeric outside", `{"detail": {"count": [{"numeric": [">", 5]}]}}`, false, false},
		{"equals-ignore-case", `{"source": [{"equals-ignore-case": "AWS.EC2"}]}`, true, false},
		{"bare scalar is invalid", `{"source": "aws.ec2"}`, false, true},
		{"unknown filter is an error", `{"source": [{"wildcard": "aws.*"}]}`, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := matchPattern(decode(t, c.pattern), event)
			if (err != nil) != c.wantErr {
				t.Fatalf("error = %v, want error %v", err, c.wantErr)
			}
			if got != c.want {
				t.Fatalf("match = %v, want %v", got, c.want)
			}
		})
	}
}
