package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/smartscale/smartscale/internal/rules"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Export and lint the PrometheusRule manifests in rules/",
		Long: `The scaling rules live in rules/ as prometheus-operator PrometheusRule
manifests. 'rules lint' checks them against the label contract the webhook
reads; 'rules export' writes them as plain Prometheus rule files (for
--rules/rule_files, promtool and tests).`,
	}
	cmd.AddCommand(newRulesExportCmd(), newRulesLintCmd())
	return cmd
}

func newRulesExportCmd() *cobra.Command {
	var (
		out        string
		forScale   float64
		grafanaURL string
		allow      []string
	)
	cmd := &cobra.Command{
		Use:   "export [DIR|FILE...] --out OUTDIR",
		Short: "Write the manifests as Prometheus rule files (after lint)",
		Long: `Writes one Prometheus rule file per PrometheusRule manifest into --out,
named <metadata.name>.yaml. The manifests must pass 'rules lint' first.
Without arguments it reads ./rules.

--for-scale multiplies every for: duration (3m at 0.0333 becomes 6s) for a
test copy that fires in seconds with the real expressions and thresholds;
never deploy such a copy.`,
		Example: `  smartscale rules export --out .tmp/rules
  smartscale rules export --out .tmp/rules-fast --for-scale 0.0333
  promtool check rules .tmp/rules/*.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			if forScale < 0 {
				return fmt.Errorf("--for-scale %g: want a positive factor", forScale)
			}
			ms, err := loadRules(args)
			if err != nil {
				return err
			}
			if err := reportViolations(cmd, rules.Lint(ms, rules.LintOptions{AllowLabels: allow})); err != nil {
				return err
			}
			paths, err := rules.Export(ms, out, rules.ExportOptions{ForScale: forScale, GrafanaURL: grafanaURL})
			if err != nil {
				return err
			}
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder to write the rule files into (created if missing)")
	cmd.Flags().Float64Var(&forScale, "for-scale", 1, "multiply every for: duration by this factor (test copies only)")
	cmd.Flags().StringVar(&grafanaURL, "grafana-url", "", "Grafana base URL to replace "+rules.PlaceholderGrafanaURL+" in annotations")
	cmd.Flags().StringSliceVar(&allow, "allow-label", nil, "extra alert label names to accept besides the contract's")
	return cmd
}

func newRulesLintCmd() *cobra.Command {
	var allow []string
	cmd := &cobra.Command{
		Use:   "lint [DIR|FILE...]",
		Short: "Check the manifests against the label contract",
		Long: `Checks every rule: scaling alerts (smartscale_action) need a valid action,
urgency and node group and a for: duration; every alert needs a severity,
the annotations summary, description, runbook_url and dashboard_url, and no
label outside the contract. Each violation names its file, line and rule.
Without arguments it reads ./rules.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := loadRules(args)
			if err != nil {
				return err
			}
			if err := reportViolations(cmd, rules.Lint(ms, rules.LintOptions{AllowLabels: allow})); err != nil {
				return err
			}
			n := 0
			for _, m := range ms {
				for _, g := range m.Rule.Spec.Groups {
					n += len(g.Rules)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d manifests, %d rules: ok\n", len(ms), n)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&allow, "allow-label", nil, "extra alert label names to accept besides the contract's")
	return cmd
}

// loadRules reads the folders and files named (./rules without any).
func loadRules(args []string) ([]rules.Manifest, error) {
	if len(args) == 0 {
		args = []string{"rules"}
	}
	var out []rules.Manifest
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
		var ms []rules.Manifest
		if st.IsDir() {
			ms, err = rules.LoadDir(a)
		} else {
			ms, err = rules.LoadFiles(filepath.Clean(a))
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// reportViolations prints each violation and fails when there is any.
func reportViolations(cmd *cobra.Command, vs []rules.Violation) error {
	for _, v := range vs {
		fmt.Fprintln(cmd.ErrOrStderr(), v.String())
	}
	if len(vs) > 0 {
		return fmt.Errorf("rules lint: %d violation(s)", len(vs))
	}
	return nil
}
