package projections_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
)

// startRebuild starts a Rebuild of the named views with the clock now, closed when the
// test ends.
func startRebuild(t *testing.T, s *projections.Store, now func() time.Time, names ...string) *projections.Rebuild {
	t.Helper()
	var cfgs []projections.ViewConfig
	for _, name := range names {
		cfgs = append(cfgs, projections.ViewConfig{Name: name, Now: now})
	}
	rb, err := projections.NewRebuild(context.Background(), s, cfgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rb.Close)
	return rb
}

// rebuildAll replays tr into fresh copies of the named views through one Rebuild and
// swaps them in.
func rebuildAll(t *testing.T, s *projections.Store, tr []domain.Stored, names ...string) {
	t.Helper()
	ctx := context.Background()
	rb := startRebuild(t, s, clock(tr), names...)
	defer rb.Close()
	if err := applyAll(ctx, rb, tr, 333); err != nil {
		t.Fatal(err)
	}
	if err := rb.SwapIn(ctx); err != nil {
		t.Fatal(err)
	}
}

// viewRows lists what every view keeps ("seq id late" by sequence).
func viewRows(t *testing.T, s *projections.Store) map[string][]string {
	out := map[string][]string{}
	for _, name := range projections.ViewNames {
		out[name] = rows(t, s, name)
	}
	return out
}

func sameReports(t *testing.T, what string, want, got map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d reports, want %d", what, len(got), len(want))
	}
	for key, b := range want {
		if string(got[key]) != string(b) {
			t.Errorf("%s: %s differs:\nwant %s\ngot  %s", what, key, b, got[key])
		}
	}
}

// A rebuild of every view at once, and of one view alone, keeps the same rows and gives
// byte-identical reports to the live views, on every store; a body that differs from
// the log's under the same sequence (a store kept across another log) is replaced.
func TestRebuildMatchesLiveViews(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	cases := reportCases(tr, now())
	forEachStore(t, func(t *testing.T, s *projections.Store) {
		applyViews(t, s, tr, now)
		live, liveRows := reports(t, s, cases), viewRows(t, s)

		rebuildAll(t, s, tr, projections.ViewNames...)
		for _, name := range projections.ViewNames {
			if tmp := table(t, s, projections.RebuildTable(name)); tmp != "" {
				t.Fatalf("%s: the rebuilt copy %s is still registered", name, tmp)
			}
			if cp := checkpoint(t, s, name); cp != uint64(len(tr)) {
				t.Fatalf("%s: checkpoint %d, want %d", name, cp, len(tr))
			}
		}
		if got := viewRows(t, s); !mapsEqual(got, liveRows) {
			t.Fatalf("rows differ after the rebuild")
		}
		sameReports(t, "rebuild of every view", live, reports(t, s, cases))

		// An event the consent view keeps, with another body under its sequence.
		wrong := 0
		for wrong < len(tr) && tr[wrong].Event.Type != domain.InteractionStartedType {
			wrong++
		}
		if _, err := s.DB().Exec(fmt.Sprintf(`UPDATE event_bodies SET body = '{}' WHERE seq = %d`, wrong+1)); err != nil {
			t.Fatal(err)
		}
		rebuildAll(t, s, tr, projections.ConsentView)
		sameReports(t, "rebuild of one view over a wrong body", live, reports(t, s, cases))
		if got := viewRows(t, s); !mapsEqual(got, liveRows) {
			t.Fatalf("rows differ after the rebuild of one view")
		}
		rebuildAll(t, s, tr, projections.ViewNames...)
		if got := scalar[string](t, s, fmt.Sprintf(`SELECT body FROM event_bodies WHERE seq = %d`, wrong+1)); got != string(tr[wrong].Raw) {
			t.Fatalf("body of sequence %d after the rebuild: %s", wrong+1, got)
		}
		sameReports(t, "rebuild of every view again", live, reports(t, s, cases))
	})
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// Stores from before the current layout of the views' tables migrate: their views keep
// applying events in their layout, their reports equal those of a store built in the
// current layout, and a rebuild moves them to it. Layout 1 is a store from before
// event_bodies (each view's bodies in its own table, with indexes of ids and times);
// layout 2 keeps the bodies in event_bodies and one row per kept event in the view's
// table.
func TestRebuildMigratesOldLayouts(t *testing.T) {
	tr := withLateEvents(t, mustTraffic(t))
	now := clock(tr)
	cases := reportCases(tr, now())
	versions := projections.LayoutMigrations()
	// The downgrade to layout 1 undoes the two layout migrations and forgets every later
	// one, which runs again on the old schema (the registry's re-keying copies its rows).
	if len(versions) != 2 || versions[1] != versions[0]+1 || versions[1] > projections.MigrationCount() {
		t.Fatalf("layout migrations %v of %d: this test downgrades a store by undoing two consecutive ones", versions, projections.MigrationCount())
	}
	for _, layout := range []int{1, 2} {
		t.Run(fmt.Sprint("layout ", layout), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) {
				// The reference applies the same halves (the alerts' history depends on
				// when the clock ticked) in the current layout.
				half := tr[:len(tr)/2]
				ref := b.mustOpen(t)
				applyViews(t, ref, half, now)
				applyViews(t, ref, tr, now)
				want, wantRows, wantLate := reports(t, ref, cases), viewRows(t, ref), lateCounts(t, ref, uint64(len(tr)))
				// The same database serves the store below: the reference's views go.
				for _, name := range projections.ViewNames {
					if err := ref.ResetTable(context.Background(), name); err != nil {
						t.Fatal(err)
					}
				}

				// The first half, then each view's table as the older release left it.
				s := b.mustOpen(t)
				applyViews(t, s, half, now)
				for _, name := range projections.ViewNames {
					downgradeTable(t, s, name, layout)
				}
				if layout == 1 {
					for _, q := range []string{
						`DROP TABLE event_bodies`,
						`ALTER TABLE view_tables DROP COLUMN layout`,
						fmt.Sprintf(`DELETE FROM schema_migrations WHERE version >= %d`, versions[0]),
					} {
						if _, err := s.DB().Exec(q); err != nil {
							t.Fatalf("%s: %v", q, err)
						}
					}
				}
				s.Close()

				s = b.mustOpen(t)
				if n := scalar[int64](t, s, fmt.Sprintf(`SELECT COUNT(*) FROM view_tables WHERE layout = %d`, layout)); n != int64(len(projections.ViewNames)) {
					t.Fatalf("%d views in layout %d after the migration", n, layout)
				}
				applyViews(t, s, tr, now) // the second half
				sameReports(t, "migrated store", want, reports(t, s, cases))
				if got := viewRows(t, s); !maps.EqualFunc(got, wantRows, slices.Equal) {
					t.Errorf("the migrated views keep other events than the reference")
				}
				if got := lateCounts(t, s, uint64(len(tr))); !maps.Equal(got, wantLate) {
					t.Errorf("the migrated views count other late events than the reference")
				}

				rebuildAll(t, s, tr, projections.ViewNames...)
				if n := scalar[int64](t, s, `SELECT COUNT(*) FROM view_tables WHERE layout = 3`); n != int64(len(projections.ViewNames)) {
					t.Fatalf("%d views in layout 3 after the rebuild", n)
				}
				sameReports(t, "migrated store, rebuilt", want, reports(t, s, cases))
				if got := viewRows(t, s); !maps.EqualFunc(got, wantRows, slices.Equal) {
					t.Errorf("the rebuilt views keep other events than the reference")
				}
				if got := lateCounts(t, s, uint64(len(tr))); !maps.Equal(got, wantLate) {
					t.Errorf("the rebuilt views count other late events than the reference")
				}
			})
		})
	}
}

