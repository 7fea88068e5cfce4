package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // IANA zones for --tz on machines without a zone database

	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/streams"
)

func replayCmd(g *globals) *cobra.Command {
	var (
		interaction string
		format      string
		tz          string
	)
	cmd := &cobra.Command{
		Use:   "replay --interaction ID",
		Short: "Print the forensic timeline of one interaction from the log",
		Long: `Prints every stored event of one interaction (or, for training events, one agent) in
event-time order, ties by stream sequence, each with its stream sequence and the time the
log received it. --format jsonl prints the stored CloudEvents themselves, byte for byte
as the log holds them, in the same order.

The events are found through the timeline index in the data directory (brought up to
date first) and fetched from the log by sequence: the log is never scanned.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !domain.IsIdentifier(interaction) {
				return fmt.Errorf("--interaction %q: must be 1-128 characters of A-Z a-z 0-9 _ - :", interaction)
			}
			if format != "table" && format != "jsonl" {
				return fmt.Errorf("--format %q: must be table or jsonl", format)
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return fmt.Errorf("--tz %q: must be an IANA time zone (e.g. America/Chicago): %w", tz, err)
			}
			return g.replay(cmd.Context(), interaction, format, loc)
		},
	}
	cmd.Flags().StringVar(&interaction, "interaction", "", "interaction id (or agent id for training events)")
	cmd.Flags().StringVar(&format, "format", "table", "table or jsonl")
	cmd.Flags().StringVar(&tz, "tz", "UTC", "time zone for printed times (IANA name)")
	_ = cmd.MarkFlagRequired("interaction")
	return cmd
}

func (g *globals) replay(ctx context.Context, id, format string, loc *time.Location) error {
	sess, err := g.open(ctx, connectOpts{})
	if err != nil {
		return err
	}
	defer sess.close()
	tl, err := sess.catchUpTimeline(ctx)
	if err != nil {
		return err
	}
	seqs, err := tl.Sequences(ctx, id)
	if err != nil {
		return err
	}
	if len(seqs) == 0 {
		fmt.Fprintf(g.stderr, "no events for %s in the log\n", id)
		return exitError{code: 1}
	}
	log, err := streams.OpenLog(ctx, sess.js)
	if err != nil {
		return err
	}
	events := make([]domain.Stored, 0, len(seqs))
	for _, seq := range seqs {
		st, err := log.Get(ctx, seq)
		if err != nil {
			return err
		}
		events = append(events, st)
	}
	SortTimeline(events)
	w := bufio.NewWriter(g.stdout)
	defer w.Flush()
	if format == "jsonl" {
		for _, st := range events {
			w.Write(st.Raw)
			w.WriteByte('\n')
		}
		return nil
	}
	return writeTimeline(w, events, loc)
}

// SortTimeline orders events by event time, ties by stream sequence.
func SortTimeline(events []domain.Stored) {
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i], events[j]
		if !a.Event.Time.Equal(b.Event.Time) {
			return a.Event.Time.Before(b.Event.Time)
		}
		return a.Seq < b.Seq
	})
}

func writeTimeline(w io.Writer, events []domain.Stored, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT TIME\tSEQ\tRECEIVED\tTYPE\tSOURCE\tDETAILS")
	for _, st := range events {
		e := st.Event
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n",
			e.Time.In(loc).Format(time.RFC3339Nano), st.Seq, st.Received.In(loc).Format(time.RFC3339Nano),
			e.Type, e.Source, details(e.Data))
	}
	return tw.Flush()
}

// details prints a payload as key=value pairs in the contract's field names.
func details(d domain.Data) string {
	b, err := json.Marshal(d, json.Deterministic(true))
	if err != nil {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return string(b)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		switch x := v.(type) {
		case map[string]any:
			sub, _ := json.Marshal(x, json.Deterministic(true))
			parts = append(parts, k+"="+string(sub))
		default:
			parts = append(parts, fmt.Sprintf("%s=%v", k, x))
		}
	}
	return strings.Join(parts, " ")
}
