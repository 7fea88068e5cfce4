package projections_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the admin connection that creates test databases
	"golang.org/x/sync/errgroup"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/simulate"
	"github.com/custody/custody/projections"
)

// The conformance suite: every test here runs against each projection store, SQLite and
// PostgreSQL, and the stores must behave alike, down to the bytes of every report.
//
// PostgreSQL comes from CUSTODY_TEST_POSTGRES, a postgres:// URL of a role that may
// create databases; each test creates a database of its own and drops it at the end.
// Without it the PostgreSQL half is skipped, except when CI is set: CI must run it
// (.ci/run starts a server and sets both).

// backend opens stores of one kind, all on the same database (the test's).
type backend struct {
	name string
	open func(ctx context.Context) (*projections.Store, error)
}

// mustOpen opens a store on the test's database, closed when the test ends.
func (b backend) mustOpen(t *testing.T) *projections.Store {
	t.Helper()
	s, err := b.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var storeKinds = []string{"sqlite", "postgres"}

// forEachBackend runs fn once per store kind, in a subtest named after it, each with a
// fresh, empty database.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			var b backend
			switch kind {
			case "sqlite":
				path := filepath.Join(t.TempDir(), "custody.db")
				b = backend{name: kind, open: func(ctx context.Context) (*projections.Store, error) {
					return projections.OpenSQLite(ctx, path)
				}}
			case "postgres":
				dsn := postgresDatabase(t)
				b = backend{name: kind, open: func(ctx context.Context) (*projections.Store, error) {
					return projections.OpenPostgres(ctx, dsn)
				}}
			}
			fn(t, b)
		})
	}
}

// forEachStore runs fn once per store kind with an open store on a fresh database.
func forEachStore(t *testing.T, fn func(t *testing.T, s *projections.Store)) {
	t.Helper()
	forEachBackend(t, func(t *testing.T, b backend) { fn(t, b.mustOpen(t)) })
}

