package main

import (
	"context"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// TestRebuildProfile writes a CPU profile of a rebuild of all five views alone (no
// ingest, no verification) to the file CUSTODY_REBUILD_PROFILE names; skipped unless it
// is set. CUSTODY_REBUILD_EVENTS sets the log's size (default 100000).
//
//	CUSTODY_REBUILD_PROFILE=/tmp/rebuild.prof go test -run RebuildProfile ./cmd/custody
func TestRebuildProfile(t *testing.T) {
	out := os.Getenv("CUSTODY_REBUILD_PROFILE")
	if out == "" {
		t.Skip("CUSTODY_REBUILD_PROFILE is not set")
	}
	n := 100000
	if s := os.Getenv("CUSTODY_REBUILD_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	sess := ingestedSession(t, n)
	log, err := streams.OpenLog(ctx, sess.js)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	events := 0
	if err := log.ReplayRaw(ctx, streams.ReplayFrom{}, func(uint64, string, time.Time, []byte) error { events++; return nil }); err != nil {
		t.Fatal(err)
	}
	raw := time.Since(start)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	res, err := sess.rebuild(ctx, projections.ViewNames, nil)
	pprof.StopCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	if mem := os.Getenv("CUSTODY_REBUILD_MEMPROFILE"); mem != "" {
		mf, err := os.Create(mem)
		if err != nil {
			t.Fatal(err)
		}
		defer mf.Close()
		if err := pprof.Lookup("allocs").WriteTo(mf, 0); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d events: raw %s, rebuild %s, rebuild/raw %.3f", events, raw.Round(time.Millisecond), res.took.Round(time.Millisecond), raw.Seconds()/res.took.Seconds())
}
