package siem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/siem"
)

// routerFixture is a broker, a receiver requiring client certificates and a webhook
// sink named "grc" pointing at it.
type routerFixture struct {
	b   *broker
	rcv *receiver
	reg *prometheus.Registry
	cfg siem.Config
}

func newRouterFixture(t *testing.T, script ...int) *routerFixture {
	t.Helper()
	p := newPKI(t, "router")
	f := &routerFixture{b: newBroker(t), rcv: newReceiver(t, p, p.pool, signingKey, script...), reg: prometheus.NewRegistry()}
	s, err := siem.NewWebhook(webhookConfig(t, f.rcv.srv.URL, p.clientTLS()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.cfg = siem.Config{JetStream: f.b.js, Routes: []siem.Route{{Sink: s}}, Registerer: f.reg,
		RetryInterval: 20 * time.Millisecond, RedeliveryDelay: 1500 * time.Millisecond, Logger: discardLogger()}
	return f
}

func (f *routerFixture) metric(t *testing.T, name string) float64 {
	return counter(t, f.reg, "custody_siem_"+name, "grc")
}

func sameBodyAndID(t *testing.T, attempts []attempt, id string) {
	t.Helper()
	for i, a := range attempts {
		if a.id != id || !bytes.Equal(a.body, attempts[0].body) || a.sigErr != nil {
			t.Fatalf("attempt %d: id %q (want %q), same body %v, signature %v", i+1, a.id, id, bytes.Equal(a.body, attempts[0].body), a.sigErr)
		}
	}
}

// Three 503s then a 200: exactly four attempts, one second apart (the production
// interval), same body and id, and the alert is acknowledged.
func TestRouterRetriesThreeTimesOneSecondApart(t *testing.T) {
	f := newRouterFixture(t, 503, 503, 503, 200)
	f.cfg.RetryInterval = 0 // default: 1 s
	runRouter(t, f.cfg)
	e := alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e01", "agent-1", "i-1", "i-2", "i-3", "i-4")
	f.b.publish(t, e)

	attempts := f.rcv.waitAttempts(4, 20*time.Second)
	eventually(t, 10*time.Second, "delivered metric", func() bool { return f.metric(t, "delivered_total") == 1 })
	time.Sleep(300 * time.Millisecond)
	attempts = f.rcv.snapshot()
	if len(attempts) != 4 {
		t.Fatalf("%d attempts, want exactly 4", len(attempts))
	}
	sameBodyAndID(t, attempts, e.ID)
	for i := 1; i < 4; i++ {
		if gap := attempts[i].at.Sub(attempts[i-1].at); gap < 950*time.Millisecond || gap > 2500*time.Millisecond {
			t.Errorf("gap before attempt %d is %s, want about 1s", i+1, gap)
		}
	}
	if got := []int{attempts[0].status, attempts[3].status}; got[0] != 503 || got[1] != 200 {
		t.Fatalf("statuses %v", got)
	}
	if r := f.metric(t, "retried_total"); r != 3 {
		t.Errorf("retried_total = %v, want 3", r)
	}
	if u := f.metric(t, "undelivered_total"); u != 0 {
		t.Errorf("undelivered_total = %v, want 0", u)
	}
	eventually(t, 5*time.Second, "acknowledgement", func() bool {
		ci := f.b.consumerInfo(t, siem.AlertsStream, "siem-grc")
		return ci.AckFloor.Stream == 1 && ci.NumAckPending == 0
	})
}

// Four 503s: the alert is not acknowledged, stays in the stream, shows in the metrics,
// and is delivered when the stream redelivers it after the receiver recovered.
func TestRouterLeavesUndeliveredAlertInStream(t *testing.T) {
	f := newRouterFixture(t)
	f.rcv.setFinal(http.StatusServiceUnavailable)
	runRouter(t, f.cfg)
	e := alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e02", "agent-2", "i-5")
	f.b.publish(t, e)

	f.rcv.waitAttempts(4, 10*time.Second)
	eventually(t, 5*time.Second, "undelivered metric", func() bool { return f.metric(t, "undelivered_total") == 1 })
	if g := f.metric(t, "undelivered"); g != 1 {
		t.Errorf("undelivered gauge = %v, want 1", g)
	}
	ci := f.b.consumerInfo(t, siem.AlertsStream, "siem-grc")
	if ci.AckFloor.Stream != 0 || ci.NumAckPending != 1 {
		t.Fatalf("after four failures: ack floor %d, ack pending %d; want 0 and 1 (unacknowledged)", ci.AckFloor.Stream, ci.NumAckPending)
	}
	if d := f.metric(t, "delivered_total") + f.metric(t, "deadlettered_total"); d != 0 {
		t.Fatalf("delivered+deadlettered = %v, want 0", d)
	}

	f.rcv.setFinal(http.StatusOK) // the receiver recovers
	eventually(t, 10*time.Second, "redelivery", func() bool { return f.metric(t, "delivered_total") == 1 })
	attempts := f.rcv.snapshot()
	if len(attempts) < 5 || attempts[len(attempts)-1].status != 200 {
		t.Fatalf("%d attempts, last %d; want at least 5 ending with 200", len(attempts), attempts[len(attempts)-1].status)
	}
	sameBodyAndID(t, attempts, e.ID)
	if events, dups := f.rcv.storedCount(); events != 1 || dups != 0 {
		t.Fatalf("receiver stored %d events (%d duplicates), want 1", events, dups)
	}
	eventually(t, 5*time.Second, "acknowledgement", func() bool {
		ci := f.b.consumerInfo(t, siem.AlertsStream, "siem-grc")
		return ci.AckFloor.Stream == 1 && ci.NumAckPending == 0
	})
	if g := f.metric(t, "undelivered"); g != 0 {
		t.Errorf("undelivered gauge = %v after delivery, want 0", g)
	}
}

// A 400 is not retried: one attempt, one dead-letter message with the reason, and the
// alert is acknowledged.
func TestRouterDeadLettersPermanentRefusal(t *testing.T) {
	f := newRouterFixture(t, 400)
	runRouter(t, f.cfg)
	e := alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e03", "agent-3", "i-6")
	f.b.publish(t, e)

	f.rcv.waitAttempts(1, 10*time.Second)
	eventually(t, 5*time.Second, "dead-letter metric", func() bool { return f.metric(t, "deadlettered_total") == 1 })
	time.Sleep(200 * time.Millisecond) // ten retry intervals: a retry would have happened
	if n := len(f.rcv.snapshot()); n != 1 {
		t.Fatalf("%d attempts, want exactly 1", n)
	}
	if r := f.metric(t, "retried_total"); r != 0 {
		t.Errorf("retried_total = %v, want 0", r)
	}
	dl := f.b.deadLetters(t, siem.DefaultDeadLetterPrefix+"grc")
	if len(dl) != 1 {
		t.Fatalf("%d dead-letter messages, want 1", len(dl))
	}
	h := dl[0].Headers()
	want, _ := e.MarshalJSON()
	if h.Get(siem.HeaderDeadLetterReason) != "http 400 Bad Request" || h.Get(siem.HeaderEventID) != e.ID ||
		h.Get(siem.HeaderDeadLetterSink) != "grc" || h.Get(siem.HeaderOriginalStream) != siem.AlertsStream ||
		h.Get(siem.HeaderOriginalSubject) != "custody.alert.raised" || h.Get(siem.HeaderOriginalSequence) != "1" ||
		!bytes.Equal(dl[0].Data(), want) {
		t.Fatalf("dead letter headers %v, body %s", h, dl[0].Data())
	}
	eventually(t, 5*time.Second, "acknowledgement", func() bool {
		return f.b.consumerInfo(t, siem.AlertsStream, "siem-grc").AckFloor.Stream == 1
	})
}

// The receiver stored the alert but its answer was lost (503): the stream redelivers
// it, the receiver recognizes the event id and keeps one copy.
func TestReceiverDedupesRedeliveries(t *testing.T) {
	f := newRouterFixture(t)
	f.rcv.storeThenFail = true
	f.rcv.script = []int{503}
	f.cfg.MaxRetries = -1 // no retry: the second attempt is a redelivery by the stream
	f.cfg.RedeliveryDelay = 200 * time.Millisecond
	runRouter(t, f.cfg)
	e := alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e04", "agent-4", "i-7")
	f.b.publish(t, e)

	eventually(t, 10*time.Second, "delivery", func() bool { return f.metric(t, "delivered_total") == 1 })
	attempts := f.rcv.snapshot()
	if len(attempts) != 2 {
		t.Fatalf("%d attempts, want 2 (one delivery, one redelivery)", len(attempts))
	}
	sameBodyAndID(t, attempts, e.ID)
	if events, dups := f.rcv.storedCount(); events != 1 || dups != 1 {
		t.Fatalf("receiver stored %d events with %d duplicates, want 1 and 1", events, dups)
	}
	if u := f.metric(t, "undelivered_total"); u != 1 {
		t.Errorf("undelivered_total = %v, want 1", u)
	}
}

// With Events, every compliance event is forwarded too; the OCSF sink maps accesses
// and skips (acknowledges) what it has no class for.
func TestRouterForwardsComplianceEvents(t *testing.T) {
	p := newPKI(t, "events")
	b := newBroker(t)
	rcv := newReceiver(t, p, p.pool, nil)
	reg := prometheus.NewRegistry()
	s, err := siem.NewOCSF(siem.HTTPConfig{Name: "lake", URL: rcv.srv.URL, TLS: p.clientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	access := domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e05", Source: "genesys-cloud/org-3f1c", Type: domain.PHIAccessedType,
		Time: triggeredAt, Subject: "i-8", Data: &domain.PHIAccessed{AgentID: "agent-5", Action: "transcript_viewed", RecordingID: "r-1"}}
	consent := domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e06", Source: "genesys-cloud/org-3f1c", Type: domain.ConsentCapturedType,
		Time: triggeredAt, Subject: "i-8", Data: &domain.ConsentCaptured{Method: "ivr_verbal"}}
	b.publish(t, access) // before the router starts: Backfill reads it
	runRouter(t, siem.Config{JetStream: b.js, Routes: []siem.Route{{Sink: s, Events: true, Backfill: true}}, Registerer: reg,
		RetryInterval: 20 * time.Millisecond, Logger: discardLogger()})
	b.publish(t, consent)
	b.publish(t, alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e07", "agent-5", "i-8"))

	eventually(t, 10*time.Second, "deliveries", func() bool {
		return counter(t, reg, "custody_siem_delivered_total", "lake") == 2 && counter(t, reg, "custody_siem_skipped_total", "lake") == 1
	})
	classes := map[string]bool{}
	for _, a := range rcv.snapshot() {
		switch {
		case bytes.Contains(a.body, []byte(`"class_uid":2004`)):
			classes["2004"] = true
		case bytes.Contains(a.body, []byte(`"class_uid":6003`)):
			classes["6003"] = true
		}
	}
	if !classes["2004"] || !classes["6003"] || len(rcv.snapshot()) != 2 {
		t.Fatalf("classes %v in %d requests", classes, len(rcv.snapshot()))
	}
	eventually(t, 5*time.Second, "acknowledgements", func() bool {
		return b.consumerInfo(t, siem.EventsStream, "siem-lake-events").AckFloor.Stream == 2
	})
}

// With Checkpoints, a sink also receives every signed checkpoint of the integrity
// stream, from its beginning: a checkpoint.signed event, and a bare signed note as the
// integrity projector stores it, which arrives as its checkpoint.signed event. A sink
// without the option receives the alerts only and has no checkpoint consumer.
func TestRouterForwardsCheckpoints(t *testing.T) {
	p := newPKI(t, "checkpoints")
	b := newBroker(t)
	reg := prometheus.NewRegistry()
	withCP := newReceiver(t, p, p.pool, signingKey)
	without := newReceiver(t, p, p.pool, signingKey)
	grc, err := siem.NewWebhook(webhookConfig(t, withCP.srv.URL, p.clientTLS()))
	if err != nil {
		t.Fatal(err)
	}
	defer grc.Close()
	hc := webhookConfig(t, without.srv.URL, p.clientTLS())
	hc.Name = "soc"
	soc, err := siem.NewWebhook(hc)
	if err != nil {
		t.Fatal(err)
	}
	defer soc.Close()

	signed := checkpointEvent(testNote)
	b.publish(t, signed)           // before the router starts: checkpoints are read from the beginning
	b.publishNote(t, emptyNote, 0) // a bare note
	runRouter(t, siem.Config{JetStream: b.js, Routes: []siem.Route{{Sink: grc, Checkpoints: true}, {Sink: soc}}, Registerer: reg,
		RetryInterval: 20 * time.Millisecond, Logger: discardLogger()})
	alert := alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e08", "agent-6", "i-9")
	b.publish(t, alert)

	eventually(t, 10*time.Second, "deliveries", func() bool {
		return counter(t, reg, "custody_siem_delivered_total", "grc") == 3 && counter(t, reg, "custody_siem_delivered_total", "soc") == 1
	})
	got := map[string]map[string]any{}
	for _, a := range withCP.snapshot() {
		var body map[string]any
		if err := json.Unmarshal(a.body, &body); err != nil || a.sigErr != nil || a.id != body["eventId"] {
			t.Fatalf("request %s: %v, signature %v, Idempotency-Key %q", a.body, err, a.sigErr, a.id)
		}
		got[a.id] = body
	}
	emptyID := domain.CheckpointEventID("custody/CUSTODY_EVENTS", 0, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	if len(got) != 3 || got[alert.ID] == nil || got[signed.ID] == nil || got[emptyID] == nil {
		t.Fatalf("grc received %v; want the alert, %s and %s", keys(got), signed.ID, emptyID)
	}
	for id, want := range map[string]struct {
		size float64
		note string
	}{signed.ID: {25960, testNote}, emptyID: {0, emptyNote}} {
		c := got[id]
		if c["type"] != "checkpoint.signed" || c["treeSize"] != want.size || c["note"] != want.note || c["source"] != domain.CheckpointSource {
			t.Errorf("checkpoint %s delivered as %v", id, c)
		}
	}
	if a := without.snapshot(); len(a) != 1 || a[0].id != alert.ID {
		t.Fatalf("soc received %d requests, want the alert only", len(a))
	}
	if _, err := b.js.Consumer(context.Background(), siem.IntegrityStream, "siem-soc-checkpoints"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer siem-soc-checkpoints: %v, want not found", err)
	}
	eventually(t, 5*time.Second, "acknowledgements", func() bool {
		ci := b.consumerInfo(t, siem.IntegrityStream, "siem-grc-checkpoints")
		return ci.AckFloor.Stream == 2 && ci.NumAckPending == 0
	})
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Checkpoints have the alerts' delivery semantics: a retryable failure is retried with
// the same body and id; a message that is no checkpoint is dead-lettered with its
// origin and acknowledged.
func TestRouterCheckpointRetryAndDeadLetter(t *testing.T) {
	f := newRouterFixture(t, 503, 200)
	f.cfg.Routes[0].Checkpoints = true
	runRouter(t, f.cfg)
	e := checkpointEvent(testNote)
	f.b.publish(t, e)
	f.b.publishNote(t, "not a signed checkpoint\n", 1)

	eventually(t, 10*time.Second, "delivery and dead letter", func() bool {
		return f.metric(t, "delivered_total") == 1 && f.metric(t, "deadlettered_total") == 1
	})
	attempts := f.rcv.snapshot()
	if len(attempts) != 2 || attempts[0].status != 503 || attempts[1].status != 200 {
		t.Fatalf("%d attempts, want 503 then 200", len(attempts))
	}
	sameBodyAndID(t, attempts, e.ID)
	if r := f.metric(t, "retried_total"); r != 1 {
		t.Errorf("retried_total = %v, want 1", r)
	}
	dl := f.b.deadLetters(t, siem.DefaultDeadLetterPrefix+"grc")
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	h := dl[0].Headers()
	if h.Get(siem.HeaderDeadLetterReason) != "the stored event does not parse" || h.Get(siem.HeaderOriginalStream) != siem.IntegrityStream ||
		h.Get(siem.HeaderOriginalSubject) != siem.CheckpointSubject || h.Get(siem.HeaderOriginalSequence) != "2" ||
		h.Get(siem.HeaderEventID) != "checkpoint-1" || string(dl[0].Data()) != "not a signed checkpoint\n" {
		t.Fatalf("dead letter headers %v, body %q", h, dl[0].Data())
	}
	eventually(t, 5*time.Second, "acknowledgement", func() bool {
		return f.b.consumerInfo(t, siem.IntegrityStream, "siem-grc-checkpoints").AckFloor.Stream == 2
	})
}

// Like the reports stream, the integrity stream is created by custody at start; a
// router asked for checkpoints on a log without it does not start, and says why. A
// router without the option does not need it.
func TestRouterCheckpointsNeedIntegrityStream(t *testing.T) {
	f := newRouterFixture(t)
	if err := f.b.js.DeleteStream(context.Background(), siem.IntegrityStream); err != nil {
		t.Fatal(err)
	}
	cfg := f.cfg
	cfg.Routes = []siem.Route{{Sink: f.cfg.Routes[0].Sink, Checkpoints: true}}
	cfg.Registerer = prometheus.NewRegistry()
	r, err := siem.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = r.Run(ctx)
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.Contains(err.Error(), siem.IntegrityStream) {
		t.Fatalf("Run = %v, want ErrStreamNotFound naming %s", err, siem.IntegrityStream)
	}

	runRouter(t, f.cfg)
	f.b.publish(t, alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9e09", "agent-7", "i-10"))
	eventually(t, 10*time.Second, "delivery without the integrity stream", func() bool { return f.metric(t, "delivered_total") == 1 })
}
