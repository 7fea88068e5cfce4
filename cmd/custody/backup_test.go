package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// backupAsOf is the instant every report of these tests is evaluated at: after the
// simulated traffic (28 days from 2026-03-02).
const backupAsOf = "2026-04-01T00:00:00Z"

// jsonReports runs every report as JSON at backupAsOf and returns each without its
// executionId (a fresh UUID per run: the only member that may differ).
func jsonReports(t *testing.T, data string, keyFlags ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range projections.ReportNames {
		args := append([]string{"report", name, "--data", data, "--as-of", backupAsOf, "--format", "json"}, keyFlags...)
		code, o, errs := run(t, nil, args...)
		if code != 0 {
			t.Fatalf("report %s on %s: exit %d\n%s", name, data, code, errs)
		}
		out[name] = withoutExecution(o)
	}
	return out
}

// sameReports fails the test for each report that is not byte-identical in got, and for
// each without an integrity block.
func sameReports(t *testing.T, when string, want, got map[string]string) {
	t.Helper()
	for _, name := range projections.ReportNames {
		if want[name] != got[name] {
			t.Errorf("report %s differs %s (%d vs %d bytes)\n%s", name, when, len(want[name]), len(got[name]), firstDiff(want[name], got[name]))
		}
		if !strings.Contains(got[name], `"treeSize"`) || !strings.Contains(got[name], `"checkpoint"`) {
			t.Errorf("report %s carries no integrity block", name)
		}
	}
}

// firstDiff shows where two reports part (ids and times only: test data).
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(i-200, 0)
	return fmt.Sprintf("at byte %d:\n  want ...%s\n  got  ...%s", i, a[from:min(i+200, len(a))], b[from:min(i+200, len(b))])
}

// alertsOf decodes an alerts report.
func alertsOf(t *testing.T, report string) projections.AlertsResult {
	t.Helper()
	var r projections.AlertsResult
	if err := json.Unmarshal([]byte(report), &r); err != nil {
		t.Fatalf("alerts report: %v", err)
	}
	return r
}

// streamState reads the state of a stream in a data directory no process holds.
func streamState(t *testing.T, data, name string) jetstream.StreamState {
	t.Helper()
	e, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State
}

