package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/simulate"
	"github.com/custody/custody/streams"
)

type demoFlags struct {
	http         string
	rate         int
	interactions int
	seed         int64
	duration     time.Duration
}

func demoCmd(g *globals) *cobra.Command {
	f := demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run custody end to end on simulated traffic: live log, views, alerts and API",
		Long: `Starts everything on the embedded default with no set-up: an embedded JetStream log in a
fresh data directory (or --data), all projectors, the alerts outbox and the auditors' HTTP
API with a generated token, then streams simulated contact-center traffic into the log at
--rate events per second and prints every alert as it fires. Ctrl-C stops it (or
--duration). The data directory is kept, so the reports can be run on it afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("data") && os.Getenv("CUSTODY_DATA") == "" {
				dir, err := os.MkdirTemp("", "custody-demo-")
				if err != nil {
					return err
				}
				g.data = dir
			}
			return g.demo(cmd.Context(), f)
		},
	}
	cmd.Flags().StringVar(&f.http, "http", "127.0.0.1:8080", "address of the HTTP API")
	cmd.Flags().IntVar(&f.rate, "rate", 500, "simulated events per second")
	cmd.Flags().IntVar(&f.interactions, "interactions", 3000, "simulated interactions")
	cmd.Flags().Int64Var(&f.seed, "seed", 0, "simulation seed (default: from the clock)")
	cmd.Flags().DurationVar(&f.duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
	return cmd
}

func (g *globals) demo(ctx context.Context, f demoFlags) error {
	if f.rate < 1 {
		return fmt.Errorf("--rate %d: must be at least 1", f.rate)
	}
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	if err := os.MkdirAll(g.data, 0o700); err != nil {
		return err
	}
	tokenBytes := make([]byte, 24)
	if _, err := rand.Read(tokenBytes); err != nil {
		return err
	}
	token := hex.EncodeToString(tokenBytes)
	tokens := filepath.Join(g.data, "tokens")
	if err := os.WriteFile(tokens, []byte("# role actor token\n"+"compliance_officer demo-officer "+token+"\n"), 0o600); err != nil {
		return err
	}
	seed := f.seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	err := g.serve(ctx, serveFlags{listen: "127.0.0.1:0", http: f.http, tokens: tokens}, func(sess *session, addr string) {
		out := g.stdout
		fmt.Fprintf(out, "custody demo: data in %s\n", g.data)
		if addr != "" {
			fmt.Fprintf(out, "  HTTP API:  curl -H 'Authorization: Bearer %s' http://%s/v1/reports/unauthorized\n", token, addr)
		}
		fmt.Fprintf(out, "  reports:   custody report <%s> --data %s   (after the demo, or while it runs)\n",
			"unauthorized|alerts|consent|retention|exposure|access-audit", g.data)
		fmt.Fprintf(out, "  streaming %d simulated interactions at %d events/s; alerts print below as they fire\n\n", f.interactions, f.rate)
		go g.printAlerts(ctx, sess)
		go func() {
			if err := g.feed(ctx, sess, f, seed); err != nil && ctx.Err() == nil {
				fmt.Fprintf(g.stderr, "demo traffic: %v\n", err)
			}
		}()
	})
	if ctx.Err() != nil {
		fmt.Fprintf(g.stdout, "\ncustody demo: stopped; data kept in %s\n", g.data)
		return nil
	}
	return err
}

// feed streams simulated traffic into the log at the configured rate, with event times
// ending near now.
func (g *globals) feed(ctx context.Context, sess *session, f demoFlags, seed int64) error {
	days := 2
	cfg := simulate.Config{Seed: seed, Interactions: f.interactions, Start: time.Now().UTC().Add(-time.Duration(days) * 24 * time.Hour), Days: days}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	perTick := max(1, f.rate/10)
	var batch []streams.Outgoing
	flush := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		for _, r := range sess.pub.PublishAll(ctx, batch) {
			if r.Status == streams.Rejected && ctx.Err() == nil {
				fmt.Fprintf(g.stderr, "demo traffic: %v\n", r.Err)
			}
		}
		batch = batch[:0]
		return nil
	}
	err := simulate.Generate(cfg, func(e domain.Event) error {
		o, err := streams.NewOutgoing(e)
		if err != nil {
			return err
		}
		batch = append(batch, o)
		if len(batch) >= perTick {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(batch) > 0 {
		return flush()
	}
	fmt.Fprintln(g.stdout, "custody demo: simulated traffic complete; still serving (Ctrl-C to stop)")
	return nil
}

// printAlerts prints every alert.raised as the alerts stream receives it.
func (g *globals) printAlerts(ctx context.Context, sess *session) {
	s, err := sess.js.Stream(ctx, streams.AlertsStream)
	if err != nil {
		return
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return
	}
	it, err := cons.Messages()
	if err != nil {
		return
	}
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		m, err := it.Next()
		if err != nil {
			return
		}
		e, err := domain.Parse(m.Data())
		if err != nil {
			continue
		}
		a := e.Data.(*domain.AlertRaised)
		who := a.AgentID
		if who == "" {
			who = "-"
		}
		fmt.Fprintf(g.stdout, "ALERT %-36s agent=%-14s triggered=%s interactions=%s\n", a.Rule, who,
			a.TriggeredAt.Format(time.RFC3339), strings.Join(a.InteractionIDs, ","))
	}
}
