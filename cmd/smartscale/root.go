package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "smartscale",
		Short: "Prometheus-native, alert-driven node autoscaler for K3s on AWS",
		Long: `SmartScale adds and removes worker nodes of a K3s cluster. Prometheus
evaluates the scaling rules in rules/, Alertmanager routes firing alerts to
the SmartScale webhook, and the webhook decides and acts under a DynamoDB lock.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newConfigCmd(), newVersionCmd(), newRulesCmd(), newStateCmd())
	return root
}
