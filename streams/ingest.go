package streams

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/custody/custody/domain"
)

// MaxLine is the longest JSON Lines record accepted (the log's message limit).
const MaxLine = 1 << 20

// IngestConfig configures Ingest. The zero value is valid.
type IngestConfig struct {
	// Chunk is how many lines are decoded and published per step. Optional; default 8000.
	Chunk int
	// Known returns which of ids the log already holds (at any time, not only within the
	// server's duplicate window). Optional.
	Known func(ctx context.Context, ids []string) (map[string]uint64, error)
	// Report receives one line per problem: "line N: <field>: <rule>". Optional.
	Report func(string)
	// Now is the receiving clock for the decoder. Optional; default time.Now.
	Now func() time.Time
}

// IngestTally counts the outcome of an ingest.
type IngestTally struct {
	Published, Duplicates, Rejected int
}

// Ingest reads JSON Lines events, validates each against the contract, and stores the
// valid ones through pub, exactly once. Lines are decoded on every core while earlier
// chunks are published. An invalid line is reported and nothing of it is stored; an id
// already in the log or earlier in the input is a duplicate. Blank lines are skipped
// (they still count for line numbers) and a trailing carriage return is ignored.
func Ingest(ctx context.Context, in io.Reader, pub *Publisher, cfg IngestConfig) (IngestTally, error) {
	if cfg.Chunk == 0 {
		cfg.Chunk = 8000
	}
	if cfg.Chunk < 0 {
		return IngestTally{}, fmt.Errorf("ingest: Chunk %d: must be positive", cfg.Chunk)
	}
	if cfg.Report == nil {
		cfg.Report = func(string) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	chunks, readErr := decodeLines(ctx, in, cfg.Chunk, cfg.Now)
	var t IngestTally
	seen := make(map[string]struct{})
	defer func() {
		for range chunks { // let the decoders finish if we return early
		}
	}()
	for c := range chunks {
		for _, r := range c.report {
			cfg.Report(r)
		}
		t.Rejected += c.bad
		fresh := make([]lineEvent, 0, len(c.events))
		ids := make([]string, 0, len(c.events))
		for _, le := range c.events {
			if _, dup := seen[le.out.ID]; dup {
				t.Duplicates++
				continue
			}
			seen[le.out.ID] = struct{}{}
			fresh = append(fresh, le)
			ids = append(ids, le.out.ID)
		}
		var known map[string]uint64
		if cfg.Known != nil {
			var err error
			if known, err = cfg.Known(ctx, ids); err != nil {
				return t, err
			}
		}
		outs := make([]Outgoing, 0, len(fresh))
		lines := make([]int, 0, len(fresh))
		for _, le := range fresh {
			if _, dup := known[le.out.ID]; dup {
				t.Duplicates++
				continue
			}
			outs = append(outs, le.out)
			lines = append(lines, le.line)
		}
		for i, r := range pub.PublishAll(ctx, outs) {
			switch r.Status {
			case Stored:
				t.Published++
			case Duplicate:
				t.Duplicates++
			default:
				t.Rejected++
				cfg.Report(fmt.Sprintf("line %d: log: %v", lines[i], r.Err))
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return t, err
	}
	if *readErr != nil {
		return t, fmt.Errorf("read: %w", *readErr)
	}
	return t, nil
}

type lineEvent struct {
	line int
	out  Outgoing
}

type decodedChunk struct {
	index  int
	events []lineEvent
	report []string // "line N: field: rule"
	bad    int
}

// decodeLines reads JSON Lines and decodes them on every core, delivering chunks in
// input order.
// The read error, if any, is in *readErr once the channel is closed.
func decodeLines(ctx context.Context, in io.Reader, size int, now func() time.Time) (<-chan decodedChunk, *error) {
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
			dec := domain.Decoder{Now: now}
			for rc := range raw {
				dc := decodedChunk{index: rc.index, events: make([]lineEvent, 0, len(rc.lines))}
				long := 0
				for i, line := range rc.lines {
					n := rc.first + i
					if long < len(rc.long) && rc.long[long] == i {
						long++
						dc.report = append(dc.report, fmt.Sprintf("line %d: event: must be at most %d bytes", n, MaxLine))
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
					o, err := NewOutgoing(ev)
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

// readLine returns the next line without its newline. A line longer than MaxLine is
// consumed but not kept: long reports it.
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	var buf []byte
	for {
		part, err := br.ReadSlice('\n')
		if !long {
			if len(buf)+len(part) > MaxLine+2 { // +2 for "\r\n"
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
