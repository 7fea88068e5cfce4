package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/custody/custody/streams"
)

type publishFlags struct {
	atomicBatch int
	inFlight    int
	chunk       int
}

func publishCmd(g *globals) *cobra.Command {
	f := publishFlags{}
	cmd := &cobra.Command{
		Use:   "publish [FILE|-]",
		Short: "Validate JSON Lines events and store them in the log, exactly once",
		Long: `Reads CloudEvents as JSON Lines (a file, or standard input for "-" or no argument),
validates every line against the event contract and stores the valid events in the log.

Each invalid line is reported on stderr as "line N: <field>: <rule>" (one line per
problem) and nothing of it is stored. An event whose id is already in the log, or appears
earlier in the input, is a duplicate: counted, not an error. The last line on stderr is
"published P, duplicates D, rejected R". Exit status 0 when R is 0, else 1.

Events are committed in atomic batches (one disk sync per batch, each event still
acknowledged only once it is on disk); --atomic-batch 0 publishes them one by one.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := g.stdin
			if len(args) == 1 && args[0] != "-" {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer file.Close()
				in = file
			}
			return g.publish(cmd.Context(), in, f)
		},
	}
	cmd.Flags().IntVar(&f.atomicBatch, "atomic-batch", 1000, "events per atomic batch (0: one acknowledgement per event; at most 1000)")
	cmd.Flags().IntVar(&f.inFlight, "in-flight", 1024, "acknowledgements outstanding at once when not batching")
	cmd.Flags().IntVar(&f.chunk, "chunk", 8000, "lines decoded and published per step")
	return cmd
}

func (g *globals) publish(ctx context.Context, in io.Reader, f publishFlags) error {
	sess, err := g.open(ctx, connectOpts{})
	if err != nil {
		return err
	}
	defer sess.close()
	tl, err := sess.catchUpTimeline(ctx)
	if err != nil {
		return err
	}
	pub, err := streams.NewPublisher(sess.nc, streams.PublisherConfig{AtomicBatch: f.atomicBatch, MaxInFlight: f.inFlight})
	if err != nil {
		return err
	}
	stderr := bufio.NewWriter(g.stderr)
	defer stderr.Flush()
	t, err := streams.Ingest(ctx, in, pub, streams.IngestConfig{
		Chunk: f.chunk,
		Known: tl.Known,
		Report: func(line string) {
			stderr.WriteString(line)
			stderr.WriteByte('\n')
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		if ctx.Err() == nil {
			t.Rejected++
		}
	}
	fmt.Fprintf(stderr, "published %d, duplicates %d, rejected %d\n", t.Published, t.Duplicates, t.Rejected)
	if t.Rejected > 0 || err != nil {
		return exitError{code: 1}
	}
	return nil
}