// postgresDatabase creates a database for the test on the CUSTODY_TEST_POSTGRES server,
// dropped when the test ends, and returns its URL.
func postgresDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("CUSTODY_TEST_POSTGRES")
	if admin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CUSTODY_TEST_POSTGRES is not set, and CI is: the PostgreSQL half of the conformance suite must run in CI (.ci/run starts a server)")
		}
		t.Skip("CUSTODY_TEST_POSTGRES is not set: PostgreSQL half skipped")
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("CUSTODY_TEST_POSTGRES must be a postgres:// URL (%s)", projections.RedactDSN(admin))
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	name := "custody_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		t.Fatalf("create test database on %s: %v", projections.RedactDSN(admin), err)
	}
	// Registered after the stores' Close (cleanups run last first), so it runs after
	// them; FORCE ends any connection left behind.
	t.Cleanup(func() {
		if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// traffic is simulated traffic as the log would deliver it: sequences from 1, in
// arrival order, re-sends (the same id again) included.
var traffic = sync.OnceValues(func() ([]domain.Stored, error) {
	var out []domain.Stored
	err := simulate.Generate(simulate.Config{Seed: 7, Interactions: 150, Agents: 12, Days: 3}, func(e domain.Event) error {
		raw, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		seq := uint64(len(out) + 1)
		out = append(out, domain.Stored{Seq: seq, Subject: "custody.event." + string(e.Type), Received: e.Time, Raw: raw, Event: e})
		return nil
	})
	return out, err
})

func mustTraffic(t *testing.T) []domain.Stored {
	t.Helper()
	tr, err := traffic()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// clock is the fixed wall clock of the views: a day after the traffic's last event.
func clock(tr []domain.Stored) func() time.Time {
	var last time.Time
	for _, s := range tr {
		if s.Event.Time.After(last) {
			last = s.Event.Time
		}
	}
	now := last.Add(24 * time.Hour).Truncate(time.Second)
	return func() time.Time { return now }
}

// projector is what the consume loop drives: View and Timeline.
type projector interface {
	Name() string
	Apply(context.Context, []domain.Stored) error
}

// applyAll applies events to a projector in batches of n.
func applyAll(ctx context.Context, p projector, events []domain.Stored, n int) error {
	for lo := 0; lo < len(events); lo += n {
		if err := p.Apply(ctx, events[lo:min(lo+n, len(events))]); err != nil {
			return err
		}
	}
	return nil
}

// scalar runs a query without parameters (portable: no placeholders) returning one value.
func scalar[T any](t *testing.T, s *projections.Store, query string) T {
	t.Helper()
	var v T
	if err := s.DB().QueryRow(query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// table is the physical table a view key is kept in ("" when none).
func table(t *testing.T, s *projections.Store, key string) string {
	t.Helper()
	var tbl string
	err := s.DB().QueryRow(`SELECT tbl FROM view_tables WHERE view = '` + key + `'`).Scan(&tbl)
	if errors.Is(err, sql.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// rows lists what a view key keeps: "seq id late" per event, by sequence.
func rows(t *testing.T, s *projections.Store, key string) []string {
	t.Helper()
	kept, err := s.KeptEvents(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range kept {
		out = append(out, fmt.Sprint(k.Seq, " ", k.Event.ID, " ", k.Late))
	}
	return out
}

// keptCount is how many events of a view key have the id (id "": any) or the
// sequence (seq 0: any).
func keptCount(t *testing.T, s *projections.Store, key, id string, seq uint64) int {
	t.Helper()
	kept, err := s.KeptEvents(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range kept {
		if (id == "" || k.Event.ID == id) && (seq == 0 || k.Seq == seq) {
			n++
		}
	}
	return n
}

func checkpoint(t *testing.T, s *projections.Store, name string) uint64 {
	t.Helper()
	cp, err := s.Checkpoint(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestConformanceMigrations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		// Concurrent: processes opening a fresh store at once migrate it once.
		var g errgroup.Group
		stores := make([]*projections.Store, 4)
		for i := range stores {
			g.Go(func() (err error) {
				stores[i], err = b.open(ctx)
				return err
			})
		}
		err := g.Wait()
		for _, s := range stores {
			if s != nil {
				s.Close()
			}
		}
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
		s := b.mustOpen(t)
		n := scalar[int64](t, s, `SELECT COUNT(*) FROM schema_migrations`)
		if hi := scalar[int64](t, s, `SELECT MAX(version) FROM schema_migrations`); n == 0 || n != hi {
			t.Fatalf("schema_migrations: %d rows, highest %d", n, hi)
		}
		if err := projections.NewTimeline(s).Apply(ctx, mustTraffic(t)[:3]); err != nil {
			t.Fatal(err)
		}
		s.Close()
		// Idempotent: opening again runs nothing and keeps the data.
		s = b.mustOpen(t)
		if again := scalar[int64](t, s, `SELECT COUNT(*) FROM schema_migrations`); again != n {
			t.Fatalf("reopen: %d migrations recorded, want %d", again, n)
		}
		if cp := checkpoint(t, s, projections.TimelineName); cp != 3 {
			t.Fatalf("checkpoint after reopen %d, want 3", cp)
		}
	})
}

func TestConformanceBatchAtomicAndGap(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *projections.Store) {
		ctx := context.Background()
		tr := mustTraffic(t)
		v, err := projections.NewView(s, projections.ViewConfig{Name: projections.AccessAuditView, Now: clock(tr)})
		if err != nil {
			t.Fatal(err)
		}
		tl := projections.NewTimeline(s)
		for _, p := range []projector{v, tl} {
			if err := p.Apply(ctx, tr[:100]); err != nil {
				t.Fatal(err)
			}
		}
		keptRows := rows(t, s, projections.AccessAuditView)
		timelineRows := scalar[int64](t, s, `SELECT COUNT(*) FROM timeline`)
		alerts := scalar[int64](t, s, `SELECT COUNT(*) FROM alerts`)
		state := scalar[string](t, s, `SELECT max_time FROM view_state WHERE view = 'access-audit'`)
		if len(keptRows) == 0 || timelineRows == 0 {
			t.Fatalf("nothing kept: %d view rows, %d timeline rows", len(keptRows), timelineRows)
		}
		// A batch that fails after rows were written (a gap after 100 events) leaves
		// neither its rows nor its checkpoint nor the view's state.
		bad := slices.Concat(tr[100:200], tr[201:210])
		for _, p := range []projector{v, tl} {
			if err := p.Apply(ctx, bad); !errors.Is(err, projections.ErrGap) {
				t.Fatalf("%s: batch with a gap: %v, want ErrGap", p.Name(), err)
			}
			if cp := checkpoint(t, s, p.Name()); cp != 100 {
				t.Fatalf("%s: checkpoint %d after the failed batch, want 100", p.Name(), cp)
			}
			// A batch that starts past the checkpoint is a gap too.
			if err := p.Apply(ctx, tr[101:110]); !errors.Is(err, projections.ErrGap) {
				t.Fatalf("%s: batch after a gap: %v, want ErrGap", p.Name(), err)
			}
		}
		if got := rows(t, s, projections.AccessAuditView); !slices.Equal(got, keptRows) {
			t.Fatalf("view rows changed by failed batches: %d rows, want %d", len(got), len(keptRows))
		}
		if got := scalar[int64](t, s, `SELECT COUNT(*) FROM timeline`); got != timelineRows {
			t.Fatalf("timeline rows changed by failed batches: %d, want %d", got, timelineRows)
		}
		if got := scalar[int64](t, s, `SELECT COUNT(*) FROM alerts`); got != alerts {
			t.Fatalf("alerts changed by failed batches: %d, want %d", got, alerts)
		}
		if got := scalar[string](t, s, `SELECT max_time FROM view_state WHERE view = 'access-audit'`); got != state {
			t.Fatalf("view state changed by failed batches: %s, want %s", got, state)
		}
		// The same events delivered without the gap, overlapping what was applied, go in.
		for _, p := range []projector{v, tl} {
			if err := p.Apply(ctx, tr[90:300]); err != nil {
				t.Fatalf("%s: %v", p.Name(), err)
			}
			if cp := checkpoint(t, s, p.Name()); cp != 300 {
				t.Fatalf("%s: checkpoint %d, want 300", p.Name(), cp)
			}
		}
	})
}

func TestConformanceDuplicateIDsKeptOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *projections.Store) {
		ctx := context.Background()
		tr := mustTraffic(t)
		v, err := projections.NewView(s, projections.ViewConfig{Name: projections.AccessAuditView, Now: clock(tr)})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Apply(ctx, tr[:50]); err != nil {
			t.Fatal(err)
		}
		before := rows(t, s, projections.AccessAuditView)
		// The same event stored again under later sequences (a re-send past the log's
		// deduplication window), in its own batch and twice within one batch.
		again := func(seq uint64, of domain.Stored) domain.Stored {
			of.Seq = seq
			return of
		}
		first := tr[0]
		if err := v.Apply(ctx, []domain.Stored{again(51, first)}); err != nil {
			t.Fatal(err)
		}
		if err := v.Apply(ctx, []domain.Stored{again(52, tr[1]), again(53, tr[1]), again(54, first)}); err != nil {
			t.Fatal(err)
		}
		if cp := checkpoint(t, s, projections.AccessAuditView); cp != 54 {
			t.Fatalf("checkpoint %d, want 54", cp)
		}
		if got := rows(t, s, projections.AccessAuditView); !slices.Equal(got, before) {
			t.Fatalf("duplicates kept: %d rows, want %d", len(got), len(before))
		}
		tl := projections.NewTimeline(s)
		if err := tl.Apply(ctx, []domain.Stored{tr[0], again(2, first)}); err != nil {
			t.Fatal(err)
		}
		known, err := tl.Known(ctx, []string{first.Event.ID, "0193f1a2-7c4e-7b3a-9d2e-000000000000"})
		if err != nil || len(known) != 1 || known[first.Event.ID] != 1 {
			t.Fatalf("known ids %v %v: want the first sequence only", known, err)
		}
	})
}

// crossTypeLogs returns two logs of the same length built from the traffic. After every
// seventh event, log a stores the content (type, subject, data) of a later event of
// another type under the id and time of an event three before, where log b stores that
// earlier event again, byte for byte. The contract makes a second event with an id
// already seen a duplicate whatever its content, so both logs must give the same views.
func crossTypeLogs(t *testing.T, tr []domain.Stored) (a, b []domain.Stored, copies int) {
	t.Helper()
	for i, s := range tr {
		a, b = append(a, s), append(b, s)
		if i%7 != 6 {
			continue
		}
		orig := tr[i-3]
		j := slices.IndexFunc(tr[i+1:], func(o domain.Stored) bool { return o.Event.Type != orig.Event.Type })
		if j < 0 {
			continue
		}
		other := tr[i+1+j]
		e := other.Event
		e.ID, e.Time = orig.Event.ID, orig.Event.Time
		raw, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		a = append(a, domain.Stored{Subject: other.Subject, Received: orig.Received, Raw: raw, Event: e})
		b = append(b, orig)
		copies++
	}
	for i := range a {
		a[i].Seq, b[i].Seq = uint64(i+1), uint64(i+1)
	}
	return a, b, copies
}

func TestConformanceDuplicateIDsAcrossTypes(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	cases := reportCases(tr, now())
	logA, logB, copies := crossTypeLogs(t, tr)
	if copies < 100 {
		t.Fatalf("only %d copies under another type", copies)
	}
	ctx := context.Background()
	// Each log, on each store: the live views (batches of 97 and of 1000), then a
	// rebuild of every view, each read into reports.
	run := func(t *testing.T, s *projections.Store, log []domain.Stored, batch int) (live, rebuilt map[string][]byte) {
		for _, name := range projections.ViewNames {
			v := newView(t, s, projections.ViewConfig{Name: name, Now: now})
			if err := applyAll(ctx, v, log, batch); err != nil {
				t.Fatal(err)
			}
			if err := v.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		live = reports(t, s, cases)
		rebuildAll(t, s, log, projections.ViewNames...)
		return live, reports(t, s, cases)
	}
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			for _, batch := range []int{97, 1000} {
				t.Run(fmt.Sprint("batch ", batch), func(t *testing.T) {
					sa, sb := freshStore(t, kind), freshStore(t, kind)
					liveA, rebuiltA := run(t, sa, logA, batch)
					liveB, rebuiltB := run(t, sb, logB, batch)
					for key, want := range liveB {
						if got := liveA[key]; string(got) != string(want) {
							t.Errorf("%s: the live views keep a copy stored under an id already seen:\nwith copies   %s\nwith re-sends %s", key, got, want)
						}
						if got := rebuiltA[key]; string(got) != string(want) {
							t.Errorf("%s: the rebuild keeps a copy stored under an id already seen:\nwith copies   %s\nwith re-sends %s", key, got, want)
						}
						if got := rebuiltB[key]; string(got) != string(want) {
							t.Errorf("%s: the rebuild differs from the live views:\nrebuilt %s\nlive    %s", key, got, want)
						}
					}
					// The registry names every id once, at the sequence that first stored it.
					got, wantFirst := registry(t, sa), firstSeqs(logA)
					if !maps.Equal(got, wantFirst) {
						t.Errorf("registry: %d ids, want %d, each at its first sequence", len(got), len(wantFirst))
					}
				})
			}
		})
	}
}

// reportCases are the parameters every report is computed with.
func reportCases(tr []domain.Stored, now time.Time) map[string]projections.Params {
	mid := tr[len(tr)/2].Event.Time
	east := time.FixedZone("UTC-5", -5*3600)
	flagged := true
	return map[string]projections.Params{
		"now":          {AsOf: now},
		"mid":          {AsOf: mid},
		"mid-seq":      {AsOf: now, AsOfSeq: uint64(len(tr) / 3)},
		"zone":         {AsOf: now, Location: east, RedactionBuffer: time.Hour},
		"audit-filter": {AsOf: now, Flagged: &flagged, Offset: 1, Limit: 20},
	}
}

// reports renders every report with every case as JSON, keyed "case/report".
func reports(t *testing.T, s *projections.Store, cases map[string]projections.Params) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for cname, p := range cases {
		for _, name := range projections.ReportNames {
			r, err := s.Report(context.Background(), name, p)
			if err != nil {
				t.Fatalf("report %s (%s): %v", name, cname, err)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			out[cname+"/"+name] = b
		}
	}
	return out
}

// applyViews applies the traffic to every view, live, and lets the clock tick.
func applyViews(t *testing.T, s *projections.Store, tr []domain.Stored, now func() time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, name := range projections.ViewNames {
		v, err := projections.NewView(s, projections.ViewConfig{Name: name, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := applyAll(ctx, v, tr, 97); err != nil {
			t.Fatal(err)
		}
		if err := v.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConformanceReportsIdentical(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	cases := reportCases(tr, now())
	outputs := map[string]map[string][]byte{}
	pending := map[string][]string{}
	forEachStore(t, func(t *testing.T, s *projections.Store) {
		ctx := context.Background()
		applyViews(t, s, tr, now)
		live := reports(t, s, cases)
		outputs[t.Name()] = live

		// Every report shows something in some case: reports of nothing would compare
		// equal too.
		for _, name := range projections.ReportNames {
			longest := 0
			for cname := range cases {
				longest = max(longest, len(live[cname+"/"+name]))
			}
			if longest < 400 {
				t.Errorf("report %s is nearly empty in every case (%d bytes)", name, longest)
			}
		}

		// Rebuild: a bulk, silent copy of every view swapped in gives the same reports.
		for _, name := range projections.ViewNames {
			tmp := projections.RebuildTable(name)
			if err := s.ResetTable(ctx, tmp); err != nil {
				t.Fatal(err)
			}
			v, err := projections.NewView(s, projections.ViewConfig{Name: name, Table: tmp, Silent: true, Bulk: true, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if err := applyAll(ctx, v, tr, 1000); err != nil {
				t.Fatal(err)
			}
			old := table(t, s, name)
			if err := s.SwapIn(ctx, name); err != nil {
				t.Fatal(err)
			}
			if now := table(t, s, name); now == old || now == "" || table(t, s, tmp) != "" {
				t.Fatalf("swap %s: table %q, was %q", name, now, old)
			}
			if cp := checkpoint(t, s, name); cp != uint64(len(tr)) {
				t.Fatalf("swap %s: checkpoint %d, want %d", name, cp, len(tr))
			}
		}
		rebuilt := reports(t, s, cases)
		for key, b := range live {
			if string(rebuilt[key]) != string(b) {
				t.Errorf("%s differs after the rebuild:\nlive    %s\nrebuilt %s", key, b, rebuilt[key])
			}
		}

		// The alerts outbox: pending oldest first, then published.
		all, err := s.PendingAlerts(ctx, 100000)
		if err != nil || len(all) == 0 {
			t.Fatalf("pending alerts: %d, %v", len(all), err)
		}
		var ids []string
		for _, a := range all {
			ids = append(ids, a.ID)
			var e map[string]any
			if err := json.Unmarshal(a.Body, &e); err != nil || e["id"] != a.ID {
				t.Fatalf("alert body %s: %v", a.Body, err)
			}
		}
		pending[t.Name()] = ids
		half := ids[:len(ids)/2]
		if err := s.MarkPublished(ctx, half); err != nil {
			t.Fatal(err)
		}
		rest, err := s.PendingAlerts(ctx, 100000)
		if err != nil {
			t.Fatal(err)
		}
		if got := alertIDs(rest); !slices.Equal(got, ids[len(half):]) {
			t.Fatalf("pending after publishing half: %d, want %d", len(got), len(ids)-len(half))
		}
		if err := s.MarkPublished(ctx, alertIDs(rest)); err != nil {
			t.Fatal(err)
		}
		if rest, err := s.PendingAlerts(ctx, 10); err != nil || len(rest) != 0 {
			t.Fatalf("pending after publishing all: %d %v", len(rest), err)
		}

		// Reset: the view is gone with its checkpoint and state.
		if err := s.ResetTable(ctx, projections.ConsentView); err != nil {
			t.Fatal(err)
		}
		if cp := checkpoint(t, s, projections.ConsentView); cp != 0 || table(t, s, projections.ConsentView) != "" {
			t.Fatalf("after reset: checkpoint %d, table %q", cp, table(t, s, projections.ConsentView))
		}
	})
	sqlite, pg := outputs[t.Name()+"/sqlite"], outputs[t.Name()+"/postgres"]
	if sqlite == nil || pg == nil {
		return // a half failed or was skipped
	}
	if len(sqlite) != len(pg) {
		t.Fatalf("%d reports on SQLite, %d on PostgreSQL", len(sqlite), len(pg))
	}
	for key, b := range sqlite {
		if string(pg[key]) != string(b) {
			t.Errorf("%s differs:\nsqlite   %s\npostgres %s", key, b, pg[key])
		}
	}
	if a, b := pending[t.Name()+"/sqlite"], pending[t.Name()+"/postgres"]; !slices.Equal(a, b) {
		t.Errorf("pending alerts differ: %d on SQLite, %d on PostgreSQL", len(a), len(b))
	}
}

func alertIDs(as []projections.OutboxAlert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

// Two processes applying the same view at once (each with its own store handle) apply
// every event once: the checkpoint read inside the transaction serializes them.
func TestConformanceConcurrentAppliers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		tr := mustTraffic(t)
		now := clock(tr)
		stores := []*projections.Store{b.mustOpen(t), b.mustOpen(t), b.mustOpen(t)}
		var g errgroup.Group
		for i, s := range stores {
			for _, p := range []projector{
				newView(t, s, projections.ViewConfig{Name: projections.UnauthorizedView, Now: now}),
				projections.NewTimeline(s),
			} {
				g.Go(func() error {
					// Different batch sizes, so that batches overlap partly.
					return applyAll(ctx, p, tr, 40+i*13)
				})
			}
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		s := stores[0]
		// The reference: the same view applied alone, under another key.
		ref := newView(t, s, projections.ViewConfig{Name: projections.UnauthorizedView, Table: "reference", Silent: true, Now: now})
		if err := applyAll(ctx, ref, tr, 500); err != nil {
			t.Fatal(err)
		}
		got, want := rows(t, s, projections.UnauthorizedView), rows(t, s, "reference")
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Fatalf("concurrent appliers kept %d rows, one applier %d", len(got), len(want))
		}
		states := scalar[int64](t, s, `SELECT COUNT(DISTINCT max_time || ' ' || late_events) FROM view_state WHERE view IN ('unauthorized-24h', 'reference')`)
		if states != 1 {
			t.Fatal("concurrent appliers left another view state than one applier")
		}
		for _, name := range []string{projections.UnauthorizedView, projections.TimelineName} {
			if cp := checkpoint(t, s, name); cp != uint64(len(tr)) {
				t.Fatalf("%s: checkpoint %d, want %d", name, cp, len(tr))
			}
		}
		if n := scalar[int64](t, s, `SELECT COUNT(*) FROM timeline`); n != int64(len(tr)) {
			t.Fatalf("timeline rows %d, want %d", n, len(tr))
		}
		// Each alert once, raised by whichever applier saw it first.
		dups := scalar[int64](t, s, `SELECT COUNT(*) - COUNT(DISTINCT id) FROM alerts`)
		if n := scalar[int64](t, s, `SELECT COUNT(*) FROM alerts`); n == 0 || dups != 0 {
			t.Fatalf("alerts: %d, %d duplicates", n, dups)
		}
	})
}

func newView(t *testing.T, s *projections.Store, cfg projections.ViewConfig) *projections.View {
	t.Helper()
	v, err := projections.NewView(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRedactDSN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://custody:s3cret@db.example:5432/custody?sslmode=disable", "postgres://custody:xxxxx@db.example:5432/custody?sslmode=disable"},
		{"postgresql://custody@db.example/custody", "postgresql://custody@db.example/custody"},
		{"postgres://db.example/custody?password=s3cret&sslmode=require", "postgres://db.example/custody?password=xxxxx&sslmode=require"},
		{"host=db.example password=s3cret", "(connection string redacted)"},
		{"postgres://custody:s3cret@db.example:port/custody", "(connection string redacted)"},
	} {
		if got := projections.RedactDSN(c.in); got != c.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A store that cannot be opened is named without its password, whatever failed.
func TestOpenPostgresErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://custody:s3cret-pw@127.0.0.1:1/custody?connect_timeout=2", // nothing listens on port 1
		"postgres://custody:s3cret-pw@127.0.0.1:notaport/custody",
		"postgres://custody:s3cret-pw@127.0.0.1:1/custody?sslmode=bogus",
		"host=127.0.0.1 port=1 password=s3cret-pw connect_timeout=2",
	} {
		s, err := projections.OpenPostgres(ctx, dsn)
		if err == nil {
			s.Close()
			t.Fatalf("%s: opened", projections.RedactDSN(dsn))
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
