package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/spf13/cobra"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/simulate"
	"github.com/custody/custody/streams"
)

func benchCmd(g *globals) *cobra.Command {
	var cfg benchConfig
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure durable ingest against raw JetStream on this machine, in one run",
		Long: `Publishes the same simulated events (the same bytes) to fresh embedded servers with
custody's stream settings and sync_interval: always, four ways, and prints events/s with
each custody figure as a ratio to raw JetStream in the same run:

  raw one-by-one       jetstream PublishMsgAsync of the stored bytes, Nats-Msg-Id set
  custody one-by-one   custody's ingest: decode, validate, encode, publish, acknowledge
  raw atomic           hand-written atomic batches of 1000 of the stored bytes
  custody atomic       custody's ingest with atomic batches (the publish default)

It also prints the decode+validate+encode rate alone, on all cores; a rebuild of the five
views beside raw ordered replay of the same stream; with --cluster-nodes (default 3) the
ingest and rebuild runs again on an in-process cluster with streams at that many replicas
(custody against raw on the cluster, raw on the cluster against raw on one node); and
publish-to-alert latency beside raw publish-to-delivery latency at --latency-rate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := runPublishBench(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return printBench(g.stdout, rows)
		},
	}
	cmd.Flags().IntVar(&cfg.Rounds, "rounds", 3, "runs of each measurement; the median is reported")
	cmd.Flags().IntVar(&cfg.Events, "events", 20000, "events per one-by-one run")
	cmd.Flags().IntVar(&cfg.AtomicEvents, "atomic-events", 200000, "events per atomic-batch run")
	cmd.Flags().StringVar(&cfg.Dir, "dir", "", "directory for the temporary stores (default: the system's temp dir)")
	cmd.Flags().IntVar(&cfg.RebuildEvents, "rebuild-events", 100000, "events in the rebuild measurement (0 skips it)")
	cmd.Flags().IntVar(&cfg.LatencyRate, "latency-rate", 2000, "events/s of the live alert-latency measurement (0 skips it)")
	cmd.Flags().DurationVar(&cfg.LatencyFor, "latency-for", 15*time.Second, "how long the latency measurement publishes")
	cmd.Flags().IntVar(&cfg.ClusterNodes, "cluster-nodes", 3, "also measure ingest and rebuild on an in-process cluster of this many nodes, streams at as many replicas (0 or 1 skips it)")
	return cmd
}

type benchConfig struct {
	RebuildEvents int
	// ClusterNodes > 1 repeats the ingest and rebuild runs on a local cluster.
	ClusterNodes int
	LatencyRate  int
	LatencyFor   time.Duration
	Rounds       int
	Events       int
	AtomicEvents int
	Dir          string
}

type benchRow struct {
	Name     string  `json:"name"`
	Events   int     `json:"events"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"eventsPerSecond"`
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
}

// benchEvents returns at least n distinct simulated events as canonical JSON lines.
func benchEvents(n int) ([][]byte, error) {
	var buf bytes.Buffer
	interactions := n/8 + 10
	for {
		buf.Reset()
		if err := simulate.Write(&buf, simulate.Config{Seed: 7, Interactions: interactions}); err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		var lines [][]byte
		sc := bufio.NewScanner(&buf)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() && len(lines) < n {
			e, err := domain.Parse(sc.Bytes())
			if err != nil {
				return nil, err
			}
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
		if len(lines) == n {
			return lines, nil
		}
		interactions *= 2
	}
}

func runPublishBench(ctx context.Context, cfg benchConfig) ([]benchRow, error) {
	if cfg.Events < 1 || cfg.AtomicEvents < 1 || cfg.Rounds < 1 {
		return nil, fmt.Errorf("--events, --atomic-events and --rounds must be positive")
	}
	median := func(fn func(*nats.Conn) error) (time.Duration, error) {
		var ds []time.Duration
		for r := 0; r < cfg.Rounds; r++ {
			d, err := withServer(ctx, cfg.Dir, fn)
			if err != nil {
				return 0, err
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		return ds[len(ds)/2], nil
	}
	all, err := benchEvents(max(cfg.Events, cfg.AtomicEvents))
	if err != nil {
		return nil, err
	}
	var rows []benchRow
	add := func(name string, n int, d time.Duration, baseline string) {
		r := benchRow{Name: name, Events: n, Seconds: d.Seconds(), PerSec: float64(n) / d.Seconds(), Baseline: baseline}
		for _, b := range rows {
			if b.Name == baseline {
				r.Ratio = r.PerSec / b.PerSec
			}
		}
		rows = append(rows, r)
	}

	// Validation and encoding alone, on all cores.
	d := decodeOnly(all[:cfg.AtomicEvents])
	add("decode+validate+encode only", cfg.AtomicEvents, d, "")

	one := all[:cfg.Events]
	if d, err = median(func(nc *nats.Conn) error { return rawAsync(ctx, nc, one, 1024) }); err != nil {
		return nil, err
	}
	add("raw one-by-one", len(one), d, "")
	if d, err = median(func(nc *nats.Conn) error { return custodyIngest(ctx, nc, one, 0) }); err != nil {
		return nil, err
	}
	add("custody one-by-one", len(one), d, "raw one-by-one")

	many := all[:cfg.AtomicEvents]
	if d, err = median(func(nc *nats.Conn) error { return rawAtomic(ctx, nc, many, 1000) }); err != nil {
		return nil, err
	}
	add("raw atomic", len(many), d, "raw one-by-one")
	if d, err = median(func(nc *nats.Conn) error { return custodyIngest(ctx, nc, many, 1000) }); err != nil {
		return nil, err
	}
	add("custody atomic", len(many), d, "raw atomic")
	// custody atomic against the per-message durable rate.
	last := rows[len(rows)-1]
	for _, b := range rows {
		if b.Name == "raw one-by-one" {
			rows = append(rows, benchRow{Name: "custody atomic vs raw one-by-one", Events: last.Events, Seconds: last.Seconds, PerSec: last.PerSec, Baseline: b.Name, Ratio: last.PerSec / b.PerSec})
		}
	}
	if cfg.RebuildEvents > 0 {
		r, err := benchRebuild(ctx, cfg.Dir, cfg.RebuildEvents, cfg.Rounds)
		if err != nil {
			return nil, err
		}
		add("raw ordered replay", r.events, r.raw, "")
		add("rebuild all five views", r.events, r.rebuild, "raw ordered replay")
		add("verify (tree, checkpoints, reference)", r.events, r.verify, "raw ordered replay")
	}
	if cfg.ClusterNodes > 1 {
		if err := clusterRows(ctx, cfg, cfg.ClusterNodes, one, many, add); err != nil {
			return nil, err
		}
	}
	if cfg.LatencyRate > 0 {
		raw, err := benchLatency(ctx, cfg.Dir, cfg.LatencyRate, cfg.LatencyFor, true)
		if err != nil {
			return nil, err
		}
		lat, err := benchLatency(ctx, cfg.Dir, cfg.LatencyRate, cfg.LatencyFor, false)
		if err != nil {
			return nil, err
		}
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", 0.50}, {"p99", 0.99}, {"max", 1}} {
			rows = append(rows,
				benchRow{Name: fmt.Sprintf("raw publish-to-delivery %s at %d ev/s", p.name, cfg.LatencyRate), Events: len(raw), Seconds: percentile(raw, p.q).Seconds()},
				benchRow{Name: fmt.Sprintf("publish-to-alert %s at %d ev/s", p.name, cfg.LatencyRate), Events: len(lat), Seconds: percentile(lat, p.q).Seconds()})
		}
	}
	return rows, nil
}

func printBench(w io.Writer, rows []benchRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "run\tevents\tseconds\tevents/s\tratio\tto\t\n")
	for _, r := range rows {
		ratio := ""
		if r.Baseline != "" {
			ratio = strconv.FormatFloat(r.Ratio, 'f', 2, 64)
		}
		if r.PerSec == 0 { // a latency row: seconds is the latency
			fmt.Fprintf(tw, "%s\t%d\t%.4f\t\t\t\t\n", r.Name, r.Events, r.Seconds)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%s\t%s\t\n", r.Name, r.Events, r.Seconds, r.PerSec, ratio, r.Baseline)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b, _ := json.Marshal(rows)
	_, err := fmt.Fprintf(w, "\n%s\n", b)
	return err
}

// withServer starts a fresh embedded server with custody's streams, times fn, and
// removes the store.
func withServer(ctx context.Context, parent string, fn func(*nats.Conn) error) (time.Duration, error) {
	dir, err := os.MkdirTemp(parent, "custody-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	e, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: dir})
	if err != nil {
		return 0, err
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	if err := streams.EnsureStreams(ctx, js, streams.LogConfig{}); err != nil {
		return 0, err
	}
	return timeStored(ctx, js, nc, fn)
}

// timeStored times fn on nc and checks that it stored something in the events stream.
func timeStored(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, fn func(*nats.Conn) error) (time.Duration, error) {
	runtime.GC()
	start := time.Now()
	if err := fn(nc); err != nil {
		return 0, err
	}
	d := time.Since(start)
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return 0, fmt.Errorf("bench run stored nothing")
	}
	return d, nil
}

type benchMsg struct {
	id, subject string
	data        []byte
}

// prepared extracts id and subject without validation: what a raw publisher would
// already know.
func prepared(lines [][]byte) []benchMsg {
	out := make([]benchMsg, len(lines))
	for i, l := range lines {
		var h struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		_ = json.Unmarshal(l, &h)
		out[i] = benchMsg{id: h.ID, subject: streams.Subject(domain.Type(h.Type)), data: l}
	}
	return out
}

func natsMsg(m benchMsg) *nats.Msg {
	return &nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{jetstream.MsgIDHeader: []string{m.id}}}
}

// rawAsync publishes the bytes one by one with at most inFlight acknowledgements
// outstanding, exactly what a bare JetStream client does.
func rawAsync(ctx context.Context, nc *nats.Conn, lines [][]byte, inFlight int) error {
	msgs := prepared(lines)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(inFlight))
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if _, err := js.PublishMsgAsync(natsMsg(m), jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("raw publish did not complete")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rawAtomic publishes the bytes in atomic batches, with as many batches in flight as
// custody's publisher uses.
func rawAtomic(ctx context.Context, nc *nats.Conn, lines [][]byte, size int) error {
	msgs := prepared(lines)
	spans := make(chan []benchMsg)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < 1; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range spans {
				if err := rawAtomicBatch(ctx, nc, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for lo := 0; lo < len(msgs); lo += size {
		spans <- msgs[lo:min(lo+size, len(msgs))]
	}
	close(spans)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func rawAtomicBatch(ctx context.Context, nc *nats.Conn, batch []benchMsg) error {
	{
		id := nuid.Next()
		for i, m := range batch {
			msg := &nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{
				jetstream.MsgIDHeader: []string{m.id}, "Nats-Batch-Id": []string{id}, "Nats-Batch-Sequence": []string{strconv.Itoa(i + 1)}}}
			if i < len(batch)-1 {
				if err := nc.PublishMsg(msg); err != nil {
					return err
				}
				continue
			}
			msg.Header.Set("Nats-Batch-Commit", "1")
			reply, err := nc.RequestMsgWithContext(ctx, msg)
			if err != nil {
				return err
			}
			if bytes.Contains(reply.Data, []byte(`"error"`)) {
				return fmt.Errorf("raw atomic batch: %s", reply.Data)
			}
		}
	}
	return nil
}

// custodyIngest runs custody's publish path on the lines.
func custodyIngest(ctx context.Context, nc *nats.Conn, lines [][]byte, batch int) error {
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{AtomicBatch: batch})
	if err != nil {
		return err
	}
	in := bytes.Join(lines, []byte("\n"))
	t, err := streams.Ingest(ctx, bytes.NewReader(in), pub, streams.IngestConfig{})
	if err != nil {
		return err
	}
	if t.Published != len(lines) {
		return fmt.Errorf("custody ingest stored %d of %d (rejected %d, duplicates %d)", t.Published, len(lines), t.Rejected, t.Duplicates)
	}
	return nil
}

// decodeOnly decodes, validates and re-encodes every line on all cores.
func decodeOnly(lines [][]byte) time.Duration {
	start := time.Now()
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			dec := domain.Decoder{}
			for i := w; i < len(lines); i += workers {
				e, err := dec.Decode(lines[i])
				if err == nil {
					_, _ = streams.NewOutgoing(e)
				}
			}
		}(w)
	}
	wg.Wait()
	return time.Since(start)
}
