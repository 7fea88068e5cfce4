package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/projections/integrity"
	"github.com/custody/custody/streams"
)

// The parts of a backup directory besides the streams (docs/adr/0008-backup.md).
const (
	backupCheckpoints = "checkpoints"         // the signed checkpoints of the data directory
	backupPublicKey   = "keys/checkpoint.pub" // the public half of custody's own key, when it has one
)

// backupOrder is the order streams are snapshotted in: what is derived from the events
// first, the events last, so that every alert, report execution and checkpoint in a
// backup refers to events that are in it too.
var backupOrder = []string{streams.IntegrityStream, streams.ReportsStream, streams.AlertsStream, streams.EventsStream}

func backupCmd(g *globals) *cobra.Command {
	var out, which string
	cmd := &cobra.Command{
		Use:   "backup --out DIR [--streams all|events]",
		Short: "Snapshot the log (JetStream stream snapshots) into a directory with a manifest",
		Long: `Writes a consistent snapshot of each of custody's streams into DIR (which must not
exist or be empty): CUSTODY_EVENTS and, with --streams all (the default), CUSTODY_ALERTS,
CUSTODY_REPORTS and CUSTODY_INTEGRITY. Each stream is a directory with the server's
snapshot (stream.arc.s2: every message at its sequence, with its subject, headers and
stored time) and its configuration and state (backup.json), the layout of
"nats stream backup". The signed checkpoints of the data directory and the public
checkpoint key custody generated, if any, are copied beside them, and the projection
store's alerts table (alerts.jsonl: every alert with its raisedAt, retractedAt and
published flag, which come from the raising process's clock and which no rebuild gives
back) is exported first. manifest.json, written last, lists the streams with their
sequences and every file with its size and SHA-256.

The derived streams are snapshotted before the events, so everything in the backup refers
to events in it. A backup can run while custody serve holds the data directory. The
snapshot is not encrypted, even when the log is (--encryption-key): keep backups on
encrypted storage. On success the time is recorded in DATA/backup.json, which custody
serve exposes as custody_backup_age_seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out: required")
			}
			var names []string
			switch which {
			case "all":
				names = backupOrder
			case "events":
				names = []string{streams.EventsStream}
			default:
				return fmt.Errorf("--streams %q: must be all or events", which)
			}
			return g.backup(cmd.Context(), out, names)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the backup into (must not exist, or be empty)")
	cmd.Flags().StringVar(&which, "streams", "all", "all (the events and custody's own streams) or events")
	return cmd
}

// backup writes the backup of the named streams into out.
func (g *globals) backup(ctx context.Context, out string, names []string) (err error) {
	created, err := prepareBackupDir(out)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cleanBackupDir(out, created)
		}
	}()
	sess, err := g.connect(ctx, connectOpts{readOnly: true})
	if err != nil {
		return err
	}
	defer sess.close()
	m := streams.Manifest{Created: time.Now().UTC(), Version: custodyVersion(), Server: sess.nc.ConnectedServerVersion()}
	// The alerts table first, before any stream (see backupAlerts).
	alerts, err := g.backupAlerts(ctx, sess, out)
	if err != nil {
		return err
	}
	for _, name := range names {
		if _, err := sess.js.Stream(ctx, name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) && name != streams.EventsStream {
				continue // never created: nothing to keep
			}
			return fmt.Errorf("backup %s: %w", name, err)
		}
		if name == streams.EventsStream {
			// Checkpoints are signed only over events already stored: copied before the
			// events' snapshot, none is beyond it.
			if err := g.backupCheckpoints(out); err != nil {
				return err
			}
		}
		st, err := streams.Snapshot(ctx, sess.nc, name, filepath.Join(out, name), streams.SnapshotConfig{})
		if err != nil {
			return err
		}
		m.Streams = append(m.Streams, streams.StreamBackup{Name: name, Dir: name, StreamState: st})
	}
	sum, err := streams.WriteManifest(out, m)
	if err != nil {
		return err
	}
	m, err = streams.VerifyBackup(out) // read back what was written
	if err != nil {
		return err
	}
	var events uint64
	for _, s := range m.Streams {
		if s.Name == streams.EventsStream {
			events = s.LastSeq
		}
	}
	if err := streams.RecordBackup(g.data, streams.BackupRecord{Time: m.Created, Dir: out, ManifestSHA256: sum, EventsLastSeq: events}); err != nil {
		return err
	}
	printStreams(g.stdout, m.Streams)
	fmt.Fprintf(g.stdout, "alerts: %d rows of the projection store's alerts table in %s\n", alerts, backupAlertsFile)
	fmt.Fprintf(g.stdout, "backup %s: %d files, manifest sha256 %s\n", out, len(m.Files), sum)
	return nil
}

// prepareBackupDir makes sure out is a new or empty directory and says whether it was
// created here.
func prepareBackupDir(out string) (bool, error) {
	entries, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(out, 0o700); err != nil {
			return false, fmt.Errorf("--out: %w", err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("--out: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("--out %s: not empty; a backup is never written over another", out)
	}
	return false, nil
}

// cleanBackupDir removes what a failed backup wrote.
func cleanBackupDir(out string, created bool) {
	if created {
		os.RemoveAll(out)
		return
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(out, e.Name()))
	}
}

// backupCheckpoints copies the signed checkpoints and custody's own public key.
func (g *globals) backupCheckpoints(out string) error {
	files, err := integrity.ReadCheckpoints(g.checkpointDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(files) > 0 {
		dir := filepath.Join(out, backupCheckpoints)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for _, f := range files {
			if _, err := integrity.WriteCheckpoint(dir, f.Signed); err != nil {
				return fmt.Errorf("backup checkpoint %s: %w", f.Name, err)
			}
		}
	}
	pub := strings.TrimSuffix(g.defaultKeyPath(), ".key") + ".pub"
	if b, err := os.ReadFile(pub); err == nil {
		dst := filepath.Join(out, filepath.FromSlash(backupPublicKey))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}
	return nil
}

// custodyVersion names the running build: its module version and, when the build
// recorded it, its VCS revision.
func custodyVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}

func printStreams(w io.Writer, ss []streams.StreamBackup) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tSEQUENCES\tBYTES\tLAST STORED")
	for _, s := range ss {
		last := "-"
		if s.Messages > 0 {
			last = s.LastTime.Format(time.RFC3339Nano)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%d\t%s\n", s.Name, s.Messages, s.FirstSeq, s.LastSeq, s.Bytes, last)
	}
	tw.Flush()
}

type restoreFlags struct {
	from      string
	force     bool
	verify    bool
	noRebuild bool
}

func restoreCmd(g *globals) *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore --from DIR [--data NEWDIR | --nats URL] [--force] [--verify]",
		Short: "Restore the log from a backup, then rebuild the views from it",
		Long: `Checks every file of the backup against its manifest first (a damaged backup is
refused, naming the file), then restores each stream with the server's restore API: the
same messages at the same sequences with the same stored times, so the restored log has
the same Merkle tree, and the backup's signed checkpoints verify against it. Then checks
the restored streams against custody's immutability settings and rebuilds the views and
the timeline index from the log (--no-rebuild leaves both to the first command that
needs them), and loads the backup's alerts table (alerts.jsonl) into the store, so the
alerts report is the original's; the integrity tree catches up on first use. A backup
made before backups held the alerts table restores too (stderr says so): its alerts
report starts empty.

Refused: a stream that exists and is not empty (--force replaces custody's own streams,
never CUSTODY_EVENTS: a restore never replaces an existing log); a data directory whose
projection store or integrity tree already holds another log's state; a data directory a
running custody serve holds (stop it first). A restore that fails part-way leaves the
streams it restored: start again into a fresh --data (or server).

The backup's checkpoints are copied into the checkpoint directory when this process
signs with the key that signed them (the same --signing-key); otherwise they stay in
the backup and in the restored CUSTODY_INTEGRITY stream, and new checkpoints are signed
with the new key (verify with both public keys, as after a key rotation).
--verify then runs custody verify on the restored log against the backup's checkpoints,
with --verify-key or the backup's own public key. Exit status 1 when it fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.from == "" {
				return errors.New("--from: required")
			}
			return g.restore(cmd.Context(), f)
		},
	}
	cmd.Flags().StringVar(&f.from, "from", "", "backup directory (written by custody backup)")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace custody's own non-empty streams (alerts, reports, integrity); never the events")
	cmd.Flags().BoolVar(&f.verify, "verify", false, "verify the restored log against the backup's signed checkpoints")
	cmd.Flags().BoolVar(&f.noRebuild, "no-rebuild", false, "do not rebuild the views (custody rebuild does it later)")
	return cmd
}

