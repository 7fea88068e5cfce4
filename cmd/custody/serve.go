package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/custody/custody/integration/api"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

type serveFlags struct {
	listen     string
	http       string
	tokens     string
	webhookKey string
	siemConfig string
	genesys    genesysFlags
}

func serveCmd(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the embedded log and the projectors until SIGINT or SIGTERM",
		Long: `Runs custody as a service: the embedded JetStream server on --data (with a client
listener, so other custody commands given the same --data, and NATS tools, connect to it)
or a connection to --nats, and the projectors. Stops cleanly on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			applyEnv(cmd.Flags(), "tokens", "CUSTODY_TOKENS")
			applyEnv(cmd.Flags(), "http", "CUSTODY_HTTP")
			applyEnv(cmd.Flags(), "webhook-key", "CUSTODY_WEBHOOK_KEY")
			applyEnv(cmd.Flags(), "siem-config", "CUSTODY_SIEM_CONFIG")
			applyEnv(cmd.Flags(), "genesys-source", "CUSTODY_GENESYS_SOURCE")
			applyEnv(cmd.Flags(), "genesys-mapping", "CUSTODY_GENESYS_MAPPING")
			return g.serve(cmd.Context(), f, nil)
		},
	}
	cmd.Flags().StringVar(&f.listen, "nats-listen", "127.0.0.1:0", "client listener of the embedded server (host:port; port 0 picks a free one)")
	cmd.Flags().StringVar(&f.http, "http", "", "serve the auditors' HTTP API on this address (e.g. 127.0.0.1:8080; env CUSTODY_HTTP)")
	cmd.Flags().StringVar(&f.tokens, "tokens", "", "bearer tokens file for the HTTP API: lines of ROLE ACTOR TOKEN (env CUSTODY_TOKENS)")
	cmd.Flags().StringVar(&f.webhookKey, "webhook-key", "", "file of the HMAC key that signs events posted to POST /v1/events and platform payloads posted to POST /v1/ingest/genesys (X-Compliance-Signature; the latter also take a bearer token of role ingest); both endpoints are off without it (env CUSTODY_WEBHOOK_KEY)")
	cmd.Flags().StringVar(&f.genesys.source, "genesys-source", "genesys-cloud/default", "source of events mapped from Genesys notifications posted to POST /v1/ingest/genesys (env CUSTODY_GENESYS_SOURCE)")
	cmd.Flags().StringVar(&f.genesys.mapping, "genesys-mapping", "", "Genesys mapping file (env CUSTODY_GENESYS_MAPPING)")
	cmd.Flags().StringVar(&f.siemConfig, "siem-config", "", "SIEM/GRC sinks configuration file (JSON; see integration/siem); alerts are delivered to them (env CUSTODY_SIEM_CONFIG)")
	return cmd
}

// serve runs the log, the projectors and the API until ctx ends. ready, if set, is
// called with the session and the API address once everything runs. Stopped at any
// moment, even while it starts, it ends without an error: a step cut short by the stop
// is a shutdown, not a failure.
func (g *globals) serve(ctx context.Context, f serveFlags, ready func(*session, string)) (err error) {
	defer func() {
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = nil
		}
	}()
	sess, err := g.open(ctx, connectOpts{listen: f.listen, persistent: true})
	if err != nil {
		return err
	}
	defer sess.close()
	logger := slog.New(slog.NewTextHandler(g.stderr, nil))
	if sess.embedded != nil {
		logger.Info("embedded log running", "data", g.data, "listen", redactURL(sess.embedded.URL()))
	} else {
		logger.Info("connected to external log", "data", g.data)
	}
	if why, err := sess.store.RebuildAdvised(ctx); err != nil {
		return err
	} else if why != "" {
		logger.Warn("run custody rebuild once (with --data or --store as here)", "why", why)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custody_backup_age_seconds",
			Help: "Seconds since the last successful custody backup of this data directory began; +Inf if none."},
			func() float64 {
				t, err := streams.LastBackup(g.data)
				if err != nil || t.IsZero() {
					return math.Inf(1)
				}
				return time.Since(t).Seconds()
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "custody_deadletters",
			Help: "Messages the projectors parked because they could not apply them, not yet redriven (custody deadletters list)."},
			func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				n, err := sess.store.UnresolvedDeadLetters(ctx)
				if err != nil {
					return math.NaN()
				}
				return float64(n)
			}))
	grp, gctx := errgroup.WithContext(ctx)
	grp.Go(func() error {
		err := sess.runProjectors(gctx, func(msg string, args ...any) { logger.Warn(msg, args...) })
		if gctx.Err() != nil {
			return nil // stopped, possibly while starting: a shutdown, not a failure
		}
		return err
	})
	if f.siemConfig != "" {
		router, closeSinks, err := sess.siemRouter(f.siemConfig, reg, logger)
		if err != nil {
			return err
		}
		defer closeSinks()
		grp.Go(func() error {
			if err := router.Run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("siem: %w", err)
			}
			return nil
		})
		logger.Info("SIEM/GRC delivery running", "config", f.siemConfig)
	}
	addr := ""
	if f.http != "" {
		cfg := api.Config{Addr: f.http, TokensFile: f.tokens, Runner: apiRunner{s: sess}, Logger: logger,
			Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
		if f.webhookKey != "" {
			key, err := readSecret("--webhook-key", f.webhookKey, 32)
			if err != nil {
				return err
			}
			// The timeline the projectors keep current answers "already in the log";
			// what it has not reached yet is within the server's duplicate window.
			in := ingester{s: sess, tl: projections.NewTimeline(sess.store)}
			cfg.Ingester, cfg.VerifySignature = in, webhookVerifier(key)
			gm, err := f.genesys.mapper()
			if err != nil {
				return err
			}
			cfg.Platforms = platforms{in: in, genesys: gm}
		}
		srv, err := api.New(cfg)
		if err != nil {
			return err
		}
		addr = srv.Addr()
		grp.Go(func() error { return srv.Run(gctx) })
		logger.Info("HTTP API", "addr", "http://"+addr+"/v1/reports/{name}")
	}
	if ready != nil {
		ready(sess, addr)
	}
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
