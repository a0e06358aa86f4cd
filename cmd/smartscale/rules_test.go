package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const repoRules = "../../rules"

func TestRulesLintPassesOnRepository(t *testing.T) {
	out, err := run(t, "rules", "lint", repoRules)
	if err != nil || !strings.Contains(out, "rules: ok") {
		t.Fatalf("rules lint %s: %v\n%s", repoRules, err, out)
	}
}

func TestRulesLintFailsNamingTheRule(t *testing.T) {
	fixture := "../../internal/rules/testdata/lint/missing-for.yaml"
	out, err := run(t, "rules", "lint", fixture)
	if err == nil {
		t.Fatalf("rules lint %s succeeded:\n%s", fixture, out)
	}
	if !strings.Contains(out, "alert ScaleUpWithoutFor") || !strings.Contains(out, "missing for:") || !strings.Contains(out, fixture+":") {
		t.Errorf("output should name file, rule and problem:\n%s", out)
	}
}

func TestRulesExportForScale(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, "rules", "export", "--out", dir, "--for-scale", "0.0333", repoRules)
	if err != nil {
		t.Fatalf("rules export: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "smartscale-scale-up.yaml"))
	if err != nil {
		t.Fatalf("export did not write smartscale-scale-up.yaml (output: %s): %v", out, err)
	}
	// 3m x 0.0333 = 5.994s, rounded to 6s; the real 3m is gone.
	if !strings.Contains(string(b), "for: 6s") || strings.Contains(string(b), "for: 3m") {
		t.Errorf("for: not scaled:\n%s", b)
	}
	if !strings.Contains(out, filepath.Join(dir, "smartscale-scale-up.yaml")) {
		t.Errorf("export should print the files it wrote:\n%s", out)
	}
}

func TestRulesExportRefusesLintFailures(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, "rules", "export", "--out", dir, "../../internal/rules/testdata/lint/unknown-label.yaml")
	if err == nil || !strings.Contains(out, "unknown label team") {
		t.Fatalf("export of a contract violation: err %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("export wrote %d files despite the violation", len(entries))
	}
	if _, err := run(t, "rules", "export", "--out", dir, "--allow-label", "team", "../../internal/rules/testdata/lint/unknown-label.yaml"); err != nil {
		t.Errorf("--allow-label team: %v", err)
	}
}

func TestRulesExportNeedsOut(t *testing.T) {
	if _, err := run(t, "rules", "export", repoRules); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("export without --out: %v", err)
	}
}
