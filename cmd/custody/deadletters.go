package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

func deadLettersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deadletters list|redrive",
		Short: "List and redrive the messages projectors parked because they could not apply them",
		Long: `A message in the log that a projector cannot decode (written by another publisher, or
by a newer custody) is delivered a bounded number of times (3), then parked: a dead letter
naming the projector, the sequence, the subject and the reason is recorded in the same
transaction that moves the projector's checkpoint past it, so the other events are not
held up and no sequence goes unaccounted for. The message stays in the log, unchanged;
the dead letter holds none of it. Once a fixed custody can read it, redrive applies it
to each projector that parked it, once, and marks the dead letter resolved.
custody_deadletters on /metrics counts the unresolved ones.`,
	}
	cmd.AddCommand(deadLettersListCmd(g), deadLettersRedriveCmd(g))
	return cmd
}

func deadLettersListCmd(g *globals) *cobra.Command {
	var all bool
	var format string
	cmd := &cobra.Command{
		Use:   "list [--all] [--format table|json]",
		Short: "List the unresolved dead letters (with --all, the resolved ones too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: must be table or json", format)
			}
			ctx := cmd.Context()
			sess, err := g.open(ctx, connectOpts{})
			if err != nil {
				return err
			}
			defer sess.close()
			if err := sess.catchUp(ctx); err != nil {
				return err
			}
			dls, err := sess.store.DeadLetters(ctx, all)
			if err != nil {
				return err
			}
			if format == "json" {
				if dls == nil {
					dls = []projections.DeadLetter{}
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(dls)
			}
			if len(dls) == 0 {
				fmt.Fprintln(g.stderr, "no dead letters")
				return nil
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tPROJECTOR\tSUBJECT\tPARKED AT\tRESOLVED\tREASON")
			for _, d := range dls {
				resolved := "-"
				if d.ResolvedAt != nil {
					resolved = d.ResolvedAt.Format(time.RFC3339) + " (" + d.Resolution + ")"
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Seq, d.Projector, d.Subject, d.ParkedAt.Format(time.RFC3339), resolved, d.Reason)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list resolved dead letters too")
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

func deadLettersRedriveCmd(g *globals) *cobra.Command {
	var seq uint64
	var projector string
	cmd := &cobra.Command{
		Use:   "redrive [--seq N] [--projector NAME]",
		Short: "Read parked messages from the log again and apply those that now decode, once",
		Long: `For every unresolved dead letter (or those of --seq and --projector), reads the message
from the log, decodes it, applies it to the projector that parked it and marks the dead
letter resolved, in one transaction: a redrive run twice applies nothing the second time.
A message that still does not decode stays parked, with the reason; the exit status is
then 1. Alerts a redriven event raises go to the alerts stream like any other.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			sess, err := g.open(ctx, connectOpts{})
			if err != nil {
				return err
			}
			defer sess.close()
			if err := sess.catchUp(ctx); err != nil {
				return err
			}
			res, err := sess.redrive(ctx, seq, projector)
			for _, r := range res {
				if r.err != nil {
					fmt.Fprintf(g.stderr, "sequence %d (%s): still parked: %v\n", r.seq, r.projector, r.err)
				} else {
					fmt.Fprintf(g.stderr, "sequence %d (%s): redriven\n", r.seq, r.projector)
				}
			}
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range res {
				if r.err != nil {
					failed++
				}
			}
			fmt.Fprintf(g.stderr, "redriven %d, still parked %d\n", len(res)-failed, failed)
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().Uint64Var(&seq, "seq", 0, "only the dead letters of this sequence")
	cmd.Flags().StringVar(&projector, "projector", "", "only the dead letters of this projector (timeline or a view name)")
	return cmd
}

type redriveResult struct {
	seq       uint64
	projector string
	err       error // why it stays parked; nil when redriven
}

// redrive applies the unresolved dead letters that match (seq 0 and projector "" match
// all), then publishes the alerts they raised.
func (s *session) redrive(ctx context.Context, seq uint64, projector string) ([]redriveResult, error) {
	dls, err := s.store.DeadLetters(ctx, false)
	if err != nil {
		return nil, err
	}
	stream, err := s.js.Stream(ctx, streams.EventsStream)
	if err != nil {
		return nil, err
	}
	decode := s.decoder()
	var out []redriveResult
	for _, d := range dls {
		if (seq != 0 && d.Seq != seq) || (projector != "" && d.Projector != projector) {
			continue
		}
		r := redriveResult{seq: d.Seq, projector: d.Projector}
		r.err = func() error {
			m, err := stream.GetMsg(ctx, d.Seq)
			if err != nil {
				return fmt.Errorf("read sequence %d from the log: %w", d.Seq, err)
			}
			ev, err := decode(m.Data)
			if err != nil {
				return fmt.Errorf("%w: %v", streams.ErrUndecodable, err)
			}
			// The views keep the canonical form of what the decoder understood: what a
			// later load of the view parses again.
			canonical, err := ev.MarshalJSON()
			if err != nil {
				return err
			}
			st := domain.Stored{Seq: m.Sequence, Subject: m.Subject, Received: m.Time.UTC(), Raw: canonical, Event: ev}
			if d.Projector == projections.TimelineName {
				return projections.NewTimeline(s.store).Redrive(ctx, st)
			}
			v, err := projections.NewView(s.store, projections.ViewConfig{Name: d.Projector, Lateness: s.lateness, RedactionBuffer: s.redaction})
			if err != nil {
				return err
			}
			return v.Redrive(ctx, st)
		}()
		if errors.Is(r.err, projections.ErrNotParked) {
			continue // resolved meanwhile by another redrive
		}
		out = append(out, r)
	}
	if !s.held { // else the running serve's outbox publishes them
		if _, err := s.flushOutbox(ctx); err != nil {
			return out, err
		}
	}
	return out, nil
}

// decoder is what the session's projectors decode stored messages with.
func (s *session) decoder() func([]byte) (domain.Event, error) {
	if s.g != nil && s.g.decode != nil {
		return s.g.decode
	}
	return domain.Parse
}
