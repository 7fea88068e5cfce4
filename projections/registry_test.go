package projections_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
)

// registry reads the registry of event ids.
func registry(t *testing.T, s *projections.Store) map[string]int64 {
	t.Helper()
	r, err := s.DB().Query(`SELECT event_id, seq FROM event_ids`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]int64{}
	for r.Next() {
		var id string
		var seq int64
		if err := r.Scan(&id, &seq); err != nil {
			t.Fatal(err)
		}
		out[id] = seq
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// firstSeqs is the registry the log calls for: each id at the sequence that first
// stored it.
func firstSeqs(log []domain.Stored) map[string]int64 {
	out := map[string]int64{}
	for _, st := range log {
		if _, ok := out[st.Event.ID]; !ok {
			out[st.Event.ID] = int64(st.Seq)
		}
	}
	return out
}

// A message parked while a duplicate of it arrives later: the duplicate is applied
// first (the parked id is not registered yet); the redrive makes the parked event the
// one that counts, as the log's order says, and drops the duplicate from every view
// that kept it. Every view then equals a rebuild, which reads the log in order. The
// duplicate is the same bytes, or its id written otherwise (upper case, a JSON escape)
// as a publisher writing straight to the stream could: the same id once decoded.
func TestConformanceRedriveAfterDuplicate(t *testing.T) {
	for _, c := range []struct {
		name   string
		mangle func(raw []byte, id string) []byte
	}{
		{"same bytes", nil},
		{"id in upper case", func(raw []byte, id string) []byte {
			return bytes.Replace(raw, []byte(`"id":"`+id), []byte(`"id":"`+strings.ToUpper(id)), 1)
		}},
		{"id with an escape", func(raw []byte, id string) []byte {
			return bytes.Replace(raw, []byte(`"id":"`+id), []byte(`"id":"`+id[:8]+`\u002d`+id[9:]), 1)
		}},
	} {
		t.Run(c.name, func(t *testing.T) { redriveAfterDuplicate(t, c.mangle) })
	}
}

func redriveAfterDuplicate(t *testing.T, mangle func(raw []byte, id string) []byte) {
	tr := mustTraffic(t)
	now := clock(tr)
	cases := reportCases(tr, now())
	// The parked event: an unauthorized access late in the traffic, sent again right
	// after itself.
	p := -1
	for i := len(tr) - 50; i >= 0 && p < 0; i-- {
		if tr[i].Event.Type == domain.PHIAccessedType {
			p = i
		}
	}
	log := slices.Concat(tr[:p+1], tr[p:p+1], tr[p+1:])
	for i := range log {
		log[i].Seq = uint64(i + 1)
	}
	if mangle != nil {
		id := log[p+1].Event.ID
		raw := mangle(slices.Clone(log[p+1].Raw), id)
		if e, err := domain.Parse(raw); err != nil || bytes.Equal(raw, log[p+1].Raw) || e.ID != id {
			t.Fatalf("the duplicate's bytes %s: %v (id %s)", raw, err, e.ID)
		}
		log[p+1].Raw = raw
	}
	parked, dup := log[p], log[p+1]
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, s *projections.Store) {
		for _, name := range projections.ViewNames {
			v := newView(t, s, projections.ViewConfig{Name: name, Now: now})
			if err := applyAll(ctx, v, log[:p], 97); err != nil {
				t.Fatal(err)
			}
			if err := v.Park(ctx, parked.Seq, parked.Subject, "does not decode (test)"); err != nil {
				t.Fatal(err)
			}
			if err := applyAll(ctx, v, log[p+1:], 97); err != nil {
				t.Fatal(err)
			}
		}
		if got := registry(t, s)[parked.Event.ID]; got != int64(dup.Seq) {
			t.Fatalf("before the redrive the registry names %d, want the duplicate's %d", got, dup.Seq)
		}
		audit := projections.AccessAuditView
		if n := keptCount(t, s, audit, "", dup.Seq); n != 1 {
			t.Fatalf("before the redrive the access audit keeps the duplicate %d times", n)
		}
		for _, name := range projections.ViewNames {
			v := newView(t, s, projections.ViewConfig{Name: name, Now: now})
			if err := v.Redrive(ctx, parked); err != nil {
				t.Fatal(err)
			}
		}
		if got := registry(t, s); !maps.Equal(got, firstSeqs(log)) {
			t.Errorf("after the redrive the registry names %d for the id, want %d", got[parked.Event.ID], parked.Seq)
		}
		if n := keptCount(t, s, audit, parked.Event.ID, 0); n != 1 {
			t.Errorf("after the redrive the access audit keeps %d rows of one id", n)
		}
		redriven, liveRows := reports(t, s, cases), viewRows(t, s)
		rebuildAll(t, s, log, projections.ViewNames...)
		sameReports(t, "redriven views against a rebuild", reports(t, s, cases), redriven)
		if got := viewRows(t, s); !maps.EqualFunc(got, liveRows, slices.Equal) {
			t.Errorf("the redriven views keep other rows than a rebuild")
		}
	})
}

