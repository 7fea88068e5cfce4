package siem_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/siem"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// A full delivery run through all four sinks, with a retry, a dead letter, a skipped
// event and an undelivered one: the planted identifiers reach the receivers but appear
// in no log line (at every level, Watermill's trace included) and no metric.
func TestNoEPHIInLogsOrMetrics(t *testing.T) {
	const (
		agent       = "agent-PLANTED-7731"
		interaction = "int-PLANTED-4242"
		recording   = "rec-PLANTED-0009"
		remoteIP    = "203.0.113.77"
		hecToken    = "hec-token-PLANTED-5150"
	)
	planted := []string{agent, interaction, recording, remoteIP, hecToken, string(signingKey)}

	p := newPKI(t, "ephi")
	b := newBroker(t)
	webhook := newReceiver(t, p, p.pool, signingKey, 503, 200, 200) // the alert is retried once
	hec := newReceiver(t, p, p.pool, nil, 400)                      // the alert is dead-lettered
	ocsf := newReceiver(t, p, p.pool, nil)
	ocsf.setFinal(503) // the alert stays undelivered
	sys := newSyslogReceiver(t, p, p.pool)

	wh, err := siem.NewWebhook(webhookConfig(t, webhook.srv.URL, p.clientTLS()))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := siem.NewHEC(siem.HECConfig{HTTPConfig: siem.HTTPConfig{Name: "splunk", URL: hec.srv.URL, TLS: p.clientTLS()},
		Token: writeSecret(t, hecToken)})
	if err != nil {
		t.Fatal(err)
	}
	os, err := siem.NewOCSF(siem.HTTPConfig{Name: "lake", URL: ocsf.srv.URL, TLS: p.clientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	cs := syslogSink(t, sys.ln.Addr().String(), p.clientTLS())
	routes := []siem.Route{{Sink: wh, Events: true, Backfill: true}, {Sink: hs}, {Sink: os}, {Sink: cs}}
	defer siem.CloseRoutes(routes)

	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-8)}))
	reg := prometheus.NewRegistry()
	r, err := siem.New(siem.Config{JetStream: b.js, Routes: routes, Logger: logger, Registerer: reg,
		RetryInterval: 10 * time.Millisecond, RedeliveryDelay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	alert := domain.Event{ID: "0193f1a2-7c4e-8b3a-9d2e-5f6a7b8c9f01", Source: "custody/unauthorized-24h", Type: domain.AlertRaisedType,
		Time: raisedAt, Subject: agent, DataContentType: domain.ContentType,
		Data: &domain.AlertRaised{Rule: domain.RuleUnauthorizedAccessThreshold, AgentID: agent,
			InteractionIDs: []string{interaction}, RecordingID: recording, TriggeredAt: triggeredAt, Count: 4}}
	access := domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9f02", Source: "genesys-cloud/org-3f1c", Type: domain.PHIAccessedType,
		Time: triggeredAt, Subject: interaction, Data: &domain.PHIAccessed{AgentID: agent, Action: "recording_accessed",
			RecordingID: recording, RemoteIP: remoteIP}}
	b.publish(t, alert)
	b.publish(t, access)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	eventually(t, 15*time.Second, "every outcome", func() bool {
		return counter(t, reg, "custody_siem_delivered_total", "grc") == 2 &&
			counter(t, reg, "custody_siem_deadlettered_total", "splunk") == 1 &&
			counter(t, reg, "custody_siem_undelivered_total", "lake") == 1 &&
			counter(t, reg, "custody_siem_delivered_total", "arcsight") == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Positive controls: the identifiers did reach the receivers, and the logs do say
	// what happened, by event id and status.
	if got := contains(webhook.snapshot()[0].body, agent); got == "" {
		t.Fatal("the webhook body does not carry the agent id: the test proves nothing")
	}
	if f := sys.next(t); !strings.Contains(f, interaction) {
		t.Fatal("the syslog message does not carry the interaction id")
	}
	out := logs.Bytes()
	for _, want := range []string{alert.ID, access.ID, `"status":503`, "dead-lettered", "undelivered after retries", `"sink":"arcsight"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("logs do not mention %q", want)
		}
	}

	var metrics bytes.Buffer
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	enc := expfmt.NewEncoder(&metrics, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Contains(metrics.Bytes(), []byte(`custody_siem_delivered_total{sink="grc"} 2`)) {
		t.Errorf("metrics:\n%s", metrics.Bytes())
	}
	if leak := contains(out, planted...); leak != "" {
		t.Errorf("logs contain %q:\n%s", leak, out)
	}
	if leak := contains(metrics.Bytes(), planted...); leak != "" {
		t.Errorf("metrics contain %q:\n%s", leak, metrics.Bytes())
	}
}
