package main

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
)

// BenchmarkPublish runs custody's ingest beside raw JetStream publishing of the same
// bytes, on fresh stores with the same settings, and reports the ratios:
//
//	go test -run '^$' -bench Publish -benchtime 1x ./cmd/custody
func BenchmarkPublish(b *testing.B) {
	for i := 0; i < b.N; i++ {
		rows, err := runPublishBench(context.Background(), benchConfig{Rounds: 1, Events: 5000, AtomicEvents: 100000})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			switch r.Name {
			case "raw one-by-one":
				b.ReportMetric(r.PerSec, "raw-events/s")
			case "custody one-by-one":
				b.ReportMetric(r.Ratio, "custody/raw")
			case "custody atomic":
				b.ReportMetric(r.PerSec, "atomic-events/s")
				b.ReportMetric(r.Ratio, "custody-atomic/raw-atomic")
			case "custody atomic vs raw one-by-one":
				b.ReportMetric(r.Ratio, "atomic/one-by-one")
			}
		}
	}
}

// TestBenchRuns checks that every measurement of custody bench runs and stores what it
// published (the rates themselves are not asserted: they belong to benchmarks).
func TestBenchRuns(t *testing.T) {
	rows, err := runPublishBench(context.Background(), benchConfig{Rounds: 1, Events: 300, AtomicEvents: 2500, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	for _, r := range rows {
		if r.PerSec <= 0 || (r.Baseline != "" && r.Ratio <= 0) {
			t.Fatalf("row %+v", r)
		}
	}
}

// BenchmarkRebuild times a rebuild of all five views (the median of three, taken in
// turn with three raw ordered replays of the same stream) and a verification of the
// log, and reports the ratios to raw replay:
//
//	go test -run '^$' -bench Rebuild -benchtime 1x ./cmd/custody
func BenchmarkRebuild(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := benchRebuild(context.Background(), b.TempDir(), 100000, 3)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.events)/r.raw.Seconds(), "raw-events/s")
		b.ReportMetric(float64(r.events)/r.rebuild.Seconds(), "rebuild-events/s")
		b.ReportMetric(r.raw.Seconds()/r.rebuild.Seconds(), "rebuild/raw")
		b.ReportMetric(r.raw.Seconds()/r.verify.Seconds(), "verify/raw")
	}
}

// BenchmarkAlertLatency runs every projector live while simulated traffic is published
// at 2,000 events/s, and reports the publish-to-alert latency percentiles:
//
//	go test -run '^$' -bench AlertLatency -benchtime 1x ./cmd/custody
func BenchmarkAlertLatency(b *testing.B) {
	for i := 0; i < b.N; i++ {
		raw, err := benchLatency(context.Background(), b.TempDir(), 2000, 15*time.Second, true)
		if err != nil {
			b.Fatal(err)
		}
		lat, err := benchLatency(context.Background(), b.TempDir(), 2000, 15*time.Second, false)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(percentile(raw, 0.99).Microseconds())/1000, "raw-p99-ms")
		b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
}

// TestBenchClusterRuns checks that the cluster rows of custody bench run on a local
// three-node cluster and give every custody figure a ratio to raw on the cluster and
// every raw figure a ratio to one node.
func TestBenchClusterRuns(t *testing.T) {
	cfg := benchConfig{Rounds: 1, Events: 200, AtomicEvents: 1000, RebuildEvents: 1500, Dir: t.TempDir()}
	lines, err := benchEvents(cfg.AtomicEvents)
	if err != nil {
		t.Fatal(err)
	}
	var rows []benchRow
	add := func(name string, n int, d time.Duration, baseline string) {
		rows = append(rows, benchRow{Name: name, Events: n, Seconds: d.Seconds(), PerSec: float64(n) / d.Seconds(), Baseline: baseline})
	}
	if err := clusterRows(context.Background(), cfg, 3, lines[:cfg.Events], lines, add); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"raw one-by-one, 3 nodes R3":         "raw one-by-one",
		"custody one-by-one, 3 nodes R3":     "raw one-by-one, 3 nodes R3",
		"raw atomic, 3 nodes R3":             "raw atomic",
		"custody atomic, 3 nodes R3":         "raw atomic, 3 nodes R3",
		"raw ordered replay, 3 nodes R3":     "raw ordered replay",
		"rebuild all five views, 3 nodes R3": "raw ordered replay, 3 nodes R3",
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		if want[r.Name] != r.Baseline || r.PerSec <= 0 {
			t.Fatalf("row %+v", r)
		}
	}
	if rows[4].Events != cfg.RebuildEvents {
		t.Fatalf("the cluster replay read %d events, want %d", rows[4].Events, cfg.RebuildEvents)
	}
}

// BenchmarkClusterScaling runs custody bench's cluster rows on three in-process nodes:
//
//	go test -run '^$' -bench ClusterScaling -benchtime 1x ./cmd/custody
func BenchmarkClusterScaling(b *testing.B) {
	for i := 0; i < b.N; i++ {
		rows, err := runPublishBench(context.Background(), benchConfig{Rounds: 1, Events: 5000, AtomicEvents: 100000, RebuildEvents: 100000, ClusterNodes: 3, Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			if r.Baseline != "" {
				b.Logf("%-45s %9.0f ev/s  %.2f of %s", r.Name, r.PerSec, r.Ratio, r.Baseline)
			}
		}
	}
}

// BenchmarkLedgerRetained reports the heap a live view's in-memory ledger keeps for
// 100,000 simulated events decoded from the log (what a long-running serve holds):
//
//	go test -run '^$' -bench LedgerRetained -benchtime 1x ./cmd/custody
func BenchmarkLedgerRetained(b *testing.B) {
	lines, err := benchEvents(100000)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		l := domain.NewLedger()
		for _, line := range lines {
			e, err := domain.Parse(line)
			if err != nil {
				b.Fatal(err)
			}
			l.Add(e)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "retained-MB")
		runtime.KeepAlive(l)
	}
}

// BenchmarkReports times every report over the views of a log of 100,000 simulated
// events (rebuilt from it), as of now, and reports each one's milliseconds:
//
//	go test -run '^$' -bench Reports -benchtime 1x ./cmd/custody
func BenchmarkReports(b *testing.B) {
	ctx := context.Background()
	sess := ingestedSession(b, 100000)
	if _, err := sess.rebuild(ctx, projections.ViewNames, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, name := range projections.ReportNames {
			start := time.Now()
			if _, err := sess.store.Report(ctx, name, projections.Params{AsOf: time.Now().UTC()}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000, name+"-ms")
		}
	}
}

// ingestedSession opens a session on a fresh data directory, closed when tb ends, and
// ingests n simulated events into its log (no projector runs).
func ingestedSession(tb testing.TB, n int) *session {
	tb.Helper()
	ctx := context.Background()
	g := &globals{data: filepath.Join(tb.TempDir(), "data")}
	sess, err := g.open(ctx, connectOpts{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sess.close)
	lines, err := benchEvents(n)
	if err != nil {
		tb.Fatal(err)
	}
	if err := custodyIngest(ctx, sess.nc, lines, 1000); err != nil {
		tb.Fatal(err)
	}
	return sess
}