// A rebuild writes the registry and the bodies while live projectors write the same
// rows, on stores opened apart (as two processes would): neither waits for the other in
// an opposite order, and both end with the same views.
func TestConformanceRebuildBesideLiveViews(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	cases := reportCases(tr, now())
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		liveStore, rebuildStore := b.mustOpen(t), b.mustOpen(t)
		var views []*projections.View
		for _, name := range projections.ViewNames {
			views = append(views, newView(t, liveStore, projections.ViewConfig{Name: name, Now: now}))
		}
		// A first part live, so that the rebuild starts over a registry that holds ids.
		head := len(tr) / 4
		for _, v := range views {
			if err := applyAll(ctx, v, tr[:head], 50); err != nil {
				t.Fatal(err)
			}
		}
		rb := startRebuild(t, rebuildStore, now, projections.ViewNames...)
		// The rebuild catches up and then follows the head beside the live views, batch
		// by batch, each batch committed before the next.
		if err := applyAll(ctx, rb, tr[:head], 333); err != nil {
			t.Fatal(err)
		}
		const n = 20
		for lo := head; lo < len(tr); lo += n {
			batch := tr[lo:min(lo+n, len(tr))]
			var g errgroup.Group
			for _, v := range views {
				g.Go(func() error { return v.Apply(ctx, batch) })
			}
			g.Go(func() error {
				if err := rb.Apply(ctx, batch); err != nil {
					return err
				}
				return rb.Finish(ctx)
			})
			if err := g.Wait(); err != nil {
				t.Fatalf("batch at %d: %v", lo, err)
			}
		}
		for _, v := range views {
			if err := v.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		live := reports(t, liveStore, cases)
		if err := rb.SwapIn(ctx); err != nil {
			t.Fatal(err)
		}
		sameReports(t, "rebuilt beside the live views", live, reports(t, liveStore, cases))
		if got := registry(t, liveStore); !maps.Equal(got, firstSeqs(tr)) {
			t.Errorf("registry: %d ids, want %d at their first sequences", len(got), len(firstSeqs(tr)))
		}
	})
}

// Every projector at once, each on a store of its own (as separate processes would),
// with batches of different sizes: the registry ends naming every id at its first
// sequence, and every view equals the same view applied alone.
func TestConformanceProjectorsShareRegistry(t *testing.T) {
	tr, _, _ := crossTypeLogs(t, mustTraffic(t))
	now := clock(tr)
	cases := reportCases(tr, now())
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		var g errgroup.Group
		sizes := []int{7, 13, 31, 50, 97, 5}
		for i, name := range append(slices.Clone(projections.ViewNames), projections.TimelineName) {
			s := b.mustOpen(t)
			var p projector = projections.NewTimeline(s)
			if name != projections.TimelineName {
				p = newView(t, s, projections.ViewConfig{Name: name, Now: now})
			}
			g.Go(func() error { return applyAll(ctx, p, tr, sizes[i]) })
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		s := b.mustOpen(t)
		if got := registry(t, s); !maps.Equal(got, firstSeqs(tr)) {
			t.Errorf("registry: %d ids, want %d at their first sequences", len(got), len(firstSeqs(tr)))
		}
		for _, name := range projections.ViewNames {
			v := newView(t, s, projections.ViewConfig{Name: name, Now: now})
			if err := v.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		concurrent := reports(t, s, cases)
		rebuildAll(t, s, tr, projections.ViewNames...)
		sameReports(t, "projectors applied at once against a rebuild", reports(t, s, cases), concurrent)
	})
}

// A store migrated from before the registry of event ids (its views decided duplicates
// per view) advises one rebuild, which a rebuild of every view clears; a new store and a
// rebuild of one view do not.
func TestConformanceRebuildAdvisedAfterUpgrade(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.mustOpen(t)
		if why, err := s.RebuildAdvised(ctx); err != nil || why != "" {
			t.Fatalf("a new store advises a rebuild: %q %v", why, err)
		}
		applyViews(t, s, tr[:100], now)
		// The store as the release before the registry left it.
		q := fmt.Sprintf(`DELETE FROM schema_migrations WHERE version >= %d`, projections.RegistryMigration())
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		s.Close()
		s = b.mustOpen(t)
		why, err := s.RebuildAdvised(ctx)
		if err != nil || why == "" {
			t.Fatalf("an upgraded store advises no rebuild: %v", err)
		}
		rebuildAll(t, s, tr[:100], projections.UnauthorizedView)
		if again, _ := s.RebuildAdvised(ctx); again != why {
			t.Fatalf("a rebuild of one view cleared the advice: %q", again)
		}
		rebuildAll(t, s, tr[:100], projections.ViewNames...)
		if again, _ := s.RebuildAdvised(ctx); again != "" {
			t.Fatalf("a rebuild of every view left the advice: %q", again)
		}
		s.Close()
		if again, _ := b.mustOpen(t).RebuildAdvised(ctx); again != "" {
			t.Fatalf("reopened, the store advises a rebuild again: %q", again)
		}
	})
}
