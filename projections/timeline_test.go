package projections_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
)

func stored(seq uint64, subject string) domain.Stored {
	id := fmt.Sprintf("0193f1a2-7c4e-7b3a-9d2e-%012d", seq)
	return domain.Stored{Seq: seq, Event: domain.Event{
		ID: id, Source: "s", Type: domain.ConsentCapturedType, Subject: subject,
		Time: time.Date(2026, 3, 8, 0, 0, int(seq), 0, time.UTC),
		Data: &domain.ConsentCaptured{Method: "ivr_verbal"},
	}}
}

func TestTimelineAppliesOnceWithCheckpoint(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *projections.Store) {
		ctx := context.Background()
		tl := projections.NewTimeline(s)
		if cp, _ := tl.Checkpoint(ctx); cp != 0 {
			t.Fatalf("fresh checkpoint %d", cp)
		}
		batch := []domain.Stored{stored(1, "a"), stored(2, "b"), stored(3, "a")}
		if err := tl.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
		// A redelivered, overlapping batch applies only what is new.
		if err := tl.Apply(ctx, []domain.Stored{stored(2, "b"), stored(3, "a"), stored(4, "a")}); err != nil {
			t.Fatal(err)
		}
		if cp, _ := tl.Checkpoint(ctx); cp != 4 {
			t.Fatalf("checkpoint %d, want 4", cp)
		}
		seqs, err := tl.Sequences(ctx, "a")
		if err != nil || fmt.Sprint(seqs) != "[1 3 4]" {
			t.Fatalf("sequences of a: %v %v", seqs, err)
		}
		// A gap is refused and changes nothing.
		if err := tl.Apply(ctx, []domain.Stored{stored(6, "a")}); !errors.Is(err, projections.ErrGap) {
			t.Fatalf("gap: %v, want ErrGap", err)
		}
		if cp, _ := tl.Checkpoint(ctx); cp != 4 {
			t.Fatalf("checkpoint after refused gap %d", cp)
		}
		known, err := tl.Known(ctx, []string{stored(2, "").Event.ID, stored(9, "").Event.ID})
		if err != nil || len(known) != 1 || known[stored(2, "").Event.ID] != 2 {
			t.Fatalf("known %v %v", known, err)
		}
	})
}

func TestStoreReopenKeepsData(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.mustOpen(t)
		if err := projections.NewTimeline(s).Apply(ctx, []domain.Stored{stored(1, "a")}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = b.mustOpen(t) // migrations must not run twice
		if cp, err := projections.NewTimeline(s).Checkpoint(ctx); err != nil || cp != 1 {
			t.Fatalf("checkpoint after reopen %d %v", cp, err)
		}
	})
}