// TestBackupRestoreMillion publishes a million simulated events (about 20,000 under
// -short), runs every report (the catch-up raises and retracts alerts), backs the log
// and the alerts table up, restores them into a fresh data directory, rebuilds the views
// there and runs the six reports again: byte-identical, the alerts report's raisedAt,
// status and retractedAt and the integrity block (tree size, Merkle root, signed
// checkpoint, parameters, body hash) included; once more after a custody rebuild of the
// restored store. The restored log verifies against the original's signed checkpoints.
//
// Full size (about 19 minutes on 2 cores, past go test's default 10-minute timeout:
// the first catch-up 7, the restore 7, the server syncing each restored message, and
// the two rounds of reports on the restored store with the rebuild between them 4):
//
//	go test -count=1 -timeout 40m -run TestBackupRestoreMillion ./cmd/custody
func TestBackupRestoreMillion(t *testing.T) {
	interactions, want := "115600", 1_000_000
	if testing.Short() {
		interactions, want = "2300", 20_000
	}
	root := t.TempDir()
	orig, restored, backup := filepath.Join(root, "orig"), filepath.Join(root, "restored"), filepath.Join(root, "backup")
	start := time.Now()
	lap := func(what string) {
		t.Logf("%-28s %s", what, time.Since(start).Round(time.Millisecond))
		start = time.Now()
	}

	// A signing key from a secret store, as in production: the same key on both sides.
	keys := filepath.Join(root, "keys")
	if code, _, errs := run(t, nil, "keygen", "--name", "custody-backup-test", "--out", keys); code != 0 {
		t.Fatalf("keygen: %s", errs)
	}
	keyFlags := []string{"--signing-key", filepath.Join(keys, "custody-backup-test.key"), "--verify-key", filepath.Join(keys, "custody-backup-test.pub")}

	in := simulate(t, "--seed", "7", "--interactions", interactions, "--agents", "400", "--days", "28")
	code, _, errs := run(t, in, "publish", "--data", orig, "-")
	p, _, r := lastLine(t, errs)
	if code != 0 || r != 0 || p < want {
		t.Fatalf("publish: exit %d, published %d rejected %d, want at least %d\n%s", code, p, r, want, tail(errs))
	}
	in = nil
	lap("publish " + interactions + " interactions")

	before := jsonReports(t, orig, keyFlags...)
	lap("reports (catch-up) original")

	code, out, errs := run(t, nil, "backup", "--data", orig, "--out", backup)
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, errs)
	}
	lap("backup")
	t.Logf("backup:\n%s", out)
	m, err := streams.VerifyBackup(backup)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(m.Files, func(f streams.FileSum) bool { return f.Path == "alerts.jsonl" }) {
		t.Fatalf("the manifest does not list alerts.jsonl: %+v", m.Files)
	}
	// The traffic raises several rules, and retracts some of what it raised: the
	// comparison below covers raisedAt, status and retractedAt.
	rules, statuses := map[string]int{}, map[string]int{}
	for _, a := range alertsOf(t, before[projections.AlertsReport]).Alerts {
		rules[a.Rule]++
		statuses[a.Status]++
	}
	t.Logf("alerts report before the backup: rules %v, statuses %v", rules, statuses)
	if len(rules) < 3 || statuses["active"] == 0 || statuses["retracted"] == 0 {
		t.Fatalf("the traffic raised too little to compare: rules %v, statuses %v", rules, statuses)
	}
	if m.Streams[len(m.Streams)-1].Name != streams.EventsStream || m.Streams[len(m.Streams)-1].LastSeq != uint64(p) {
		t.Fatalf("manifest streams %+v, want CUSTODY_EVENTS last at %d", m.Streams, p)
	}
	last, err := streams.LastBackup(orig)
	if err != nil || !last.Equal(m.Created) {
		t.Fatalf("last backup recorded %v %v, manifest %v", last, err, m.Created)
	}

	args := append([]string{"restore", "--from", backup, "--data", restored, "--verify"}, keyFlags...)
	code, out, errs = run(t, nil, args...)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errs)
	}
	lap("restore + rebuild + verify")
	t.Logf("restore:\n%s", out)
	if !strings.Contains(out, "checkpoints:") || !strings.Contains(out, "copied into") || !strings.Contains(out, "rebuilt ") {
		t.Fatalf("restore output:\n%s", out)
	}

	after := jsonReports(t, restored, keyFlags...)
	lap("reports restored")
	sameReports(t, "after backup, restore and rebuild", before, after)
	if ar := alertsOf(t, after[projections.AlertsReport]); ar.LogPosition != uint64(p) {
		t.Errorf("restored alerts report at log position %d, want %d", ar.LogPosition, p)
	}

	// A rebuild of the restored store replays the log into fresh views and leaves the
	// restored alerts table as it is: the same six reports again.
	if code, _, errs := run(t, nil, "rebuild", "--data", restored); code != 0 {
		t.Fatalf("rebuild restored: exit %d\n%s", code, errs)
	}
	lap("rebuild restored")
	sameReports(t, "after a rebuild of the restored store", before, jsonReports(t, restored, keyFlags...))
	lap("reports rebuilt")

	// verify, as an auditor would run it, against the backup's checkpoints.
	code, out, errs = run(t, nil, "verify", "--data", restored, "--checkpoints", filepath.Join(backup, "checkpoints"),
		"--verify-key", filepath.Join(keys, "custody-backup-test.pub"))
	if code != 0 {
		t.Fatalf("verify restored: exit %d\n%s\n%s", code, out, errs)
	}
	lap("verify restored")
	// Every alert of the original is in the restored stream (the restored store may have
	// published alerts of its own since).
	if st := streamState(t, restored, streams.AlertsStream); st.Msgs < m.Streams[2].Messages {
		t.Fatalf("restored alerts stream: %d messages, backup %d", st.Msgs, m.Streams[2].Messages)
	}

	// A second restore into the restored store is refused: a restore never replaces a log.
	code, _, errs = run(t, nil, "restore", "--from", backup, "--data", restored, "--force")
	if code == 0 || !strings.Contains(errs, "never replaces an existing log") {
		t.Fatalf("restore over a log: exit %d\n%s", code, errs)
	}
}

