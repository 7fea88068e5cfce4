package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// backupAlertsFile holds the projection store's alerts table in a backup: every row,
// every column, as JSON Lines (projections.AlertRecord). It is the one part of the store
// a rebuild cannot give back: raisedAt and retractedAt come from the clock of the
// process that raised and retracted each alert (docs/adr/0008-backup.md).
const backupAlertsFile = "alerts.jsonl"

// backupAlerts exports the alerts table into the backup. It runs before any stream is
// snapshotted: every alert it holds was raised at a sequence the events' snapshot
// holds, and every alert it marks published was acknowledged by the alerts stream
// before that stream's snapshot, so it is in it. An alert published in between is in
// both, marked unpublished: the outbox publishes it again after a restore, with its id
// (the Nats-Msg-Id and the SIEM's Idempotency-Key), never lost.
func (g *globals) backupAlerts(ctx context.Context, sess *session, out string) (int, error) {
	if sess.store == nil {
		if err := g.openStore(ctx, sess); err != nil {
			return 0, err
		}
	}
	f, err := os.OpenFile(filepath.Join(out, backupAlertsFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup alerts: %w", err)
	}
	n, err := sess.store.ExportAlerts(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("backup alerts: %w", err)
	}
	return n, nil
}

// backupAlertsPlan is what a restore does with the backup's alerts table.
type backupAlertsPlan struct {
	listed bool // the manifest lists the alerts file (checked against its SHA-256)
	rows   int
}

// checkBackupAlerts checks the backup's alerts file before anything is restored: listed
// in the manifest (VerifyBackup has checked its size and SHA-256), every line a valid row
// of the alerts table, each raised at a sequence of the backup's events. A backup made
// before alerts were part of backups does not list it; that is not an error.
func checkBackupAlerts(from string, m streams.Manifest) (backupAlertsPlan, error) {
	var p backupAlertsPlan
	for _, f := range m.Files {
		if f.Path == backupAlertsFile {
			p.listed = true
		}
	}
	if !p.listed {
		return p, nil
	}
	last := int64(-1)
	for _, s := range m.Streams {
		if s.Name == streams.EventsStream {
			last = int64(s.LastSeq)
		}
	}
	name := filepath.Join(from, backupAlertsFile)
	f, err := os.Open(name)
	if err != nil {
		return p, err
	}
	defer f.Close()
	p.rows, err = projections.ReadAlerts(f, func(a projections.AlertRecord) error {
		if last >= 0 && a.Seq > last {
			return fmt.Errorf("%w: seq: beyond the backup's last event %d", projections.ErrAlertRecord, last)
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// restoreAlerts loads the backup's alerts table into the fresh store, after the rebuild
// and before any live projector runs on it, or says on stderr that the backup has none.
func (g *globals) restoreAlerts(ctx context.Context, sess *session, from string, p backupAlertsPlan, rebuilt bool) error {
	if !p.listed {
		extra := ""
		if fileExists(filepath.Join(from, backupAlertsFile)) {
			extra = fmt.Sprintf(" (%s is there, but not in the manifest: not used)", backupAlertsFile)
		}
		fmt.Fprintf(g.stderr, "alerts: not part of this backup%s (made before backups held the alerts table): the alerts report starts empty, "+
			"alerts are raised again with new raisedAt times as the views catch up, and the original alerts stay in the restored %s stream\n",
			extra, streams.AlertsStream)
		return nil
	}
	f, err := os.Open(filepath.Join(from, backupAlertsFile))
	if err != nil {
		return fmt.Errorf("restore alerts: %w", err)
	}
	defer f.Close()
	n, err := sess.store.ImportAlerts(ctx, f)
	if err != nil {
		if errors.Is(err, projections.ErrAlertsPresent) {
			return fmt.Errorf("restore alerts: %w: restore into a fresh --data", err)
		}
		return fmt.Errorf("restore alerts: %w", err)
	}
	fmt.Fprintf(g.stdout, "alerts: %d restored into the projection store\n", n)
	if !rebuilt && n > 0 {
		fmt.Fprintf(g.stderr, "alerts: the views were not rebuilt (--no-rebuild): run custody rebuild before any other command, "+
			"or the first catch-up replays the log live over the restored alerts and may retract or raise them again\n")
	}
	return nil
}
