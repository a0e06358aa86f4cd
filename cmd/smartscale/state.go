package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/state/dynamo"
)

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Set up the shared state (DynamoDB table)",
	}
	var configPath, endpoint, table string
	var wait time.Duration
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the DynamoDB state table (local and test use)",
		Long: `Create the state table named by state.dynamodb in the configuration:
on-demand billing, server-side encryption, key pk (hash) / sk (range) and
TTL on expires_at. Running it again is harmless: an existing table is kept
and only its TTL setting is ensured. Production tables come from infra/.

--endpoint and --table override the configuration, e.g. to point a
configuration at a local dynalite.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return errors.New("--config is required")
			}
			cfg, err := config.Load(configPath)
			if err != nil {
				return err
			}
			d := cfg.State.DynamoDB
			if endpoint != "" {
				d.Endpoint = endpoint
			}
			if table != "" {
				d.Table = table
			}
			if cfg.State.Backend != "dynamodb" && endpoint == "" && table == "" {
				return fmt.Errorf("%s: state.backend is %q: there is no table to create (set state.backend: dynamodb, or pass --endpoint/--table)", configPath, cfg.State.Backend)
			}
			return initTable(cmd, d, wait)
		},
	}
	initCmd.Flags().StringVar(&configPath, "config", "", "configuration file (required)")
	initCmd.Flags().StringVar(&endpoint, "endpoint", "", "DynamoDB endpoint, overrides state.dynamodb.endpoint")
	initCmd.Flags().StringVar(&table, "table", "", "table name, overrides state.dynamodb.table")
	initCmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the table to become active")
	cmd.AddCommand(initCmd)
	return cmd
}

func initTable(cmd *cobra.Command, d config.DynamoDB, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), wait+d.Timeout.D())
	defer cancel()
	client, err := dynamo.NewClient(ctx, d)
	if err != nil {
		return err
	}
	setup, err := dynamo.CreateTable(ctx, client, d.Table, wait)
	ttlNote := "TTL on expires_at enabled"
	switch {
	case errors.Is(err, dynamo.ErrTTLUnsupported) && d.Endpoint != "":
		// dynalite: the store checks expiry itself, expired items only stay.
		ttlNote = "TTL not supported by " + d.Endpoint + " (expired items are ignored, not deleted)"
	case err != nil:
		return err
	}
	what := "created"
	if !setup.Created {
		what = "already exists"
	}
	where := "region " + d.Region
	if d.Endpoint != "" {
		where = d.Endpoint
	}
	fmt.Fprintf(cmd.OutOrStdout(), "table %s (%s): %s; on-demand billing, SSE, key pk/sk; %s\n", d.Table, where, what, ttlNote)
	return nil
}