// TestBackupRestoreRefusals: a damaged backup (a snapshot, or the alerts table) is
// refused naming the file, and nothing is restored; a backup without the alerts table
// (made before backups held it) restores, saying so; with custody's generated key the
// checkpoints stay in the backup and --verify checks them with the backup's public key;
// a non-empty target is refused.
func TestBackupRestoreRefusals(t *testing.T) {
	root := t.TempDir()
	orig, backup := filepath.Join(root, "orig"), filepath.Join(root, "backup")
	in := simulate(t, "--seed", "8", "--interactions", "300")
	if code, _, errs := run(t, in, "publish", "--data", orig, "-"); code != 0 {
		t.Fatalf("publish: %s", errs)
	}
	// Reports sign checkpoints with the key custody generates in the data directory.
	if code, _, errs := run(t, nil, "report", "unauthorized", "--data", orig, "--as-of", backupAsOf); code != 0 {
		t.Fatalf("report: %s", errs)
	}
	if code, _, errs := run(t, nil, "backup", "--data", orig, "--out", backup, "--streams", "bogus"); code == 0 || !strings.Contains(errs, "--streams") {
		t.Fatalf("bad --streams: %d %s", code, errs)
	}
	if code, _, errs := run(t, nil, "backup", "--data", orig, "--out", backup); code != 0 {
		t.Fatalf("backup: %s", errs)
	}
	if code, _, errs := run(t, nil, "backup", "--data", orig, "--out", backup); code == 0 || !strings.Contains(errs, "not empty") {
		t.Fatalf("backup over a backup: %d %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(backup, "keys", "checkpoint.pub")); err != nil {
		t.Fatal("the backup lacks custody's public key")
	}
	if _, err := os.Stat(filepath.Join(backup, "keys", "checkpoint.key")); err == nil {
		t.Fatal("the backup holds a private key")
	}

	t.Run("damaged", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		if err := os.CopyFS(dir, os.DirFS(backup)); err != nil {
			t.Fatal(err)
		}
		snap := filepath.Join(dir, streams.EventsStream, streams.SnapshotDataFile)
		b, _ := os.ReadFile(snap)
		b[len(b)/3] ^= 1
		os.WriteFile(snap, b, 0o600)
		target := filepath.Join(t.TempDir(), "data")
		code, _, errs := run(t, nil, "restore", "--from", dir, "--data", target)
		if code == 0 || !strings.Contains(errs, snap) || !strings.Contains(errs, "SHA-256") {
			t.Fatalf("damaged backup: exit %d\n%s", code, errs)
		}
		if _, err := os.Stat(target); err == nil {
			t.Fatal("a refused restore touched the target")
		}
	})
	// The alerts table is listed in the manifest like every other file: altered, the
	// backup is refused before anything is restored.
	t.Run("tampered alerts", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		if err := os.CopyFS(dir, os.DirFS(backup)); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "alerts.jsonl")
		b, _ := os.ReadFile(file)
		// A raisedAt a year earlier: still a valid row, only the manifest tells.
		i := bytes.Index(b, []byte(`"raisedAt":"2026-`))
		if i < 0 {
			t.Fatalf("no alert in the backup's alerts table (%d bytes)", len(b))
		}
		b[i+len(`"raisedAt":"202`)] = '5'
		os.WriteFile(file, b, 0o600)
		target := filepath.Join(t.TempDir(), "data")
		code, _, errs := run(t, nil, "restore", "--from", dir, "--data", target)
		if code == 0 || !strings.Contains(errs, file) || !strings.Contains(errs, "SHA-256") {
			t.Fatalf("tampered alerts: exit %d\n%s", code, errs)
		}
		if _, err := os.Stat(target); err == nil {
			t.Fatal("a refused restore touched the target")
		}

		// Written with a manifest that matches, a row that is not one of the alerts table
		// is refused too, before anything is restored, naming the line, not the value.
		os.WriteFile(file, append(b, `{"id":"x","view":"consent","rule":"consent_violation","agentId":"","interactionIds":"[]","recordingId":"","scope":"interaction:x","triggeredAt":"yesterday","raisedAt":"2026-03-02T00:00:00.000000000Z","seq":1,"retractedAt":null,"published":true,"body":"{}"}`+"\n"...), 0o600)
		rewriteManifest(t, dir)
		code, _, errs = run(t, nil, "restore", "--from", dir, "--data", target)
		if code == 0 || !strings.Contains(errs, "not an alert record") || !strings.Contains(errs, "triggeredAt") || strings.Contains(errs, "yesterday") {
			t.Fatalf("invalid alerts: exit %d\n%s", code, errs)
		}
		if _, err := os.Stat(target); err == nil {
			t.Fatal("a refused restore touched the target")
		}
	})
	// A backup made before backups held the alerts table restores, and says so.
	t.Run("no alerts table", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		if err := os.CopyFS(dir, os.DirFS(backup)); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "alerts.jsonl"))
		rewriteManifest(t, dir)
		target := filepath.Join(t.TempDir(), "data")
		code, out, errs := run(t, nil, "restore", "--from", dir, "--data", target)
		if code != 0 || !strings.Contains(errs, "alerts: not part of this backup") || strings.Contains(out, "alerts:") {
			t.Fatalf("restore without alerts: exit %d\n%s\n%s", code, out, errs)
		}
	})
	t.Run("generated key", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "data")
		code, out, errs := run(t, nil, "restore", "--from", backup, "--data", target, "--verify")
		if code != 0 {
			t.Fatalf("restore: exit %d\n%s\n%s", code, out, errs)
		}
		if !strings.Contains(out, "signed by another key") {
			t.Fatalf("restore did not say where the checkpoints are:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(target, "checkpoints")); err == nil {
			t.Fatal("checkpoints of another key were copied into the checkpoint directory")
		}
		// The restored store works: a report signs with its own new key.
		if code, _, errs := run(t, nil, "report", "unauthorized", "--data", target, "--as-of", backupAsOf); code != 0 {
			t.Fatalf("report on the restored store: %s", errs)
		}
	})
	t.Run("not empty", func(t *testing.T) {
		code, _, errs := run(t, nil, "restore", "--from", backup, "--data", orig, "--force")
		if code == 0 || !strings.Contains(errs, "never replaces an existing log") {
			t.Fatalf("restore over the original: exit %d\n%s", code, errs)
		}
		// An empty log with projections of another log is refused too.
		other := filepath.Join(t.TempDir(), "data")
		if code, _, errs := run(t, bytes.Clone(in[:bytes.IndexByte(in, '\n')+1]), "publish", "--data", other, "-"); code != 0 {
			t.Fatalf("publish: %s", errs)
		}
		if code, _, errs := run(t, nil, "restore", "--from", backup, "--data", other); code == 0 || !strings.Contains(errs, "never replaces") {
			t.Fatalf("restore over another log: exit %d\n%s", code, errs)
		}
	})
}

