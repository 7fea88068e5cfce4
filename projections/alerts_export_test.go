package projections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody/custody/projections"
)

// freshStore opens a store of the kind on a database of its own, closed when the test
// ends.
func freshStore(t *testing.T, kind string) *projections.Store {
	t.Helper()
	ctx := context.Background()
	var s *projections.Store
	var err error
	if kind == "postgres" {
		s, err = projections.OpenPostgres(ctx, postgresDatabase(t))
	} else {
		s, err = projections.OpenSQLite(ctx, filepath.Join(t.TempDir(), "custody.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func exportAlerts(t *testing.T, s *projections.Store) ([]byte, int) {
	t.Helper()
	var b bytes.Buffer
	n, err := s.ExportAlerts(context.Background(), &b)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), n
}

// TestAlertsExportImport: the alerts table raised by live views, exported and imported
// into a store whose views were rebuilt silently, gives the same table and the same
// reports (the alerts report's raisedAt, status and retractedAt included), on SQLite and
// PostgreSQL alike; live views that then run on the store raise none of the imported
// alerts again; and an import is all or nothing, into an empty table only.
func TestAlertsExportImport(t *testing.T) {
	tr := mustTraffic(t)
	now := clock(tr)
	cases := reportCases(tr, now())
	exports := map[string][]byte{}
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			orig := freshStore(t, kind)
			applyViews(t, orig, tr, now)
			want, n := exportAlerts(t, orig)
			if rows := scalar[int64](t, orig, `SELECT COUNT(*) FROM alerts`); n == 0 || int64(n) != rows || bytes.Count(want, []byte("\n")) != n {
				t.Fatalf("exported %d alerts in %d lines, the table holds %d", n, bytes.Count(want, []byte("\n")), rows)
			}
			retracted := scalar[int64](t, orig, `SELECT COUNT(*) FROM alerts WHERE retracted_at IS NOT NULL`)
			t.Logf("%d alerts, %d retracted", n, retracted)
			exports[kind] = want

			// The restored store: views replayed silently (as a rebuild does), then the
			// alerts table imported.
			restored := freshStore(t, kind)
			for _, name := range projections.ViewNames {
				if err := applyAll(ctx, newView(t, restored, projections.ViewConfig{Name: name, Silent: true, Now: now}), tr, 1000); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := restored.ImportAlerts(ctx, bytes.NewReader(want)); err != nil || got != n {
				t.Fatalf("import: %d alerts, %v; want %d", got, err, n)
			}
			if got, _ := exportAlerts(t, restored); !bytes.Equal(got, want) {
				t.Fatalf("the imported alerts table differs from the exported one")
			}
			wantReports, gotReports := reports(t, orig, cases), reports(t, restored, cases)
			for key, b := range wantReports {
				if !bytes.Equal(gotReports[key], b) {
					t.Errorf("%s differs after export and import:\norig     %s\nrestored %s", key, b, gotReports[key])
				}
			}

			// Live views on the restored store take the imported alerts as raised.
			for _, name := range projections.ViewNames {
				v := newView(t, restored, projections.ViewConfig{Name: name, Now: now})
				if err := v.Apply(ctx, tr[len(tr)-1:]); err != nil { // already applied: loads the live state only
					t.Fatal(err)
				}
				if err := v.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := exportAlerts(t, restored); !bytes.Equal(got, want) {
				t.Fatalf("live views changed the imported alerts table (raised or retracted alerts again)")
			}

			// Into a table that is not empty: refused, nothing changed.
			if _, err := restored.ImportAlerts(ctx, bytes.NewReader(want)); !errors.Is(err, projections.ErrAlertsPresent) {
				t.Fatalf("import into a non-empty table: %v", err)
			}
			// All or nothing: a bad last line leaves the table empty.
			empty := freshStore(t, kind)
			bad := append(bytes.Clone(want), []byte(`{"id":"x"}`+"\n")...)
			if _, err := empty.ImportAlerts(ctx, bytes.NewReader(bad)); !errors.Is(err, projections.ErrAlertRecord) {
				t.Fatalf("import with a bad line: %v", err)
			}
			if rows := scalar[int64](t, empty, `SELECT COUNT(*) FROM alerts`); rows != 0 {
				t.Fatalf("a failed import left %d alerts", rows)
			}
		})
	}
	if a, b := exports["sqlite"], exports["postgres"]; a != nil && b != nil && !bytes.Equal(a, b) {
		t.Errorf("the export differs between SQLite (%d bytes) and PostgreSQL (%d bytes)", len(a), len(b))
	}
}

// TestReadAlertsRefuses: every line must be a row of the alerts table; an error names the
// line and the column, never the value.
func TestReadAlertsRefuses(t *testing.T) {
	const secret = "S3CR3T"
	row := func(edit func(m map[string]string)) string {
		m := map[string]string{
			"id": `"a1"`, "view": `"consent"`, "rule": `"consent_violation"`, "agentId": `""`, "interactionIds": `"[\"i-1\"]"`,
			"recordingId": `""`, "scope": `"interaction:i-1"`, "triggeredAt": `"2026-03-02T10:00:00.000000000Z"`,
			"raisedAt": `"2026-03-02T10:00:01.000000000Z"`, "seq": `7`, "retractedAt": `null`, "published": `true`, "body": `"{}"`,
		}
		edit(m)
		var parts []string
		for _, k := range []string{"id", "view", "rule", "agentId", "interactionIds", "recordingId", "scope", "triggeredAt", "raisedAt", "seq", "retractedAt", "published", "body", "extra"} {
			if v, ok := m[k]; ok {
				parts = append(parts, fmt.Sprintf("%q:%s", k, v))
			}
		}
		return "{" + strings.Join(parts, ",") + "}\n"
	}
	good := row(func(map[string]string) {})
	if n, err := projections.ReadAlerts(strings.NewReader(good), func(projections.AlertRecord) error { return nil }); n != 1 || err != nil {
		t.Fatalf("a valid row: %d, %v", n, err)
	}
	for _, c := range []struct {
		name, in, want string
	}{
		{"not JSON", good + secret + "\n", "line 2"},
		{"unknown member", row(func(m map[string]string) { m["extra"] = `"` + secret + `"` }), "unknown field"},
		{"time", row(func(m map[string]string) { m["raisedAt"] = `"` + secret + `"` }), "raisedAt"},
		{"retracted time", row(func(m map[string]string) { m["retractedAt"] = `"2026-03-02 ` + secret + `"` }), "retractedAt"},
		{"view", row(func(m map[string]string) { m["view"] = `"` + secret + `"` }), "view"},
		{"scope", row(func(m map[string]string) { m["scope"] = `"patient:` + secret + `"` }), "scope"},
		{"interactions", row(func(m map[string]string) { m["interactionIds"] = `"` + secret + `"` }), "interactionIds"},
		{"body", row(func(m map[string]string) { m["body"] = `"` + secret + `"` }), "body"},
		{"no id", row(func(m map[string]string) { m["id"] = `""` }), "id: required"},
		{"type", row(func(m map[string]string) { m["seq"] = `"` + secret + `"` }), "seq"},
		{"id twice", good + good, "line 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := projections.ReadAlerts(strings.NewReader(c.in), func(projections.AlertRecord) error { return nil })
			if !errors.Is(err, projections.ErrAlertRecord) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), secret) {
				t.Fatalf("got %v, want %s naming %q without the value", err, projections.ErrAlertRecord, c.want)
			}
		})
	}
}
