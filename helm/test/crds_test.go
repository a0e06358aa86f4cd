package helmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"

	"github.com/smartscale/smartscale/e2e/stack"
)

// crdModule is a released Go module whose zip carries CRD manifests.
type crdModule struct {
	module, version, dir string
	files                []string
}

// The CRDs the chart's and the GitOps manifests' kinds need, from the
// projects' own released modules. prometheus-operator v0.85.0 is the newest
// main-module release the Go module proxy serves here (the API module
// pkg/apis/monitoring in go.mod is v0.95.2; the three kinds used are the
// same v1 / v1alpha1 APIs). Flux: helm-controller v1.4.0 (HelmRelease v2),
// source-controller and kustomize-controller v1.9.6 (the newest that build
// with Go 1.26).
var crdModules = []crdModule{
	{"github.com/prometheus-operator/prometheus-operator", "v0.85.0", "example/prometheus-operator-crd", []string{
		"monitoring.coreos.com_servicemonitors.yaml",
		"monitoring.coreos.com_prometheusrules.yaml",
		"monitoring.coreos.com_alertmanagerconfigs.yaml",
	}},
	{"github.com/fluxcd/source-controller", "v1.9.6", "config/crd/bases", []string{
		"source.toolkit.fluxcd.io_gitrepositories.yaml",
		"source.toolkit.fluxcd.io_helmrepositories.yaml",
	}},
	{"github.com/fluxcd/helm-controller", "v1.4.0", "config/crd/bases", []string{
		"helm.toolkit.fluxcd.io_helmreleases.yaml",
	}},
	{"github.com/fluxcd/kustomize-controller", "v1.9.6", "config/crd/bases", []string{
		"kustomize.toolkit.fluxcd.io_kustomizations.yaml",
	}},
}

// crdFiles returns the pinned CRD files, copied once from the module zips
// (`go mod download`) into the tool cache, one folder per module version:
// ${SMARTSCALE_CACHE:-$HOME/.cache/smartscale}/crds-<module>-<version>/.
func crdFiles(t testing.TB) []string {
	t.Helper()
	cache, err := stack.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range crdModules {
		dest := filepath.Join(cache, fmt.Sprintf("crds-%s-%s", path.Base(m.module), m.version))
		if !allExist(dest, m.files) {
			if err := fetchCRDs(t, m, dest); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range m.files {
			out = append(out, filepath.Join(dest, f))
		}
	}
	return out
}

func allExist(dir string, files []string) bool {
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// fetchCRDs downloads the module and copies its CRD files to dest through a
// scratch folder, so a concurrent or interrupted run never leaves half a set.
func fetchCRDs(t testing.TB, m crdModule, dest string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("fetch CRDs of %s: %w", m.module, err)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", m.module+"@"+m.version)
	cmd.Dir = t.TempDir() // outside any module: the root go.mod is not touched
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || info.Dir == "" {
		return fmt.Errorf("go mod download %s@%s: %w %s %s%s", m.module, m.version, errors.Join(runErr, err), info.Error, stderr.String(), stdout.String())
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("CRD cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".crds-")
	if err != nil {
		return fmt.Errorf("CRD cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range m.files {
		b, err := os.ReadFile(filepath.Join(info.Dir, m.dir, f))
		if err != nil {
			return fmt.Errorf("CRD %s in %s@%s: %w", f, m.module, m.version, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			return fmt.Errorf("CRD cache: %w", err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil && !allExist(dest, m.files) {
		return fmt.Errorf("CRD cache: %w", err)
	}
	return nil
}
