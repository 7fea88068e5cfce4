package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/streams"
)

// maxLine is the longest JSON Lines record accepted (the log's message limit).
const maxLine = 1 << 20

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

type lineEvent struct {
	line int
	out  streams.Outgoing
}

type decodedChunk struct {
	index  int
	events []lineEvent
	report []string // "line N: field: rule"
	bad    int
}

type publishTally struct {
	published, duplicates, rejected int
}

func (g *globals) publish(ctx context.Context, in io.Reader, f publishFlags) error {
	if f.chunk < 1 {
		return fmt.Errorf("--chunk %d: must be at least 1", f.chunk)
	}
	sess, err := g.connect(ctx, connectOpts{})
	if err != nil {
		return err
	}
	defer sess.close()
	if err := g.openStore(ctx, sess); err != nil {
		return err
	}
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

	chunks, readErr := decodeLines(ctx, in, f.chunk)
	var t publishTally
	seen := make(map[string]struct{})
	for c := range chunks {
		for _, r := range c.report {
			stderr.WriteString(r)
			stderr.WriteByte('\n')
		}
		t.rejected += c.bad
		fresh := make([]lineEvent, 0, len(c.events))
		ids := make([]string, 0, len(c.events))
		for _, le := range c.events {
			if _, dup := seen[le.out.ID]; dup {
				t.duplicates++
				continue
			}
			seen[le.out.ID] = struct{}{}
			fresh = append(fresh, le)
			ids = append(ids, le.out.ID)
		}
		known, err := tl.Known(ctx, ids)
		if err != nil {
			return err
		}
		outs := make([]streams.Outgoing, 0, len(fresh))
		lines := make([]int, 0, len(fresh))
		for _, le := range fresh {
			if _, dup := known[le.out.ID]; dup {
				t.duplicates++
				continue
			}
			outs = append(outs, le.out)
			lines = append(lines, le.line)
		}
		for i, r := range pub.PublishAll(ctx, outs) {
			switch r.Status {
			case streams.Stored:
				t.published++
			case streams.Duplicate:
				t.duplicates++
			default:
				t.rejected++
				fmt.Fprintf(stderr, "line %d: log: %v\n", lines[i], r.Err)
			}
		}
		stderr.Flush()
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "interrupted: %v\n", err)
	}
	if *readErr != nil {
		fmt.Fprintf(stderr, "read: %v\n", *readErr)
		t.rejected++
	}
	fmt.Fprintf(stderr, "published %d, duplicates %d, rejected %d\n", t.published, t.duplicates, t.rejected)
	if t.rejected > 0 || ctx.Err() != nil {
		return exitError{code: 1}
	}
	return nil
}

// decodeLines reads JSON Lines and decodes them on every core, delivering chunks in
// input order.
// The read error, if any, is in *readErr once the channel is closed.
func decodeLines(ctx context.Context, in io.Reader, size int) (<-chan decodedChunk, *error) {
	var readErr error
	type rawChunk struct {
		index int
		first int
		lines [][]byte
		long  []int // indexes of over-long lines
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	raw := make(chan rawChunk, workers)
	done := make(chan decodedChunk, workers)
	out := make(chan decodedChunk, 2)

	go func() { // reader
		defer close(raw)
		br := bufio.NewReaderSize(in, 1<<20)
		lineNo, index := 0, 0
		cur := rawChunk{first: 1}
		for ctx.Err() == nil {
			line, long, err := readLine(br)
			if len(line) > 0 || long || err == nil {
				lineNo++
				if long {
					line = nil // reported as over-long below
				}
				cur.lines = append(cur.lines, line)
				if long {
					cur.long = append(cur.long, len(cur.lines)-1)
				}
				if len(cur.lines) == size {
					raw <- cur
					index++
					cur = rawChunk{index: index, first: lineNo + 1}
				}
			}
			if err != nil {
				if err != io.EOF {
					readErr = err
				}
				break
			}
		}
		if len(cur.lines) > 0 {
			raw <- cur
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec := domain.Decoder{Now: time.Now}
			for rc := range raw {
				dc := decodedChunk{index: rc.index, events: make([]lineEvent, 0, len(rc.lines))}
				long := 0
				for i, line := range rc.lines {
					n := rc.first + i
					if long < len(rc.long) && rc.long[long] == i {
						long++
						dc.report = append(dc.report, fmt.Sprintf("line %d: event: must be at most %d bytes", n, maxLine))
						dc.bad++
						continue
					}
					line = bytes.TrimRight(line, "\r")
					if len(bytes.TrimSpace(line)) == 0 {
						continue // a blank line is skipped but counted
					}
					ev, err := dec.Decode(line)
					if err != nil {
						for _, p := range domain.Problems(err) {
							dc.report = append(dc.report, fmt.Sprintf("line %d: %s: %s", n, p.Field, p.Rule))
						}
						dc.bad++
						continue
					}
					o, err := streams.NewOutgoing(ev)
					if err != nil {
						dc.report = append(dc.report, fmt.Sprintf("line %d: event: %v", n, err))
						dc.bad++
						continue
					}
					dc.events = append(dc.events, lineEvent{line: n, out: o})
				}
				done <- dc
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	go func() { // reorder
		defer close(out)
		pending := map[int]decodedChunk{}
		next := 0
		for dc := range done {
			pending[dc.index] = dc
			for {
				c, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				out <- c
				next++
			}
		}
	}()
	return out, &readErr
}

// readLine returns the next line without its newline. A line longer than maxLine is
// consumed but not kept: long reports it.
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	var buf []byte
	for {
		part, err := br.ReadSlice('\n')
		if !long {
			if len(buf)+len(part) > maxLine+2 { // +2 for "\r\n"
				long, buf = true, nil
			} else {
				buf = append(buf, part...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return buf, long, err
		}
		return bytes.TrimSuffix(buf, []byte("\n")), long, nil
	}
}
