package streams_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/streams"
)

// startBare starts an embedded server on a fresh directory without creating any stream
// (the target of a restore).
func startBare(t testing.TB, dir string) (*streams.Embedded, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	e, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := e.Connect()
	if err != nil {
		e.Shutdown()
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return e, nc, js
}

// fillLog publishes n events in atomic batches, then one message with a header of its
// own (custody's log holds whatever its publishers wrote).
func fillLog(t testing.TB, nc *nats.Conn, js jetstream.JetStream, n int) {
	t.Helper()
	ctx := context.Background()
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{AtomicBatch: 500})
	if err != nil {
		t.Fatal(err)
	}
	if c := count(pub.PublishAll(ctx, consentEvents(t, n))); c[streams.Stored] != n {
		t.Fatalf("published %v, want %d stored", c, n)
	}
	m := nats.NewMsg(streams.EventSubjectPrefix + "foreign.thing")
	m.Header.Set("X-Custody-Test", "kept")
	m.Header.Set(nats.MsgIdHdr, "foreign-1")
	m.Data = []byte("not an event")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func snapshotAll(t testing.TB, nc *nats.Conn, dir string, cfg streams.SnapshotConfig) streams.Manifest {
	t.Helper()
	m := streams.Manifest{Created: time.Now().UTC(), Version: "test", Server: nc.ConnectedServerVersion()}
	for _, name := range []string{streams.ReportsStream, streams.EventsStream} {
		st, err := streams.Snapshot(context.Background(), nc, name, filepath.Join(dir, name), cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.Streams = append(m.Streams, streams.StreamBackup{Name: name, Dir: name, StreamState: st})
	}
	if _, err := streams.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSnapshotRestoreRoundTrip snapshots custody's events stream (and an empty one) and
// restores them on another server: every message has the same sequence, subject,
// headers, bytes and stored time, and the restored streams keep custody's settings.
func TestSnapshotRestoreRoundTrip(t *testing.T) {
	n := 6000
	if testing.Short() {
		n = 3000
	}
	for _, tc := range []struct {
		name string
		cfg  streams.SnapshotConfig
	}{
		{"defaults", streams.SnapshotConfig{}},
		{"small chunks and window", streams.SnapshotConfig{ChunkSize: 2048, WindowSize: 8192}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			src, snc, sjs := startLog(t, filepath.Join(root, "src"))
			defer stopLog(src, snc)
			fillLog(t, snc, sjs, n)

			backup := filepath.Join(root, "backup")
			m := snapshotAll(t, snc, backup, tc.cfg)
			if got := m.Streams[1]; got.Messages != uint64(n+1) || got.FirstSeq != 1 || got.LastSeq != uint64(n+1) {
				t.Fatalf("events snapshot state %+v, want %d messages", got, n+1)
			}
			if _, err := streams.VerifyBackup(backup); err != nil {
				t.Fatal(err)
			}

			dst, dnc, djs := startBare(t, filepath.Join(root, "dst"))
			defer stopLog(dst, dnc)
			for _, s := range m.Streams {
				st, err := streams.Restore(ctx, dnc, filepath.Join(backup, s.Dir), tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				if st != s.StreamState {
					t.Fatalf("%s restored as %+v, snapshot %+v", s.Name, st, s.StreamState)
				}
			}
			if err := streams.EnsureStreams(ctx, djs, streams.LogConfig{}); err != nil {
				t.Fatalf("restored streams fail custody's settings: %v", err)
			}
			a, _ := sjs.Stream(ctx, streams.EventsStream)
			b, _ := djs.Stream(ctx, streams.EventsStream)
			if cfg := b.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge || cfg.Discard != jetstream.DiscardNew {
				t.Fatalf("restored config lost immutability: %+v", cfg)
			}
			for seq := uint64(1); seq <= uint64(n+1); seq++ {
				x, err := a.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				y, err := b.GetMsg(ctx, seq)
				if err != nil {
					t.Fatalf("restored seq %d: %v", seq, err)
				}
				if x.Subject != y.Subject || !bytes.Equal(x.Data, y.Data) || !x.Time.Equal(y.Time) || !reflect.DeepEqual(x.Header, y.Header) {
					t.Fatalf("seq %d differs:\n%s %s %v %s\n%s %s %v %s", seq, x.Subject, x.Time, x.Header, x.Data, y.Subject, y.Time, y.Header, y.Data)
				}
			}
			if h, _ := b.GetMsg(ctx, uint64(n+1)); h.Header.Get("X-Custody-Test") != "kept" {
				t.Fatalf("header lost: %v", h.Header)
			}

			// The offline reader sees the same messages.
			var k uint64
			_, err := streams.ReadSnapshot(filepath.Join(backup, streams.EventsStream, streams.SnapshotDataFile), func(sm streams.SnapshotMsg) error {
				k++
				x, err := a.GetMsg(ctx, sm.Seq)
				if err != nil {
					return err
				}
				if sm.Seq != k || sm.Subject != x.Subject || !bytes.Equal(sm.Data, x.Data) || !sm.Time.Equal(x.Time) {
					t.Fatalf("offline seq %d differs", sm.Seq)
				}
				return nil
			})
			if err != nil || k != uint64(n+1) {
				t.Fatalf("read snapshot: %d messages, %v", k, err)
			}

			// The restored log goes on at the next sequence.
			ack, err := djs.Publish(ctx, streams.EventSubjectPrefix+"foreign.thing", []byte("after"))
			if err != nil || ack.Sequence != uint64(n+2) {
				t.Fatalf("publish after restore: %v %v", ack, err)
			}
		})
	}
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at = int64(len(b)) / 2
	}
	b[at] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotCorruptionDetected damages a backup in several ways: the manifest check
// names the file, and a damaged snapshot restored without the manifest check is refused
// by the server (S2 checksums) and by the offline reader.
func TestSnapshotCorruptionDetected(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src, snc, sjs := startLog(t, filepath.Join(root, "src"))
	fillLog(t, snc, sjs, 2000)
	good := filepath.Join(root, "backup")
	snapshotAll(t, snc, good, streams.SnapshotConfig{})
	stopLog(src, snc)

	copyBackup := func(t *testing.T) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "backup")
		if err := os.CopyFS(dir, os.DirFS(good)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	data := func(dir string) string { return filepath.Join(dir, streams.EventsStream, streams.SnapshotDataFile) }

	t.Run("flipped byte", func(t *testing.T) {
		dir := copyBackup(t)
		flipByte(t, data(dir), -1)
		_, err := streams.VerifyBackup(dir)
		if !errors.Is(err, streams.ErrBackupDamaged) || !strings.Contains(err.Error(), data(dir)) || !strings.Contains(err.Error(), "SHA-256") {
			t.Fatalf("verify: %v", err)
		}
		if _, err := streams.ReadSnapshot(data(dir), func(streams.SnapshotMsg) error { return nil }); !errors.Is(err, streams.ErrBackupDamaged) {
			t.Fatalf("offline reader: %v", err)
		}
		dst, dnc, djs := startBare(t, filepath.Join(t.TempDir(), "dst"))
		defer stopLog(dst, dnc)
		if _, err := streams.Restore(ctx, dnc, filepath.Join(dir, streams.EventsStream), streams.SnapshotConfig{}); err == nil {
			t.Fatal("the server restored a damaged snapshot")
		}
		if s, err := djs.Stream(ctx, streams.EventsStream); err == nil && s.CachedInfo().State.Msgs == 2001 {
			t.Fatal("a damaged snapshot was restored whole")
		}
	})
	t.Run("truncated", func(t *testing.T) {
		dir := copyBackup(t)
		b, _ := os.ReadFile(data(dir))
		os.WriteFile(data(dir), b[:len(b)*2/3], 0o600)
		if _, err := streams.VerifyBackup(dir); !errors.Is(err, streams.ErrBackupDamaged) || !strings.Contains(err.Error(), "bytes, the manifest says") {
			t.Fatalf("verify: %v", err)
		}
		if _, err := streams.ReadSnapshot(data(dir), func(streams.SnapshotMsg) error { return nil }); !errors.Is(err, streams.ErrBackupDamaged) {
			t.Fatalf("offline reader: %v", err)
		}
	})
	t.Run("edited configuration and missing file", func(t *testing.T) {
		dir := copyBackup(t)
		meta := filepath.Join(dir, streams.EventsStream, streams.SnapshotMetaFile)
		b, _ := os.ReadFile(meta)
		os.WriteFile(meta, bytes.Replace(b, []byte(`"deny_delete": true`), []byte(`"deny_delete": false`), 1), 0o600)
		os.Remove(filepath.Join(dir, streams.ReportsStream, streams.SnapshotDataFile))
		_, err := streams.VerifyBackup(dir)
		for _, want := range []string{meta, filepath.Join(dir, streams.ReportsStream, streams.SnapshotDataFile)} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("verify does not name %s: %v", want, err)
			}
		}
	})
	t.Run("no manifest", func(t *testing.T) {
		dir := copyBackup(t)
		os.Remove(filepath.Join(dir, streams.ManifestFile))
		if _, err := streams.VerifyBackup(dir); !errors.Is(err, streams.ErrBackupDamaged) {
			t.Fatalf("verify: %v", err)
		}
	})
}

// TestRestoreRefusesExistingStream: the server never restores over a stream.
func TestRestoreRefusesExistingStream(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src, snc, sjs := startLog(t, filepath.Join(root, "src"))
	defer stopLog(src, snc)
	fillLog(t, snc, sjs, 100)
	backup := filepath.Join(root, "backup")
	snapshotAll(t, snc, backup, streams.SnapshotConfig{})
	_, err := streams.Restore(ctx, snc, filepath.Join(backup, streams.EventsStream), streams.SnapshotConfig{})
	if !errors.Is(err, streams.ErrSnapshot) {
		t.Fatalf("restore over the live stream: %v", err)
	}
	if got := lastSeq(t, sjs); got != 101 {
		t.Fatalf("the live stream changed: %d messages", got)
	}
}

func TestLastBackup(t *testing.T) {
	dir := t.TempDir()
	if _, err := streams.LastBackup(dir); !errors.Is(err, streams.ErrNoBackup) {
		t.Fatalf("no backup yet: %v", err)
	}
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	if err := streams.RecordBackup(dir, streams.BackupRecord{Time: at, Dir: "b", ManifestSHA256: "00", EventsLastSeq: 7}); err != nil {
		t.Fatal(err)
	}
	if got, err := streams.LastBackup(dir); err != nil || !got.Equal(at) {
		t.Fatalf("last backup %v %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, "backup.json"), []byte("{"), 0o600)
	if _, err := streams.LastBackup(dir); err == nil || errors.Is(err, streams.ErrNoBackup) {
		t.Fatalf("unreadable record: %v", err)
	}
}