// rewriteManifest writes a backup's manifest again over the files it holds now, as a
// backup of another version (or an attacker who can write the whole backup) would.
func rewriteManifest(t *testing.T, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, streams.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m streams.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestorePostgres: the alerts table of a PostgreSQL store is backed up and
// restored into another PostgreSQL store and into SQLite; the six reports are
// byte-identical on both, also after a rebuild. Skipped without CUSTODY_TEST_POSTGRES.
func TestBackupRestorePostgres(t *testing.T) {
	origStore, restoredStore := testPostgres(t), testPostgres(t)
	root := t.TempDir()
	orig, backup := filepath.Join(root, "orig"), filepath.Join(root, "backup")
	keys := filepath.Join(root, "keys")
	if code, _, errs := run(t, nil, "keygen", "--name", "custody-backup-pg", "--out", keys); code != 0 {
		t.Fatalf("keygen: %s", errs)
	}
	keyFlags := []string{"--signing-key", filepath.Join(keys, "custody-backup-pg.key"), "--verify-key", filepath.Join(keys, "custody-backup-pg.pub")}
	in := simulate(t, "--seed", "9", "--interactions", "800", "--agents", "60", "--days", "28")
	if code, _, errs := run(t, in, "publish", "--data", orig, "--store", origStore, "-"); code != 0 {
		t.Fatalf("publish: %s", tail(errs))
	}
	before := jsonReports(t, orig, append([]string{"--store", origStore}, keyFlags...)...)
	if n := len(alertsOf(t, before[projections.AlertsReport]).Alerts); n == 0 {
		t.Fatal("the traffic raised no alert")
	}
	if code, out, errs := run(t, nil, "backup", "--data", orig, "--store", origStore, "--out", backup); code != 0 {
		t.Fatalf("backup: exit %d\n%s\n%s", code, out, errs)
	}
	for _, c := range []struct{ name, store string }{{"postgres", restoredStore}, {"sqlite", ""}} {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			flags := keyFlags
			if c.store != "" {
				flags = append([]string{"--store", c.store}, keyFlags...)
			}
			if code, out, errs := run(t, nil, append([]string{"restore", "--from", backup, "--data", data}, flags...)...); code != 0 || !strings.Contains(out, "alerts: ") {
				t.Fatalf("restore: exit %d\n%s\n%s", code, out, errs)
			}
			sameReports(t, "after backup and restore", before, jsonReports(t, data, flags...))
			if code, _, errs := run(t, nil, append([]string{"rebuild", "--data", data}, flags[:len(flags)-len(keyFlags)]...)...); code != 0 {
				t.Fatalf("rebuild: exit %d\n%s", code, errs)
			}
			sameReports(t, "after a rebuild of the restored store", before, jsonReports(t, data, flags...))
		})
	}
}