// restore restores a backup into the log that --data or --nats names.
func (g *globals) restore(ctx context.Context, f restoreFlags) error {
	m, err := streams.VerifyBackup(f.from)
	if err != nil {
		return fmt.Errorf("backup %s refused: %w", f.from, err)
	}
	known := map[string]bool{}
	for _, n := range backupOrder {
		known[n] = true
	}
	var bad []error
	for _, s := range m.Streams {
		if !known[s.Name] || !filepath.IsLocal(filepath.FromSlash(s.Dir)) {
			bad = append(bad, fmt.Errorf("stream %q in directory %q: not one of custody's streams", s.Name, s.Dir))
		}
	}
	if err := errors.Join(bad...); err != nil {
		return fmt.Errorf("backup %s refused: %w", f.from, err)
	}
	alerts, err := checkBackupAlerts(f.from, m)
	if err != nil {
		return fmt.Errorf("backup %s refused: %w", f.from, err)
	}
	// Events first: if anything is refused or fails, it is best it be the log.
	slices.SortStableFunc(m.Streams, func(a, b streams.StreamBackup) int {
		return boolCmp(a.Name != streams.EventsStream, b.Name != streams.EventsStream)
	})

	sess, err := g.connect(ctx, connectOpts{readOnly: true})
	if err != nil {
		return err
	}
	defer sess.close()
	if sess.held {
		return fmt.Errorf("restore refused: a running custody serve holds %s; stop it first (its projectors would read the log while it is replaced)", g.data)
	}
	replace, err := planRestore(ctx, sess.js, m.Streams, f.force)
	if err != nil {
		return err
	}
	if err := g.openStore(ctx, sess); err != nil {
		return err
	}
	if err := g.checkFreshProjections(ctx, sess); err != nil {
		return err
	}
	var restored []streams.StreamBackup
	for _, s := range m.Streams {
		if replace[s.Name] {
			if err := sess.js.DeleteStream(ctx, s.Name); err != nil {
				return fmt.Errorf("restore %s: remove the stream it replaces: %w", s.Name, err)
			}
		}
		st, err := streams.Restore(ctx, sess.nc, filepath.Join(f.from, filepath.FromSlash(s.Dir)), streams.SnapshotConfig{})
		if err != nil {
			return err
		}
		restored = append(restored, streams.StreamBackup{Name: s.Name, Dir: s.Dir, StreamState: st})
	}
	// The restored streams carry the backup's configuration: they must still meet
	// custody's settings. Streams the backup did not hold are created empty.
	if err := streams.EnsureStreams(ctx, sess.js, streams.LogConfig{}); err != nil {
		return fmt.Errorf("restored streams: %w", err)
	}
	fmt.Fprintf(g.stdout, "restored from %s (backup of %s, custody %s):\n", f.from, m.Created.Format(time.RFC3339), m.Version)
	printStreams(g.stdout, restored)

	if err := g.restoreCheckpoints(f.from); err != nil {
		return err
	}
	if !f.noRebuild {
		res, err := sess.rebuild(ctx, projections.ViewNames, progressFor(g.stderr))
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "rebuilt %s to sequence %d in %s\n", strings.Join(projections.ViewNames, ", "), res.last, res.took.Round(time.Millisecond))
		// The timeline index too, so that the first catch-up does not feed the rebuilt
		// views a log they are already at.
		if _, err := sess.catchUpTimeline(ctx); err != nil {
			return err
		}
	}
	// The alerts table after the rebuild (which raises nothing), before any live
	// projector: those take the restored active alerts as raised.
	if err := g.restoreAlerts(ctx, sess, f.from, alerts, !f.noRebuild); err != nil {
		return err
	}
	if f.verify {
		return g.verifyRestored(ctx, sess, f.from)
	}
	return nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// checkFreshProjections refuses a data directory that holds another log's projections:
// the restored log would be read from a checkpoint that is not its own.
func (g *globals) checkFreshProjections(ctx context.Context, sess *session) error {
	var held []string
	for _, name := range append([]string{projections.TimelineName}, projections.ViewNames...) {
		cp, err := sess.store.Checkpoint(ctx, name)
		if err != nil {
			return err
		}
		if cp > 0 {
			held = append(held, fmt.Sprintf("%s at sequence %d", name, cp))
		}
	}
	if n, err := sess.store.AlertCount(ctx); err != nil {
		return err
	} else if n > 0 {
		held = append(held, fmt.Sprintf("%d alerts", n))
	}
	if st, err := os.Stat(g.treePath()); err == nil && st.Size() > 0 {
		held = append(held, "an integrity tree ("+g.treePath()+")")
	}
	if len(held) > 0 {
		return fmt.Errorf("restore refused: the data directory %s already holds the projections of a log (%s); restore into a fresh --data", g.data, strings.Join(held, ", "))
	}
	return nil
}

// planRestore checks every stream before anything is changed, and returns the existing
// empty (or, with force, replaceable) streams to remove first.
func planRestore(ctx context.Context, js jetstream.JetStream, ss []streams.StreamBackup, force bool) (map[string]bool, error) {
	replace := map[string]bool{}
	var refused []error
	for _, s := range ss {
		have, err := js.Stream(ctx, s.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up stream %s: %w", s.Name, err)
		}
		st := have.CachedInfo().State
		switch {
		case st.Msgs == 0 && st.LastSeq == 0:
			replace[s.Name] = true // created empty by an earlier command: nothing is lost
		case s.Name == streams.EventsStream:
			refused = append(refused, fmt.Errorf("%s exists with %d events (sequences %d-%d): a restore never replaces an existing log, even with --force",
				s.Name, st.Msgs, st.FirstSeq, st.LastSeq))
		case force:
			replace[s.Name] = true
		default:
			refused = append(refused, fmt.Errorf("%s exists with %d messages: give --force to replace it", s.Name, st.Msgs))
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("restore refused, nothing was changed: %w", errors.Join(refused...))
	}
	return replace, nil
}

// restoreCheckpoints copies the backup's checkpoints into the checkpoint directory when
// this process signs with the key that signed them. Under another key they would stand
// in the way of the checkpoints the new key signs at the same sizes.
func (g *globals) restoreCheckpoints(from string) error {
	files, err := integrity.ReadCheckpoints(filepath.Join(from, backupCheckpoints))
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(files) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	signer, err := g.existingSigner()
	if err != nil {
		return err
	}
	if signer == nil || !allSignedBy(files, signer) {
		fmt.Fprintf(g.stdout, "checkpoints: %d in the backup, signed by another key than this data directory's; they stay in %s and in %s; verify with --checkpoints %s and the old and new public keys\n",
			len(files), filepath.Join(from, backupCheckpoints), streams.IntegrityStream, filepath.Join(from, backupCheckpoints))
		return nil
	}
	if err := os.MkdirAll(g.checkpointDir(), 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if _, err := integrity.WriteCheckpoint(g.checkpointDir(), f.Signed); err != nil {
			return fmt.Errorf("restore checkpoint %s: %w", f.Name, err)
		}
	}
	fmt.Fprintf(g.stdout, "checkpoints: %d copied into %s\n", len(files), g.checkpointDir())
	return nil
}

// existingSigner is the key this data directory signs with, without generating one.
func (g *globals) existingSigner() (note.Signer, error) {
	if g.signingKey != "" {
		return integrity.LoadSigner(g.signingKey)
	}
	if _, err := os.Stat(g.defaultKeyPath()); err != nil {
		return nil, nil
	}
	return integrity.LoadSigner(g.defaultKeyPath())
}

// allSignedBy reports whether every checkpoint carries a signature line of the signer's
// key (the signatures themselves are checked by verify).
func allSignedBy(files []integrity.CheckpointFile, s note.Signer) bool {
	for _, f := range files {
		_, err := note.Open(f.Signed, note.VerifierList())
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return false
		}
		if !slices.ContainsFunc(unverified.Note.UnverifiedSigs, func(sig note.Signature) bool {
			return sig.Name == s.Name() && sig.Hash == s.KeyHash()
		}) {
			return false
		}
	}
	return true
}

// verifyRestored verifies the restored log against the backup's checkpoints and the
// restored integrity stream.
func (g *globals) verifyRestored(ctx context.Context, sess *session, from string) error {
	var keys note.Verifiers
	var err error
	switch pub := filepath.Join(from, filepath.FromSlash(backupPublicKey)); {
	case len(g.verifyKeys) > 0:
		keys, err = integrity.LoadVerifiers(g.verifyKeys...)
	case fileExists(pub):
		keys, err = integrity.LoadVerifiers(pub)
	default:
		keys, err = g.verifiers()
	}
	if err != nil {
		return fmt.Errorf("--verify: %w", err)
	}
	rep, err := sess.verify(ctx, verifyRequest{keys: keys, dir: filepath.Join(from, backupCheckpoints), origin: g.origin}, progressFor(g.stderr))
	if err != nil {
		return err
	}
	fmt.Fprint(g.stdout, rep.String())
	if !rep.OK() {
		return exitError{1}
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
