package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/smartscale/smartscale/internal/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check or print configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file; every problem is named by file, line and key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				return err
			}
			var groups []string
			for _, g := range cfg.NodeGroups {
				groups = append(groups, fmt.Sprintf("%s (%d..%d nodes in %s)", g.Name, g.MinNodes, g.MaxNodes, strings.Join(g.Zones, ",")))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: cluster %s, state %s, cloud %s, node groups: %s\n",
				args[0], cfg.ClusterID, cfg.State.Backend, cfg.Cloud.Provider, strings.Join(groups, "; "))
			return nil
		},
	}, &cobra.Command{
		Use:   "example",
		Short: "Print the annotated example configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.Example())
			return err
		},
	})
	return cmd
}