// withLateEvents copies traffic with some events moved three days back, so that they
// arrive late: those next to block boundaries (sequences 64k-1, 64k, 64k+1) and every
// 17th, after the first 100.
func withLateEvents(t *testing.T, tr []domain.Stored) []domain.Stored {
	t.Helper()
	out := slices.Clone(tr)
	for i := range out {
		st := &out[i]
		if m := st.Seq % 64; st.Seq <= 100 || (m > 1 && m < 63 && st.Seq%17 != 0) {
			continue
		}
		st.Event.Time = st.Event.Time.Add(-72 * time.Hour)
		raw, err := st.Event.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		st.Raw, st.Received = raw, st.Event.Time
	}
	return out
}

// lateCounts is every view's count of late events as of every position next to a block
// boundary of layout 3 (64k-1, 64k, 64k+1) and the last, keyed "view@position"; it
// fails the test when the traffic has no late event (the comparison would show nothing).
func lateCounts(t *testing.T, s *projections.Store, last uint64) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, name := range projections.ViewNames {
		for pos := uint64(1); pos <= last; pos++ {
			if m := pos % 64; m > 1 && m < 63 && pos != last {
				continue
			}
			n, err := s.LateEvents(context.Background(), name, pos)
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprint(name, "@", pos)] = n
		}
	}
	if out[fmt.Sprint(projections.AccessAuditView, "@", last)] == 0 {
		t.Fatal("the traffic has no late event")
	}
	return out
}

