package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

func serveCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the embedded log and the projectors until SIGINT or SIGTERM",
		Long: `Runs custody as a service: the embedded JetStream server on --data (with a client
listener, so other custody commands given the same --data, and NATS tools, connect to it)
or a connection to --nats, and the projectors. Stops cleanly on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.serve(cmd.Context(), listen)
		},
	}
	cmd.Flags().StringVar(&listen, "nats-listen", "127.0.0.1:0", "client listener of the embedded server (host:port; port 0 picks a free one)")
	return cmd
}

func (g *globals) serve(ctx context.Context, listen string) error {
	sess, err := g.connect(ctx, connectOpts{listen: listen})
	if err != nil {
		return err
	}
	defer sess.close()
	if err := g.openStore(ctx, sess); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(g.stderr, nil))
	if sess.embedded != nil {
		logger.Info("embedded log running", "data", g.data, "listen", redactURL(sess.embedded.URL()))
	} else {
		logger.Info("connected to external log", "data", g.data)
	}
	grp, gctx := errgroup.WithContext(ctx)
	grp.Go(func() error {
		return streams.NewConsumer(sess.js, projections.NewTimeline(sess.store), streams.ConsumerConfig{}).Run(gctx)
	})
	fmt.Fprintln(g.stderr, "custody serve: running; stop with Ctrl-C")
	err = grp.Wait()
	logger.Info("shutting down")
	return err
}

// redactURL hides the access token of a nats:// URL.
func redactURL(u string) string {
	for i := len("nats://"); i < len(u); i++ {
		if u[i] == '@' {
			return "nats://***" + u[i:]
		}
	}
	return u
}
