package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/streams"
)

// startLog starts an embedded server on a fresh directory with custody's streams.
func startLog(t testing.TB, dir string) (*streams.Embedded, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	e, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := e.Connect()
	if err != nil {
		e.Shutdown()
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.EnsureStreams(context.Background(), js, streams.LogConfig{}); err != nil {
		t.Fatal(err)
	}
	return e, nc, js
}

func stopLog(e *streams.Embedded, nc *nats.Conn) {
	nc.Close()
	e.Shutdown()
}

var base = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// consentEvents returns n valid consent.captured events on n/5 interactions.
func consentEvents(t testing.TB, n int) []streams.Outgoing {
	t.Helper()
	out := make([]streams.Outgoing, n)
	for i := range out {
		e := domain.Event{
			ID:      uuid.Must(uuid.NewV7()).String(),
			Source:  "genesys-cloud/org-3f1c",
			Type:    domain.ConsentCapturedType,
			Time:    base.Add(time.Duration(i) * time.Second),
			Subject: fmt.Sprintf("gc-interaction-%d", i/5),
			Data:    &domain.ConsentCaptured{Method: "ivr_verbal"},
		}
		o, err := streams.NewOutgoing(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = o
	}
	return out
}

func count(res []streams.Result) map[streams.Status]int {
	m := map[streams.Status]int{}
	for _, r := range res {
		m[r.Status]++
	}
	return m
}

func lastSeq(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
