package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/custody/custody/streams"
)

func streamsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "streams provision|status",
		Short: "Create or verify custody's streams on a NATS server or cluster, and show their state",
		Long: `custody creates its streams on first use, with the settings docs/adr/0001 requires. On a
cluster whose application user may not create or change streams (deploy/nats/accounts.conf),
an administrator provisions them once:

  custody streams provision --nats tls://custody-admin:PASSWORD@n1:4222,... --replicas 3

Connect with the administrator's URL (the only use of it); trust the nodes' CA with
SSL_CERT_FILE. Provisioning is idempotent: existing streams are verified, weaker settings
refused, fewer replicas than --replicas raised, never lowered.`,
	}
	cmd.AddCommand(streamsProvisionCmd(g), streamsStatusCmd(g))
	return cmd
}

func streamsProvisionCmd(g *globals) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "provision [--replicas N] [--wait D]",
		Short: "Create custody's streams, or verify them and raise their replicas; retried while a cluster elects its leaders",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			deadline := time.Now().Add(wait)
			var sess *session
			var err error
			for { // the servers may not be up yet
				if sess, err = g.connect(ctx, connectOpts{readOnly: true, persistent: true}); err == nil || time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				fmt.Fprintln(g.stderr, "custody streams provision: retrying:", err)
				sleepCtx(ctx, time.Second)
			}
			if err != nil {
				return err
			}
			defer sess.close()
			for {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = streams.EnsureStreams(cctx, sess.js, streams.LogConfig{Replicas: g.replicas})
				cancel()
				if err == nil || errors.Is(err, streams.ErrStreamSettings) || time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				fmt.Fprintln(g.stderr, "custody streams provision: retrying:", err)
				sleepCtx(ctx, time.Second)
			}
			if err != nil {
				return err
			}
			return printStreamStates(ctx, g, sess.js)
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to retry while the server or cluster is not ready")
	return cmd
}

func streamsStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Each stream's replicas, leader, followers, messages, last sequence and immutability settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			sess, err := g.connect(ctx, connectOpts{readOnly: true})
			if err != nil {
				return err
			}
			defer sess.close()
			return printStreamStates(ctx, g, sess.js)
		},
	}
}

func printStreamStates(ctx context.Context, g *globals, js jetstream.JetStream) error {
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STREAM\tREPLICAS\tLEADER\tFOLLOWERS\tMESSAGES\tLAST SEQ\tDENY DELETE\tDENY PURGE")
	for _, want := range (streams.LogConfig{}).Configs() {
		s, err := js.Stream(ctx, want.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", want.Name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", want.Name, err)
		}
		leader, followers := "-", "-"
		if info.Cluster != nil {
			leader, followers = info.Cluster.Leader, ""
			for _, r := range info.Cluster.Replicas {
				followers += fmt.Sprintf("%s(current=%v,lag=%d) ", r.Name, r.Current, r.Lag)
			}
			if followers == "" {
				followers = "-" // a single server
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%d\t%v\t%v\n", want.Name, info.Config.Replicas, leader, followers,
			info.State.Msgs, info.State.LastSeq, info.Config.DenyDelete, info.Config.DenyPurge)
	}
	return w.Flush()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
