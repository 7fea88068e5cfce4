package main

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// views builds the five view projectors over the session's store; onRaise is handed
// the alerts each commit raised.
func (s *session) views(silent bool, onRaise func([]projections.OutboxAlert)) ([]*projections.View, error) {
	out := make([]*projections.View, 0, len(projections.ViewNames))
	for _, name := range projections.ViewNames {
		v, err := projections.NewView(s.store, projections.ViewConfig{Name: name, Silent: silent, OnRaise: onRaise, Lateness: s.lateness, RedactionBuffer: s.redaction})
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// catchUp brings the timeline and every view up to the log's last sequence with one
// read of the log, then publishes the alerts that raised. When a serve holds the data
// directory, its projectors do that; catchUp waits for them instead of writing beside
// them.
func (s *session) catchUp(ctx context.Context) error {
	if s.held {
		return s.waitFor(ctx, append([]string{projections.TimelineName}, projections.ViewNames...))
	}
	views, err := s.views(false, nil)
	if err != nil {
		return err
	}
	projs := []streams.Projector{projections.NewTimeline(s.store)}
	for _, v := range views {
		projs = append(projs, v)
	}
	c := streams.NewConsumer(s.js, streams.NewFanout("catch-up", projs...), streams.ConsumerConfig{Ephemeral: true, Decode: s.decoder()})
	if err := c.CatchUp(ctx); err != nil {
		return err
	}
	if err := s.catchUpIntegrity(ctx, s.g, 0); err != nil {
		return err
	}
	for _, v := range views { // caught up: the wall clock may now make retention overdue
		if err := v.Tick(ctx); err != nil {
			return err
		}
	}
	_, err = s.flushOutbox(ctx)
	return err
}

// publishAlerts publishes alerts to the alerts stream and marks those the log
// acknowledged (stored, or already there); it returns how many. The others stay in the
// outbox for the next flush.
func (s *session) publishAlerts(ctx context.Context, alerts []projections.OutboxAlert) (int, error) {
	if len(alerts) == 0 {
		return 0, nil
	}
	msgs := make([]streams.Outgoing, len(alerts))
	for i, a := range alerts {
		msgs[i] = streams.Outgoing{ID: a.ID, Subject: streams.AlertSubjectPrefix + "raised", Data: a.Body}
	}
	var done []string
	for i, r := range s.pub.PublishAll(ctx, msgs) {
		if r.Status == streams.Stored || r.Status == streams.Duplicate {
			done = append(done, alerts[i].ID)
		}
	}
	return len(done), s.store.MarkPublished(ctx, done)
}

// flushOutbox publishes every raised alert not yet published.
func (s *session) flushOutbox(ctx context.Context) (int, error) {
	n := 0
	for {
		pending, err := s.store.PendingAlerts(ctx, 500)
		if err != nil || len(pending) == 0 {
			return n, err
		}
		done, err := s.publishAlerts(ctx, pending)
		n += done
		if err != nil {
			return n, err
		}
		if done < len(pending) {
			return n, fmt.Errorf("alerts outbox: %d of %d alerts not acknowledged; they stay queued", len(pending)-done, len(pending))
		}
	}
}

// runProjectors runs the timeline, the five views (each on its own durable consumer),
// the alerts outbox and the retention clock until ctx ends. Each of them runs under a
// lease on the store (docs/adr/0009-ha-projectors.md): processes sharing a store take
// turns, one applying and the others standing by to take over within seconds. A
// projector that fails is started again after a pause that grows with each failure; an
// error never ends the process.
func (s *session) runProjectors(ctx context.Context, log func(string, ...any)) error {
	// The alerts a view's commit raised go straight to the outbox goroutine, which
	// publishes them without reading them back from the store (the store's one
	// connection is shared by every projector); what does not fit in the channel, or
	// fails, is published from the outbox table within a second.
	raised := make(chan []projections.OutboxAlert, 64)
	wake := func(fresh []projections.OutboxAlert) {
		select {
		case raised <- fresh:
		default:
		}
	}
	views, err := s.views(false, wake)
	if err != nil {
		return err
	}
	ip, closeTree, err := s.integrityProjector(s.g)
	if err != nil {
		return err
	}
	defer closeTree()
	storeID, err := s.store.ID(ctx)
	if err != nil {
		return err
	}
	consumerCfg := func(name string, cfg streams.ConsumerConfig) streams.ConsumerConfig {
		cfg.Durable = "custody-" + storeID + "-" + name
		cfg.Logf = log
		cfg.Decode = s.decoder()
		return cfg
	}
	g, gctx := errgroup.WithContext(ctx)
	run := func(name string, fn func(ctx context.Context) error) {
		g.Go(func() error { return s.supervise(gctx, name, log, fn) })
	}
	run(projections.TimelineName, func(ctx context.Context) error {
		return streams.NewConsumer(s.js, projections.NewTimeline(s.store), consumerCfg(projections.TimelineName, streams.ConsumerConfig{MaxWait: 250 * time.Millisecond})).Run(ctx)
	})
	if ip != nil { // else another process keeps the tree
		g.Go(func() error { // the tree file is this data directory's: no lease on the store
			idle := func(ctx context.Context) {
				if err := ip.Tick(ctx); err != nil && ctx.Err() == nil {
					log("integrity", "err", err)
				}
			}
			return supervised(gctx, "integrity", log, func(ctx context.Context) error {
				return streams.NewConsumer(s.js, ip, streams.ConsumerConfig{MaxWait: time.Second, Batch: 5000, Raw: true, Idle: idle, Logf: log,
					// The tree is this data directory's own: an ordered consumer, never a
					// durable that another process's tree could share.
					Ephemeral: true}).Run(ctx)
			})
		})
	}
	for _, v := range views {
		var lastTick time.Time
		idle := func(ctx context.Context) { // caught up: let the wall clock make things overdue
			if time.Since(lastTick) < 30*time.Second {
				return
			}
			lastTick = time.Now()
			if err := v.Tick(ctx); err != nil && ctx.Err() == nil {
				log("clock", "view", v.Name(), "err", err)
			}
		}
		run(v.Name(), func(ctx context.Context) error {
			return streams.NewConsumer(s.js, v, consumerCfg(v.Name(), streams.ConsumerConfig{MaxWait: 250 * time.Millisecond, Batch: 500, Idle: idle})).Run(ctx)
		})
	}
	run("outbox", func(ctx context.Context) error { // woken by every commit that raised alerts, and every second
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if _, err := s.flushOutbox(ctx); err != nil && ctx.Err() == nil {
					log("alerts outbox", "err", err)
				}
			case fresh := <-raised:
				if _, err := s.publishAlerts(ctx, fresh); err != nil && ctx.Err() == nil {
					log("alerts outbox", "err", err)
				}
			}
		}
	})
	return g.Wait()
}

