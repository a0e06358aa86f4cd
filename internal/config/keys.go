package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkKnownKeys walks the YAML tree alongside the Go type of the
// configuration and rejects the first key the type does not have, naming the
// file, line and full key path (yaml.v3's KnownFields does not reach into
// types with their own UnmarshalYAML, such as NodeGroup, and names Go types
// rather than keys).
//
// It returns the line of every key path it saw, so validation errors can
// point at the line too.
func checkKnownKeys(file string, n *yaml.Node, v any) (map[string]int, error) {
	lines := map[string]int{}
	return lines, walkKeys(file, n, "", reflect.TypeOf(v), lines)
}

func walkKeys(file string, n *yaml.Node, path string, t reflect.Type, lines map[string]int) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if t == reflect.TypeFor[Duration]() {
				return nil
			}
			return &FieldError{File: file, Line: n.Line, Key: keyOrRoot(path), Msg: "want a mapping of keys"}
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				return &FieldError{File: file, Line: k.Line, Key: join(path, k.Value),
					Msg: fmt.Sprintf("unknown key (known: %s)", strings.Join(sortedKeys(fields), ", "))}
			}
			lines[join(path, k.Value)] = k.Line
			if err := walkKeys(file, val, join(path, k.Value), ft, lines); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil // the decoder reports the type mismatch with its line
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = item.Line
			if err := walkKeys(file, item, p, t.Elem(), lines); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			lines[p] = n.Content[i].Line
			if err := walkKeys(file, n.Content[i+1], p, t.Elem(), lines); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyOrRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}
