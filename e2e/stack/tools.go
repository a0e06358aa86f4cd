package stack

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// tool describes where a binary lives in the tool cache. It mirrors the
// tables in e2e/tools/lib.sh; TestToolPathMatchesPathSh keeps them in step.
type tool struct {
	component  string // cache folder prefix, e.g. "kube"
	versionKey string // key in versions.env
	rel        string // path inside <component>-<version>/
}

var tools = map[string]tool{
	"dynalite":                {"dynalite", "DYNALITE_VERSION", "bin/dynalite"},
	"prometheus":              {"prometheus", "PROMETHEUS_VERSION", "bin/prometheus"},
	"promtool":                {"prometheus", "PROMETHEUS_VERSION", "bin/promtool"},
	"alertmanager":            {"alertmanager", "ALERTMANAGER_VERSION", "bin/alertmanager"},
	"amtool":                  {"alertmanager", "ALERTMANAGER_VERSION", "bin/amtool"},
	"etcd":                    {"etcd", "ETCD_VERSION", "bin/etcd"},
	"kube-apiserver":          {"kube", "KUBE_VERSION", "bin/kube-apiserver"},
	"kube-controller-manager": {"kube", "KUBE_VERSION", "bin/kube-controller-manager"},
	"kube-scheduler":          {"kube", "KUBE_VERSION", "bin/kube-scheduler"},
	"kubectl":                 {"kube", "KUBE_VERSION", "bin/kubectl"},
	"kwok":                    {"kwok", "KWOK_VERSION", "bin/kwok"},
	"kwok-stages":             {"kwok", "KWOK_VERSION", "share/stages.yaml"},
	"kube-state-metrics":      {"kube-state-metrics", "KUBE_STATE_METRICS_VERSION", "bin/kube-state-metrics"},
	"helm":                    {"helm", "HELM_VERSION", "bin/helm"},
	"golangci-lint":           {"golangci-lint", "GOLANGCI_LINT_VERSION", "bin/golangci-lint"},
}

// ToolNames lists every name ToolPath accepts.
func ToolNames() []string {
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, n)
	}
	return names
}

// CacheDir is the tool cache: $SMARTSCALE_CACHE, else
// $HOME/.cache/smartscale (the same rule as e2e/tools/install.sh).
func CacheDir() (string, error) {
	if d := os.Getenv("SMARTSCALE_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("tool cache: %w", err)
	}
	return filepath.Join(home, ".cache", "smartscale"), nil
}

// ToolPath returns the absolute path of a pinned tool (kube-apiserver,
// promtool, amtool, helm, dynalite, kwok-stages, ...) in the tool cache, at
// the version pinned in e2e/tools/versions.env. It fails with a hint to run
// `make tools` when the tool is not installed.
func ToolPath(name string) (string, error) {
	p, err := toolLocation(name)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("tool %s is not installed at %s: run `make tools` (or `bash e2e/tools/install.sh %s`)", name, p, tools[name].component)
		}
		return "", fmt.Errorf("tool %s: %w", name, err)
	}
	return p, nil
}

// toolLocation is where ToolPath expects name, installed or not.
func toolLocation(name string) (string, error) {
	t, ok := tools[name]
	if !ok {
		return "", fmt.Errorf("unknown tool %q (known: %s)", name, strings.Join(ToolNames(), " "))
	}
	versions, err := Versions()
	if err != nil {
		return "", err
	}
	v, ok := versions[t.versionKey]
	if !ok {
		return "", fmt.Errorf("tool %s: %s missing from e2e/tools/versions.env", name, t.versionKey)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, t.component+"-"+v, t.rel), nil
}

// ToolsDir returns the e2e/tools folder of this source tree, found from this
// file's compile-time location (tests and `go run` always build from
// source) or, failing that, by walking up from the working directory.
func ToolsDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Join(filepath.Dir(file), "..", "tools")
		if _, err := os.Stat(filepath.Join(d, "versions.env")); err == nil {
			return filepath.Clean(d), nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("locate e2e/tools: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "e2e", "tools")
		if _, err := os.Stat(filepath.Join(cand, "versions.env")); err == nil {
			return cand, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("locate e2e/tools/versions.env: not found above %s", wd)
		}
	}
}

// Versions parses e2e/tools/versions.env (KEY=VALUE lines, # comments).
func Versions() (map[string]string, error) {
	dir, err := ToolsDir()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, "versions.env"))
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("versions.env: bad line %q", line)
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	return out, nil
}
