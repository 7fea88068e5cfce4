package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// TestPoisonEventParkedAndRedriven: one message among 1,000 that custody cannot decode
// (written straight to the events subject by another publisher, with a data field this
// version does not know) is parked by every projector within seconds while the other 999
// are applied; `deadletters list` shows it and the metric counts it; a redrive by a
// custody that still cannot read it leaves it parked; a redrive after a fix (a decoder
// that accepts the field, standing in for a newer custody) applies it once, and a
// second redrive applies nothing.
func TestPoisonEventParkedAndRedriven(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := &globals{data: filepath.Join(t.TempDir(), "data"), lateness: projections.DefaultLateness, redaction: domain.DefaultRedactionBuffer,
		stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	sess, err := g.open(ctx, connectOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close()

	const n = 1000
	poisonAt := 1 + rand.IntN(n-2) // an index in the middle: events before and after it
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	var poisonID string
	for i := range n {
		id := uuid.Must(uuid.NewV7()).String()
		e := domain.Event{ID: id, Source: "genesys-cloud/org-3f1c", Type: domain.ConsentCapturedType,
			Time: base.Add(time.Duration(i) * time.Second), Subject: fmt.Sprintf("gc-poison-%d", i/4),
			Data: &domain.ConsentCaptured{Method: "ivr_verbal"}}
		o, err := streams.NewOutgoing(e)
		if err != nil {
			t.Fatal(err)
		}
		if i == poisonAt {
			// Another publisher's event: a field the contract does not have.
			o.Data = bytes.Replace(o.Data, []byte(`"method":"ivr_verbal"`), []byte(`"method":"ivr_verbal","channelHint":"ivr"`), 1)
			if _, err := domain.Parse(o.Data); err == nil {
				t.Fatal("the poison message decodes")
			}
			poisonID = id
		}
		// Straight to the subject, as another publisher with write access would.
		msg := &nats.Msg{Subject: o.Subject, Data: o.Data, Header: nats.Header{"Nats-Msg-Id": []string{o.ID}}}
		if _, err := sess.js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	poisonSeq := uint64(poisonAt + 1)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- sess.runProjectors(runCtx, func(string, ...any) {}) }()
	names := append([]string{projections.TimelineName}, projections.ViewNames...)
	for {
		all := true
		for _, name := range names {
			cp, err := sess.store.Checkpoint(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			all = all && cp == n
		}
		if all {
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatal("the projectors did not get past the poison message")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("every projector at %d, the poison message at %d parked, %s after the start", n, poisonSeq, time.Since(start).Round(time.Millisecond))
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	dls, err := sess.store.DeadLetters(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != len(names) {
		t.Fatalf("%d dead letters, want one per projector (%d): %+v", len(dls), len(names), dls)
	}
	for _, d := range dls {
		if d.Seq != poisonSeq || !strings.Contains(d.Reason, "channelHint") || !strings.Contains(d.Reason, "unknown") {
			t.Fatalf("dead letter %+v", d)
		}
	}
	// The other 999 are in the views: one consent row per event but the parked one.
	consent := applied(t, sess, projections.ConsentView)
	if len(consent) != n-1 || consent[poisonID] {
		t.Fatalf("consent view holds %d events (poison %v), want %d without it", len(consent), consent[poisonID], n-1)
	}
	sess.close()

	// The command line: the list, and a redrive by a custody that still cannot read it
	// (nothing applied, exit 1).
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	if code := Run(ctx, []string{"deadletters", "list", "--format", "json", "--data", g.data}, nil, out, errOut); code != 0 {
		t.Fatalf("deadletters list: exit %d: %s", code, errOut)
	}
	var listed []projections.DeadLetter
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil || len(listed) != len(names) {
		t.Fatalf("deadletters list: %v %s", err, out)
	}
	if strings.Contains(out.String(), "ivr") {
		t.Fatal("the dead letter list shows the message's content")
	}
	out.Reset()
	if code := Run(ctx, []string{"deadletters", "list", "--data", g.data}, nil, out, errOut); code != 0 || !strings.Contains(out.String(), fmt.Sprint(poisonSeq)) {
		t.Fatalf("deadletters list (table): exit %d: %s %s", code, out, errOut)
	}
	errOut.Reset()
	if code := Run(ctx, []string{"deadletters", "redrive", "--data", g.data}, nil, out, errOut); code != 1 ||
		!strings.Contains(errOut.String(), "still parked") || !strings.Contains(errOut.String(), "redriven 0, still parked 6") {
		t.Fatalf("redrive without a fix: exit %d: %s", code, errOut)
	}

	// The fix: a decoder that accepts the field, as a newer custody would.
	g.decode = func(b []byte) (domain.Event, error) {
		return domain.Parse(bytes.Replace(b, []byte(`,"channelHint":"ivr"`), nil, 1))
	}
	sess, err = g.open(ctx, connectOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close()
	if n, _ := sess.store.UnresolvedDeadLetters(ctx); n != len(names) {
		t.Fatalf("after a failed redrive %d unresolved, want %d", n, len(names))
	}
	res, err := sess.redrive(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(names) {
		t.Fatalf("redrive after the fix tried %d, want %d", len(res), len(names))
	}
	for _, r := range res {
		if r.err != nil {
			t.Fatalf("%s: redrive after the fix: %v", r.projector, r.err)
		}
	}
	if res, err = sess.redrive(ctx, 0, ""); err != nil || len(res) != 0 {
		t.Fatalf("a second redrive did something: %v %v", res, err)
	}
	consent = applied(t, sess, projections.ConsentView)
	if len(consent) != n || !consent[poisonID] {
		t.Fatalf("after the redrive the consent view holds %d events (poison %v), want %d", len(consent), consent[poisonID], n)
	}
	if n, _ := sess.store.UnresolvedDeadLetters(ctx); n != 0 {
		t.Fatalf("after the redrive %d unresolved", n)
	}
	tl := projections.NewTimeline(sess.store)
	known, err := tl.Known(ctx, []string{poisonID})
	if err != nil || known[poisonID] != poisonSeq {
		t.Fatalf("timeline after the redrive: %v %v", known, err)
	}
}

// applied is the set of event ids a view keeps.
func applied(t *testing.T, sess *session, view string) map[string]bool {
	t.Helper()
	kept, err := sess.store.KeptEvents(context.Background(), view)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range kept {
		if out[k.Event.ID] {
			t.Fatalf("view %s holds %s twice", view, k.Event.ID)
		}
		out[k.Event.ID] = true
	}
	return out
}
