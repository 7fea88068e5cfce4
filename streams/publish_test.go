package streams_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/streams"
)

func TestPublishTwiceStoresOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch int
	}{{"one by one", 0}, {"atomic batches", 1000}} {
		t.Run(tc.name, func(t *testing.T) {
			e, nc, js := startLog(t, t.TempDir())
			defer stopLog(e, nc)
			pub, err := streams.NewPublisher(nc, streams.PublisherConfig{AtomicBatch: tc.batch})
			if err != nil {
				t.Fatal(err)
			}
			msgs := consentEvents(t, 10000)
			ctx := context.Background()
			first := pub.PublishAll(ctx, msgs)
			if c := count(first); c[streams.Stored] != 10000 {
				t.Fatalf("first pass: %v, want 10000 stored", c)
			}
			seqs := map[uint64]bool{}
			for _, r := range first {
				if r.Seq == 0 || seqs[r.Seq] {
					t.Fatalf("sequence %d zero or repeated", r.Seq)
				}
				seqs[r.Seq] = true
			}
			second := pub.PublishAll(ctx, msgs)
			if c := count(second); c[streams.Duplicate] != 10000 {
				t.Fatalf("second pass: %v, want 10000 duplicates", c)
			}
			for i, r := range second {
				if r.Seq != first[i].Seq {
					t.Fatalf("duplicate %d names sequence %d, stored at %d", i, r.Seq, first[i].Seq)
				}
			}
			if n := lastSeq(t, js); n != 10000 {
				t.Fatalf("log holds %d messages, want 10000", n)
			}
		})
	}
}

func TestAtomicBatchWithKnownIDFallsBack(t *testing.T) {
	e, nc, js := startLog(t, t.TempDir())
	defer stopLog(e, nc)
	ctx := context.Background()
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{AtomicBatch: 100})
	if err != nil {
		t.Fatal(err)
	}
	msgs := consentEvents(t, 250)
	// Store every tenth event first: each later batch then holds ids the log has.
	var some []streams.Outgoing
	for i := 0; i < len(msgs); i += 10 {
		some = append(some, msgs[i])
	}
	if c := count(pub.PublishAll(ctx, some)); c[streams.Stored] != len(some) {
		t.Fatalf("seed: %v", c)
	}
	res := pub.PublishAll(ctx, msgs)
	c := count(res)
	if c[streams.Stored] != 225 || c[streams.Duplicate] != 25 {
		t.Fatalf("got %v, want 225 stored and 25 duplicates", c)
	}
	for i, r := range res {
		if (i%10 == 0) != (r.Status == streams.Duplicate) {
			t.Fatalf("event %d: %v", i, r.Status)
		}
	}
	if n := lastSeq(t, js); n != 250 {
		t.Fatalf("log holds %d, want 250", n)
	}
}

func TestRejectedByLog(t *testing.T) {
	e, nc, _ := startLog(t, t.TempDir())
	defer stopLog(e, nc)
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	msgs := consentEvents(t, 1)
	msgs[0].Data = make([]byte, 2<<20) // above the stream's 1 MiB limit
	r := pub.Publish(context.Background(), msgs[0])
	if r.Status != streams.Rejected || r.Err == nil {
		t.Fatalf("got %v %v, want rejected with a reason", r.Status, r.Err)
	}
}

func TestLogRefusesDeleteAndPurge(t *testing.T) {
	e, nc, js := startLog(t, t.TempDir())
	defer stopLog(e, nc)
	ctx := context.Background()
	pub, _ := streams.NewPublisher(nc, streams.PublisherConfig{})
	pub.PublishAll(ctx, consentEvents(t, 10))
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, 3); err == nil {
		t.Fatal("DeleteMsg succeeded on the compliance stream")
	}
	if err := s.SecureDeleteMsg(ctx, 4); err == nil {
		t.Fatal("SecureDeleteMsg succeeded on the compliance stream")
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("Purge succeeded on the compliance stream")
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(5)); err == nil {
		t.Fatal("partial Purge succeeded on the compliance stream")
	}
	if n := lastSeq(t, js); n != 10 {
		t.Fatalf("log holds %d, want 10", n)
	}
	// Relaxing the settings is refused by custody's own verification.
	cfg := s.CachedInfo().Config
	cfg.DenyDelete = false
	if _, err := js.UpdateStream(ctx, cfg); err == nil {
		// The server may allow it; then custody must refuse to run on it.
		if err := streams.EnsureStreams(ctx, js, streams.LogConfig{}); !errors.Is(err, streams.ErrStreamSettings) {
			t.Fatalf("EnsureStreams on a relaxed stream: %v, want ErrStreamSettings", err)
		}
	}
}

func TestStreamSettings(t *testing.T) {
	e, nc, js := startLog(t, t.TempDir())
	defer stopLog(e, nc)
	s, err := js.Stream(context.Background(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if !c.DenyDelete || !c.DenyPurge || c.Discard != jetstream.DiscardNew || c.Storage != jetstream.FileStorage ||
		c.MaxAge != streams.DefaultMaxAge || c.Duplicates < streams.DefaultDuplicates || !c.AllowAtomicPublish {
		t.Fatalf("stream config %+v", c)
	}
	if len(c.Subjects) != 1 || c.Subjects[0] != "custody.event.>" {
		t.Fatalf("subjects %v", c.Subjects)
	}
	if !e.Server().JetStreamConfig().SyncAlways {
		t.Fatal("embedded server does not sync every write")
	}
}