// downgradeTable replaces a view's table by one of an older layout holding the same
// events (1: bodies inline, with the indexes that layout had; 2: one row per event,
// bodies in event_bodies).
func downgradeTable(t *testing.T, s *projections.Store, name string, layout int) {
	t.Helper()
	kept, err := s.KeptEvents(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	tbl := table(t, s, name)
	old := fmt.Sprintf("%s_v%d", tbl, layout)
	ddl := []string{`CREATE TABLE ` + old + ` (seq BIGINT PRIMARY KEY, event_id TEXT NOT NULL, event_time TEXT NOT NULL, late BOOLEAN NOT NULL)`}
	insert := `INSERT INTO ` + old + ` (seq, event_id, event_time, late) VALUES ($1, $2, $3, $4)`
	if layout == 1 {
		ddl = []string{
			`CREATE TABLE ` + old + ` (seq BIGINT PRIMARY KEY, event_id TEXT NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL,
				agent TEXT NOT NULL, event_time TEXT NOT NULL, late BOOLEAN NOT NULL, body TEXT NOT NULL)`,
			`CREATE UNIQUE INDEX ` + old + `_id ON ` + old + ` (event_id)`,
			`CREATE INDEX ` + old + `_time ON ` + old + ` (event_time)`,
		}
		insert = `INSERT INTO ` + old + ` (seq, event_id, event_time, late, type, subject, agent, body) VALUES ($1, $2, $3, $4, '', '', '', $5)`
	}
	for _, q := range ddl {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, k := range kept {
		args := []any{int64(k.Seq), k.Event.ID, k.Event.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"), k.Late}
		if layout == 1 {
			body, err := k.Event.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			args = append(args, string(body))
		}
		if _, err := s.DB().Exec(insert, args...); err != nil {
			t.Fatalf("%s: %v", insert, err)
		}
	}
	for _, q := range []string{
		`DROP TABLE ` + tbl,
		fmt.Sprintf(`UPDATE view_tables SET tbl = '%s', layout = %d WHERE view = '%s'`, old, layout, name),
	} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A message parked in the middle of a rebuild is parked in order, after every batch
// before it is written: the copies keep what live views that parked the same message
// keep, and each view has its dead letter. While the rebuild runs, its checkpoint is
// the last sequence Apply accepted, whatever the writer has committed.
func TestRebuildParksInOrder(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	p := len(tr) / 2
	parked := tr[p]
	const reason = "stored message is not a valid event: test"
	forEachStore(t, func(t *testing.T, s *projections.Store) {
		ctx := context.Background()
		for _, name := range projections.ViewNames {
			v, err := projections.NewView(s, projections.ViewConfig{Name: name, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if err := applyAll(ctx, v, tr[:p], 97); err != nil {
				t.Fatal(err)
			}
			if err := v.Park(ctx, parked.Seq, parked.Subject, reason); err != nil {
				t.Fatal(err)
			}
			if err := applyAll(ctx, v, tr[p+1:], 97); err != nil {
				t.Fatal(err)
			}
		}
		live := viewRows(t, s)

		rb := startRebuild(t, s, now, projections.ViewNames...)
		if err := applyAll(ctx, rb, tr[:p], 333); err != nil {
			t.Fatal(err)
		}
		if cp, err := rb.Checkpoint(ctx); err != nil || cp != tr[p-1].Seq {
			t.Fatalf("checkpoint after the first half: %d, %v; want %d", cp, err, tr[p-1].Seq)
		}
		if err := rb.Park(ctx, parked.Seq, parked.Subject, reason); err != nil {
			t.Fatal(err)
		}
		if cp, err := rb.Checkpoint(ctx); err != nil || cp != parked.Seq {
			t.Fatalf("checkpoint after the park: %d, %v; want %d", cp, err, parked.Seq)
		}
		if err := applyAll(ctx, rb, tr[p+1:], 333); err != nil {
			t.Fatal(err)
		}
		if err := rb.SwapIn(ctx); err != nil {
			t.Fatal(err)
		}
		if got := viewRows(t, s); !mapsEqual(got, live) {
			t.Fatalf("rows differ from the live views' after a rebuild that parked sequence %d", parked.Seq)
		}
		dls, err := s.DeadLetters(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, d := range dls {
			if d.Seq == parked.Seq {
				got[d.Projector] = true
			}
		}
		for _, name := range projections.ViewNames {
			if !got[name] {
				t.Errorf("%s: no dead letter at %d: %+v", name, parked.Seq, dls)
			}
			if cp := checkpoint(t, s, name); cp != uint64(len(tr)) {
				t.Errorf("%s: checkpoint %d, want %d", name, cp, len(tr))
			}
		}
	})
}

// When the writer fails (here: another process reset a copy under it), the error
// reaches the caller by the next Apply or the swap, nothing is swapped in and the live
// views keep what they had.
func TestRebuildWriterFailureStopsTheSwap(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	cases := reportCases(tr, now())
	forEachStore(t, func(t *testing.T, s *projections.Store) {
		ctx := context.Background()
		applyViews(t, s, tr, now)
		live, liveRows := reports(t, s, cases), viewRows(t, s)

		rb := startRebuild(t, s, now, projections.ViewNames...)
		half := len(tr) / 2
		if err := applyAll(ctx, rb, tr[:half], 333); err != nil {
			t.Fatal(err)
		}
		if err := rb.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.ResetTable(ctx, projections.RebuildTable(projections.ConsentView)); err != nil {
			t.Fatal(err)
		}
		applyErr := applyAll(ctx, rb, tr[half:], 333)
		swapErr := rb.SwapIn(ctx)
		if swapErr == nil {
			t.Fatalf("the swap after a copy was reset under the rebuild succeeded (apply: %v)", applyErr)
		}
		if err := rb.Apply(ctx, tr[len(tr)-1:]); err == nil {
			t.Fatal("Apply after the writer failed succeeded")
		}
		if got := viewRows(t, s); !mapsEqual(got, liveRows) {
			t.Fatal("the live views changed after a failed rebuild")
		}
		sameReports(t, "after a failed rebuild", live, reports(t, s, cases))
	})
}