// leaseTTL is how long a projector's lease lasts unrenewed: the longest a standby waits
// for a holder that died.
const leaseTTL = 5 * time.Second

// supervise runs fn under the store's lease for name; see runProjectors.
func (s *session) supervise(ctx context.Context, name string, log func(string, ...any), fn func(context.Context) error) error {
	lease, err := s.store.NewLease(projections.LeaseConfig{Name: name, Holder: s.holderID, TTL: leaseTTL,
		// The embedded log's data directory is locked by this process: no other process
		// can be applying to the store beside it, so a lease left by a killed
		// predecessor is taken at once.
		TakeOver: s.embedded != nil,
		OnChange: func(held bool) {
			if held && s.embedded == nil { // with other processes sharing the store: who took over
				log("lease taken", "projector", name, "holder", s.holderID)
			}
		}})
	if err != nil {
		return err
	}
	return supervised(ctx, name, log, func(ctx context.Context) error { return lease.Run(ctx, fn) })
}

// supervised runs fn until ctx ends, again after each failure, after a pause that
// doubles from 250 ms to 30 s (reset by a run that lasted a minute).
func supervised(ctx context.Context, name string, log func(string, ...any), fn func(context.Context) error) error {
	pause := 250 * time.Millisecond
	for {
		started := time.Now()
		err := fn(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			pause = 250 * time.Millisecond
		}
		if err != nil {
			log("projector stopped; starting it again", "projector", name, "err", err, "after", pause)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}
