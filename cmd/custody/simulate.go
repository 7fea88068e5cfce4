package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/custody/custody/integration/simulate"
)

func simulateCmd(g *globals) *cobra.Command {
	var (
		cfg   simulate.Config
		start string
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Write deterministic, realistic contact-center traffic as JSON Lines on stdout",
		Long: `Writes simulated Genesys Cloud / NICE CXone / LMS traffic for a healthcare payer as
CloudEvents JSON Lines: every event type and every compliance rule is exercised (see the
simulate package documentation). The same flags give the same bytes.

Event times must not lie more than 24 h ahead of the clock of whoever publishes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return fmt.Errorf("--start %q: must be an RFC 3339 time with offset: %w", start, err)
				}
				cfg.Start = t
			}
			return simulate.Write(g.stdout, cfg)
		},
	}
	cmd.Flags().Int64Var(&cfg.Seed, "seed", 1, "random seed: the same seed gives the same bytes")
	cmd.Flags().IntVar(&cfg.Interactions, "interactions", 1000, "number of interactions")
	cmd.Flags().IntVar(&cfg.Agents, "agents", 0, "number of agents (default 50)")
	cmd.Flags().StringVar(&start, "start", "", "first event time, RFC 3339 (default 2026-03-02T08:00:00Z)")
	cmd.Flags().IntVar(&cfg.Days, "days", 0, "days of traffic (default 7)")
	return cmd
}
