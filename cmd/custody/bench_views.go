package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// replayBench holds the timings of benchRebuild: the median of its rounds for raw
// replay and for the rebuild.
type replayBench struct {
	raw, rebuild, verify time.Duration
	events               int
}

// benchRebuild fills a fresh log with n simulated events, then times, on that stream,
// rounds of raw ordered replay and of a rebuild of all five views from it, taken in
// turn so that both see the same state of the machine, and a verification of the log
// against its signed checkpoints and reference tree.
func benchRebuild(ctx context.Context, dir string, n, rounds int) (replayBench, error) {
	var r replayBench
	tmp, err := os.MkdirTemp(dir, "custody-bench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(tmp)
	g := &globals{data: filepath.Join(tmp, "data")}
	sess, err := g.open(ctx, connectOpts{})
	if err != nil {
		return r, err
	}
	defer sess.close()
	lines, err := benchEvents(n)
	if err != nil {
		return r, err
	}
	if err := custodyIngest(ctx, sess.nc, lines, 1000); err != nil {
		return r, err
	}
	log, err := streams.OpenLog(ctx, sess.js)
	if err != nil {
		return r, err
	}
	var raws, rebuilds []time.Duration
	for range max(rounds, 1) {
		events := 0
		start := time.Now()
		err = log.ReplayRaw(ctx, streams.ReplayFrom{}, func(uint64, string, time.Time, []byte) error { events++; return nil })
		raws = append(raws, time.Since(start))
		if err != nil {
			return r, err
		}
		r.events = events
		res, err := sess.rebuild(ctx, projections.ViewNames, nil)
		if err != nil {
			return r, err
		}
		if res.events != uint64(events) {
			return r, fmt.Errorf("bench: the rebuild read %d events, raw replay %d", res.events, events)
		}
		rebuilds = append(rebuilds, res.took)
	}
	slices.Sort(raws)
	slices.Sort(rebuilds)
	r.raw, r.rebuild = raws[len(raws)/2], rebuilds[len(rebuilds)/2]
	if err := sess.catchUpIntegrity(ctx, g, 0); err != nil {
		return r, err
	}
	keys, err := g.verifiers()
	if err != nil {
		return r, err
	}
	start := time.Now()
	rep, err := sess.verify(ctx, verifyRequest{keys: keys, dir: g.checkpointDir(), tree: g.treePath()}, nil)
	r.verify = time.Since(start)
	if err != nil {
		return r, err
	}
	if !rep.OK() {
		return r, fmt.Errorf("bench: the fresh log does not verify:\n%s", rep.String())
	}
	return r, nil
}

// benchLatency runs every projector live and publishes simulated traffic at rate
// events/s; one event in fifty is an e-mail started without TLS, which the access-audit
// view turns into an insecure_email_transport alert. It returns the publish-to-alert
// latencies, measured from the publish call to the alert's arrival on the alerts stream.
// With raw, no projector runs and the latencies are from the publish call to the
// trigger event's own delivery from the events stream: what JetStream alone takes for
// the same traffic on the same machine.
func benchLatency(ctx context.Context, dir string, rate int, d time.Duration, raw bool) ([]time.Duration, error) {
	tmp, err := os.MkdirTemp(dir, "custody-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	g := &globals{data: filepath.Join(tmp, "data")}
	sess, err := g.open(ctx, connectOpts{})
	if err != nil {
		return nil, err
	}
	defer sess.close()
	n := int(float64(rate) * d.Seconds())
	background, err := benchEvents(n)
	if err != nil {
		return nil, err
	}
	bg := prepared(background)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := streams.AlertsStream
	if raw {
		watch = streams.EventsStream
	} else {
		go sess.runProjectors(rctx, func(string, ...any) {})
	}
	as, err := sess.js.Stream(ctx, watch)
	if err != nil {
		return nil, err
	}
	cons, err := as.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, err
	}
	sentAt := map[string]time.Time{}
	type arrival struct {
		id string
		at time.Time
	}
	got := make(chan arrival, 10000)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		at := time.Now()
		e, err := domain.Parse(m.Data())
		if err != nil {
			return
		}
		switch d := e.Data.(type) {
		case *domain.AlertRaised:
			if d.Rule == domain.RuleInsecureEmailTransport {
				got <- arrival{d.InteractionIDs[0], at}
			}
		case *domain.InteractionStarted:
			if strings.HasPrefix(e.Subject, "lat-") {
				got <- arrival{e.Subject, at}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	defer cc.Stop()

	js, err := jetstream.New(sess.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	triggers := 0
	for i := range bg {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		m := bg[i]
		if i%50 == 25 {
			id := "lat-" + uuid.NewString()
			e := domain.Event{ID: uuid.Must(uuid.NewV7()).String(), Source: "bench/latency", Type: domain.InteractionStartedType,
				Time: time.Now().UTC(), Subject: id, Data: &domain.InteractionStarted{Channel: "email", Direction: "inbound",
					Email: &domain.Email{To: "claims@payer.example", FromMasked: "m***@example.org", TLS: "none"}}}
			o, err := streams.NewOutgoing(e)
			if err != nil {
				return nil, err
			}
			m = benchMsg{id: o.ID, subject: o.Subject, data: o.Data}
			sentAt[id] = time.Now()
			triggers++
		}
		if _, err := js.PublishMsgAsync(natsMsg(m), jetstream.WithStallWait(time.Minute)); err != nil {
			return nil, err
		}
	}
	var lat []time.Duration
	timeout := time.After(30 * time.Second)
	for len(lat) < triggers {
		select {
		case g := <-got:
			if t, ok := sentAt[g.id]; ok {
				lat = append(lat, g.at.Sub(t))
			}
		case <-timeout:
			return lat, fmt.Errorf("only %d of %d alerts arrived", len(lat), triggers)
		}
	}
	slices.Sort(lat)
	return lat, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
