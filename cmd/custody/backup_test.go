package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
// -short), runs every report, backs the log up, restores it into a fresh data directory,
// rebuilds the views there and runs the reports again: byte-identical, integrity block
// (tree size, Merkle root, signed checkpoint, parameters, body hash) included. The
// restored log verifies against the original's signed checkpoints.
//
// Full size (about 11 minutes on 2 cores, past go test's default 10-minute timeout;
// the restore alone takes 4, the server syncing each restored message):
//
//	go test -count=1 -timeout 30m -run TestBackupRestoreMillion ./cmd/custody
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
	for _, name := range projections.ReportNames {
		if name == projections.AlertsReport {
			continue // below
		}
		if before[name] != after[name] {
			t.Errorf("report %s differs after backup, restore and rebuild (%d vs %d bytes)", name, len(before[name]), len(after[name]))
		}
		if !strings.Contains(after[name], `"treeSize"`) || !strings.Contains(after[name], `"checkpoint"`) {
			t.Errorf("report %s carries no integrity block", name)
		}
	}
	// The alerts report lists the store's alert outbox, whose raisedAt times come from
	// the raising process's clock. A rebuild raises no alerts, so the restored store's
	// list is empty; the alerts themselves are in the restored CUSTODY_ALERTS stream.
	var ar struct {
		LogPosition uint64            `json:"logPosition"`
		Alerts      []json.RawMessage `json:"alerts"`
	}
	json.Unmarshal([]byte(before[projections.AlertsReport]), &ar)
	raised := len(ar.Alerts)
	json.Unmarshal([]byte(after[projections.AlertsReport]), &ar)
	if ar.LogPosition != uint64(p) {
		t.Errorf("restored alerts report at log position %d, want %d", ar.LogPosition, p)
	}
	t.Logf("alerts report: %d alerts before, %d in the restored store", raised, len(ar.Alerts))

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

// TestBackupRestoreRefusals: a damaged backup is refused naming the file, and nothing
// is restored; with custody's generated key the checkpoints stay in the backup and
// --verify checks them with the backup's public key; a non-empty target is refused.
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
