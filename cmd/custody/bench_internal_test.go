package main

import (
	"context"
	"testing"
	"time"
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

// BenchmarkRebuild times a rebuild of all five views and a verification of the log
// beside raw ordered replay of the same stream and reports the ratios:
//
//	go test -run '^$' -bench Rebuild -benchtime 1x ./cmd/custody
func BenchmarkRebuild(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := benchRebuild(context.Background(), b.TempDir(), 100000)
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
