package projections_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
)

// TestConformanceDeadLetters: a message parked by every view and the timeline moves
// their checkpoints past it and holds nothing after it up; a redrive applies it once,
// after which every report is byte-identical to the reports of views that applied the
// traffic in order.
func TestConformanceDeadLetters(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	// The parked event: a PHI access of the traffic's last half day (not late whenever it
	// is applied), which the access-audit, consent, exposure and unauthorized views keep.
	var last time.Time
	for _, s := range tr {
		if s.Event.Time.After(last) {
			last = s.Event.Time
		}
	}
	p := -1
	for i := len(tr) - 50; i >= 0 && p < 0; i-- {
		if e := tr[i].Event; e.Type == domain.PHIAccessedType && e.Time.After(last.Add(-12*time.Hour)) {
			p = i
		}
	}
	if p < 0 {
		t.Fatal("no PHI access in the traffic's last half day")
	}
	parked := tr[p]
	cases := reportCases(tr, now())
	ctx := context.Background()
	ref, err := projections.OpenSQLite(ctx, filepath.Join(t.TempDir(), "ref.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	applyViews(t, ref, tr, now)
	want := reports(t, ref, cases)

	forEachStore(t, func(t *testing.T, s *projections.Store) {
		type parker interface {
			projector
			Park(ctx context.Context, seq uint64, subject, reason string) error
			Redrive(ctx context.Context, st domain.Stored) error
		}
		var projs []parker
		for _, name := range projections.ViewNames {
			projs = append(projs, newView(t, s, projections.ViewConfig{Name: name, Now: now}))
		}
		projs = append(projs, projections.NewTimeline(s))
		const reason = "stored message is not a valid event: data.extra: unknown field"
		for _, pr := range projs {
			if err := applyAll(ctx, pr, tr[:p], 97); err != nil {
				t.Fatal(err)
			}
			if err := pr.Park(ctx, parked.Seq, parked.Subject, reason); err != nil {
				t.Fatalf("%s: park: %v", pr.Name(), err)
			}
			if err := pr.Park(ctx, parked.Seq, parked.Subject, reason); err != nil { // again: nothing
				t.Fatalf("%s: park again: %v", pr.Name(), err)
			}
			if err := applyAll(ctx, pr, tr[p+1:], 97); err != nil {
				t.Fatalf("%s: the events after the parked one: %v", pr.Name(), err)
			}
			if v, ok := pr.(*projections.View); ok {
				if err := v.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := checkpoint(t, s, pr.Name()); got != uint64(len(tr)) {
				t.Fatalf("%s: checkpoint %d, want %d", pr.Name(), got, len(tr))
			}
		}
		// Parking a sequence out of order is a gap.
		if err := projs[0].Park(ctx, uint64(len(tr))+2, "custody.event.x", reason); !errors.Is(err, projections.ErrGap) {
			t.Fatalf("parking past the next sequence: %v, want ErrGap", err)
		}
		dls, err := s.DeadLetters(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range dls {
			if d.Seq != parked.Seq || d.Subject != parked.Subject || d.Reason != reason || d.ResolvedAt != nil {
				t.Fatalf("dead letter %+v", d)
			}
			names = append(names, d.Projector)
		}
		wantNames := append(slices.Clone(projections.ViewNames), projections.TimelineName)
		slices.Sort(wantNames)
		if !slices.Equal(names, wantNames) {
			t.Fatalf("dead letters of %v, want %v", names, wantNames)
		}
		if n, err := s.UnresolvedDeadLetters(ctx); err != nil || n != len(wantNames) {
			t.Fatalf("unresolved: %d %v", n, err)
		}
		// Without the parked event some report differs (else this test shows nothing).
		before := reports(t, s, cases)
		differs := 0
		for k := range want {
			if !bytes.Equal(before[k], want[k]) {
				differs++
			}
		}
		if differs == 0 {
			t.Fatal("no report depends on the parked event")
		}
		tl := projections.NewTimeline(s)
		if seqs, _ := tl.Sequences(ctx, parked.Event.Subject); slices.Contains(seqs, parked.Seq) {
			t.Fatal("the timeline indexed a parked event")
		}

		for _, pr := range projs {
			if err := pr.Redrive(ctx, parked); err != nil {
				t.Fatalf("%s: redrive: %v", pr.Name(), err)
			}
			if err := pr.Redrive(ctx, parked); !errors.Is(err, projections.ErrNotParked) {
				t.Fatalf("%s: a second redrive: %v, want ErrNotParked", pr.Name(), err)
			}
		}
		after := reports(t, s, cases)
		for k := range want {
			if !bytes.Equal(after[k], want[k]) {
				t.Errorf("report %s after the redrive differs from in-order application:\n got %s\nwant %s", k, clip(after[k]), clip(want[k]))
			}
		}
		if seqs, _ := tl.Sequences(ctx, parked.Event.Subject); !slices.Contains(seqs, parked.Seq) {
			t.Fatal("the redriven event is not in the timeline")
		}
		if n, err := s.UnresolvedDeadLetters(ctx); err != nil || n != 0 {
			t.Fatalf("unresolved after the redrive: %d %v", n, err)
		}
		all, err := s.DeadLetters(ctx, true)
		if err != nil || len(all) != len(wantNames) {
			t.Fatalf("all dead letters: %d %v", len(all), err)
		}
		for _, d := range all {
			if d.ResolvedAt == nil || d.Resolution == "" {
				t.Fatalf("not marked resolved: %+v", d)
			}
		}
	})
}

func clip(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}
