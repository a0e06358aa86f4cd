package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/smartscale/smartscale/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			bi := buildinfo.Get()
			fmt.Fprintf(cmd.OutOrStdout(), "smartscale %s (revision %s, %s)\n", bi.Version, bi.Revision, bi.GoVersion)
		},
	}
}
