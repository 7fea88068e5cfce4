package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

func rebuildCmd(g *globals) *cobra.Command {
	var view string
	cmd := &cobra.Command{
		Use:   "rebuild [--view NAME]",
		Short: "Rebuild views from sequence 1 into a fresh copy and swap it in",
		Long: `Replays the log from its first sequence into a fresh copy of each selected view (one
read of the log for all of them), then swaps each copy in, in one transaction: readers see
the old view or the new one, never a mix. A rebuild raises no alerts. Views: ` + strings.Join(projections.ViewNames, ", ") + `.
A progress bar is shown when stderr is a terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names := projections.ViewNames
			if view != "" && view != "all" {
				names = []string{view}
			}
			ctx := cmd.Context()
			sess, err := g.open(ctx, connectOpts{})
			if err != nil {
				return err
			}
			defer sess.close()
			res, err := sess.rebuild(ctx, names, progressFor(g.stderr))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "rebuilt %s to sequence %d: %d events in %s (%.0f events/s)\n",
				strings.Join(names, ", "), res.last, res.events, res.took.Round(time.Millisecond), float64(res.events)/res.took.Seconds())
			return nil
		},
	}
	cmd.Flags().StringVar(&view, "view", "all", "the view to rebuild, or all")
	return cmd
}

type rebuildResult struct {
	last   uint64
	events uint64
	took   time.Duration
}

// rebuild replays the log into fresh copies of the named views and swaps them in.
func (s *session) rebuild(ctx context.Context, names []string, progress func(applied, last uint64)) (rebuildResult, error) {
	start := time.Now()
	// A rebuild allocates at the rate it reads (every event decoded, its rows bound) and
	// keeps little: the collector running a quarter as often costs a few tens of MB.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	cfgs := make([]projections.ViewConfig, 0, len(names))
	for _, name := range names {
		cfgs = append(cfgs, projections.ViewConfig{Name: name, Lateness: s.lateness, RedactionBuffer: s.redaction})
	}
	rb, err := projections.NewRebuild(ctx, s.store, cfgs...)
	if err != nil {
		return rebuildResult{}, err
	}
	defer rb.Close()
	var last uint64
	c := streams.NewConsumer(s.js, rb, streams.ConsumerConfig{Ephemeral: true, Batch: 2000,
		Progress: func(applied, l uint64) {
			last = applied
			if progress != nil {
				progress(applied, l)
			}
		}})
	if err := c.CatchUp(ctx); err != nil {
		return rebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	if err := rb.SwapIn(ctx); err != nil {
		return rebuildResult{}, err
	}
	return rebuildResult{last: last, events: last, took: time.Since(start)}, nil
}

// progressFor returns a progress callback drawing a bar on w when it is a terminal.
func progressFor(w io.Writer) func(applied, last uint64) {
	if lw, ok := w.(*lockedWriter); ok {
		w = lw.w
	}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	var bar *progressbar.ProgressBar
	return func(applied, last uint64) {
		if bar == nil {
			bar = progressbar.NewOptions64(int64(last), progressbar.OptionSetWriter(f), progressbar.OptionSetDescription("replaying"),
				progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		bar.Set64(int64(applied))
	}
}
