package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// clusterRows measures on fresh in-process clusters of nodes nodes, with custody's
// streams at nodes replicas, what the single-node rows measure: one-by-one and atomic
// ingest, raw and custody's, and a rebuild of the five views beside raw ordered replay.
// Each custody figure is given as a ratio to raw JetStream on the same cluster; each raw
// figure as a ratio to the same run on one node (how it scales).
func clusterRows(ctx context.Context, cfg benchConfig, nodes int, one, many [][]byte, add func(name string, n int, d time.Duration, baseline string)) error {
	suffix := fmt.Sprintf(", %d nodes R%d", nodes, nodes)
	runs := []struct {
		name, baseline string
		lines          [][]byte
		fn             func(*nats.Conn, [][]byte) error
	}{
		{"raw one-by-one", "raw one-by-one", one, func(nc *nats.Conn, l [][]byte) error { return rawAsync(ctx, nc, l, 1024) }},
		{"custody one-by-one", "raw one-by-one" + suffix, one, func(nc *nats.Conn, l [][]byte) error { return custodyIngest(ctx, nc, l, 0) }},
		{"raw atomic", "raw atomic", many, func(nc *nats.Conn, l [][]byte) error { return rawAtomic(ctx, nc, l, 1000) }},
		{"custody atomic", "raw atomic" + suffix, many, func(nc *nats.Conn, l [][]byte) error { return custodyIngest(ctx, nc, l, 1000) }},
	}
	for _, r := range runs {
		d, err := withCluster(ctx, cfg.Dir, nodes, func(nc *nats.Conn) error { return r.fn(nc, r.lines) })
		if err != nil {
			return fmt.Errorf("%s%s: %w", r.name, suffix, err)
		}
		add(r.name+suffix, len(r.lines), d, r.baseline)
	}
	if cfg.RebuildEvents > 0 {
		raw, rebuild, n, err := clusterRebuild(ctx, cfg.Dir, nodes, cfg.RebuildEvents)
		if err != nil {
			return fmt.Errorf("rebuild%s: %w", suffix, err)
		}
		add("raw ordered replay"+suffix, n, raw, "raw ordered replay")
		add("rebuild all five views"+suffix, n, rebuild, "raw ordered replay"+suffix)
	}
	return nil
}

// withCluster starts a fresh local cluster with custody's streams at nodes replicas,
// times fn, and removes it.
func withCluster(ctx context.Context, parent string, nodes int, fn func(*nats.Conn) error) (time.Duration, error) {
	dir, err := os.MkdirTemp(parent, "custody-bench-cluster-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	c, err := streams.StartLocalCluster(dir, nodes)
	if err != nil {
		return 0, err
	}
	defer c.Shutdown()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	if err := ensureStreamsRetry(ctx, js, nodes); err != nil {
		return 0, err
	}
	return timeStored(ctx, js, nc, fn)
}

// ensureStreamsRetry creates custody's streams, retrying while a fresh cluster settles.
func ensureStreamsRetry(ctx context.Context, js jetstream.JetStream, replicas int) error {
	var err error
	for range 60 {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = streams.EnsureStreams(cctx, js, streams.LogConfig{Replicas: replicas})
		cancel()
		if err == nil {
			return nil
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	return err
}

// clusterRebuild fills a fresh cluster's log with n simulated events, then times raw
// ordered replay and a rebuild of the five views (into SQLite) from it.
func clusterRebuild(ctx context.Context, parent string, nodes, n int) (raw, rebuild time.Duration, events int, err error) {
	dir, err := os.MkdirTemp(parent, "custody-bench-cluster-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	c, err := streams.StartLocalCluster(filepath.Join(dir, "nodes"), nodes)
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Shutdown()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		return 0, 0, 0, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		err = ensureStreamsRetry(ctx, js, nodes)
	}
	nc.Close()
	if err != nil {
		return 0, 0, 0, err
	}
	g := &globals{data: filepath.Join(dir, "data"), natsURL: c.URL(), replicas: nodes}
	sess, err := g.open(ctx, connectOpts{})
	if err != nil {
		return 0, 0, 0, err
	}
	defer sess.close()
	lines, err := benchEvents(n)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := custodyIngest(ctx, sess.nc, lines, 1000); err != nil {
		return 0, 0, 0, err
	}
	log, err := streams.OpenLog(ctx, sess.js)
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	err = log.ReplayRaw(ctx, streams.ReplayFrom{}, func(uint64, string, time.Time, []byte) error { events++; return nil })
	raw = time.Since(start)
	if err != nil {
		return 0, 0, 0, err
	}
	res, err := sess.rebuild(ctx, projections.ViewNames, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	return raw, res.took, events, nil
}
