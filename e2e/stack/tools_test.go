package stack

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Go table and e2e/tools/lib.sh must agree on every tool's location,
// or tests and scripts would use different binaries.
func TestToolLocationMatchesLibSh(t *testing.T) {
	dir, err := ToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ToolNames() {
		want, err := toolLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("bash", "-c", `source "$1/lib.sh" && tool_path "$2"`, "bash", dir, name).Output()
		if err != nil {
			t.Fatalf("lib.sh tool_path %s: %v", name, err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s: lib.sh says %s, Go says %s", name, got, want)
		}
	}
}

func TestToolPathMissingSaysMakeTools(t *testing.T) {
	t.Setenv("SMARTSCALE_CACHE", t.TempDir())
	_, err := ToolPath("promtool")
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("want an error pointing at make tools, got %v", err)
	}
	if _, err := ToolPath("no-such-tool"); err == nil {
		t.Fatal("unknown tool: want error")
	}
}

func TestCacheDirFollowsEnv(t *testing.T) {
	d := filepath.Join(t.TempDir(), "c")
	t.Setenv("SMARTSCALE_CACHE", d)
	got, err := CacheDir()
	if err != nil || got != d {
		t.Fatalf("CacheDir = %q, %v; want %q", got, err, d)
	}
}
