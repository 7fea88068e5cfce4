package streams

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats-server/v2/server/archive"
	"github.com/nats-io/nats.go"
)

// Backups (docs/adr/0008-backup.md) are JetStream stream snapshots: the server's own
// consistent copy of a stream, with every message at its sequence, with its subject,
// headers and stored time, so that a restored log has the same Merkle tree and its
// signed checkpoints stay valid. One directory per stream, in the layout of the NATS
// CLI (`nats stream backup` / `nats stream restore`):
//
//	DIR/manifest.json                 what the backup holds, with the SHA-256 of every file
//	DIR/CUSTODY_EVENTS/stream.arc.s2  the snapshot: S2-compressed NATS archive (NATSARC1)
//	DIR/CUSTODY_EVENTS/backup.json    the stream's configuration and state at the snapshot
//	DIR/CUSTODY_ALERTS/...            the other streams the same way
//	DIR/checkpoints/...               files the caller adds (custody: signed checkpoints)

// Names of the files of a backup.
const (
	// SnapshotDataFile is a stream's snapshot in its directory.
	SnapshotDataFile = "stream.arc.s2"
	// SnapshotMetaFile holds the stream's configuration and state ({"config","state"}),
	// exactly as the server described them when the snapshot was taken.
	SnapshotMetaFile = "backup.json"
	// ManifestFile lists a backup's streams and files.
	ManifestFile = "manifest.json"
	// ManifestFormat names the manifest's format.
	ManifestFormat = "custody-backup/v1"
)

// Errors of backups and restores, checked with errors.Is.
var (
	// ErrBackupDamaged: a file of the backup is missing, or its size or SHA-256 is not
	// the manifest's, or a snapshot does not decode.
	ErrBackupDamaged = errors.New("backup damaged")
	// ErrNoBackup: the data directory records no successful backup.
	ErrNoBackup = errors.New("no backup recorded")
	// ErrSnapshot: the server refused or broke off a snapshot or a restore.
	ErrSnapshot = errors.New("snapshot")
)

// The JetStream API subjects of snapshots and restores (default API prefix).
const (
	apiSnapshot = "$JS.API.STREAM.SNAPSHOT.%s"
	apiRestore  = "$JS.API.STREAM.RESTORE.%s"
)

// SnapshotConfig tunes Snapshot and Restore. The zero value is valid.
type SnapshotConfig struct {
	// ChunkSize is the size of the chunks the server sends (snapshot) or is sent
	// (restore). Optional; default 128 KiB, at most the connection's maximum payload.
	ChunkSize int
	// WindowSize is how many bytes of chunks the server keeps in flight before it waits
	// for acknowledgements. Optional; default 8 MiB.
	WindowSize int
	// Stall is how long a snapshot may go without a chunk, or a chunk of a restore
	// without its acknowledgement, before it is abandoned. Optional; default 30 s.
	Stall time.Duration
}

func (c *SnapshotConfig) setDefaults(nc *nats.Conn) {
	if c.ChunkSize <= 0 {
		c.ChunkSize = 128 << 10
	}
	if mp := int(nc.MaxPayload()); mp > 0 && c.ChunkSize > mp {
		c.ChunkSize = mp
	}
	if c.WindowSize <= 0 {
		c.WindowSize = 8 << 20
	}
	if c.Stall <= 0 {
		c.Stall = 30 * time.Second
	}
}

// StreamState is a stream's extent at a snapshot or after a restore.
type StreamState struct {
	Messages  uint64    `json:"messages"`
	Bytes     uint64    `json:"bytes"`
	FirstSeq  uint64    `json:"firstSeq"`
	LastSeq   uint64    `json:"lastSeq"`
	FirstTime time.Time `json:"firstTime"`
	LastTime  time.Time `json:"lastTime"`
}

// serverState is the server's JSON form of a stream's state.
type serverState struct {
	Msgs      uint64    `json:"messages"`
	Bytes     uint64    `json:"bytes"`
	FirstSeq  uint64    `json:"first_seq"`
	FirstTime time.Time `json:"first_ts"`
	LastSeq   uint64    `json:"last_seq"`
	LastTime  time.Time `json:"last_ts"`
}

// state is the server's state in custody's form. An empty stream's first sequence is
// the one its next message will get (the server says 0 before a stream ever held one).
func (s serverState) state() StreamState {
	if s.Msgs == 0 {
		s.FirstSeq = s.LastSeq + 1
	}
	return StreamState{Messages: s.Msgs, Bytes: s.Bytes, FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, FirstTime: s.FirstTime.UTC(), LastTime: s.LastTime.UTC()}
}

// apiError is the error member of a JetStream API response.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

// snapshotMeta is the content of SnapshotMetaFile, which is also the body of a restore
// request. Config stays raw: it goes back to the server exactly as the server wrote it.
type snapshotMeta struct {
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
}

// Snapshot writes a snapshot of stream into dir (created; it must not hold one already):
// SnapshotDataFile, then SnapshotMetaFile, both synced. The server takes the snapshot
// at one point (messages stored later are not in it), sends it in chunks that are
// acknowledged one by one (flow control), and ends it with a status; the archive is
// then read back completely, which checks its S2 checksums and that it holds every
// message of the state. Consumers are not included: custody's consumers are
// derived state, rebuilt after a restore.
func Snapshot(ctx context.Context, nc *nats.Conn, stream, dir string, cfg SnapshotConfig) (StreamState, error) {
	cfg.setDefaults(nc)
	fail := func(err error) (StreamState, error) {
		return StreamState{}, fmt.Errorf("snapshot %s: %w", stream, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	dataPath, metaPath := filepath.Join(dir, SnapshotDataFile), filepath.Join(dir, SnapshotMetaFile)
	for _, p := range []string{dataPath, metaPath} {
		if _, err := os.Stat(p); err == nil {
			return fail(fmt.Errorf("%s exists: a snapshot is never written over another", p))
		}
	}
	f, err := os.OpenFile(dataPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(err)
	}
	st, meta, err := receiveSnapshot(ctx, nc, stream, f, cfg)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = checkSnapshotFile(dataPath, st)
	}
	if err == nil {
		var b []byte
		if b, err = json.MarshalIndent(meta, "", "  "); err == nil {
			err = writeFileSync(metaPath, append(b, '\n'), 0o600)
		}
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(dataPath)
		os.Remove(metaPath)
		return fail(err)
	}
	return st, nil
}

// receiveSnapshot runs the snapshot protocol: a request naming a delivery subject, then
// chunks on that subject, each acknowledged (an empty reply to its reply subject) once
// written, then an empty message whose status says how the snapshot ended.
func receiveSnapshot(ctx context.Context, nc *nats.Conn, stream string, w io.Writer, cfg SnapshotConfig) (StreamState, snapshotMeta, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return StreamState{}, snapshotMeta{}, err
	}
	defer sub.Unsubscribe()
	// The window bounds what is in flight; allow it all to be pending.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return StreamState{}, snapshotMeta{}, err
	}
	req, _ := json.Marshal(map[string]any{
		"deliver_subject": inbox,
		"no_consumers":    true,
		"chunk_size":      cfg.ChunkSize,
		"window_size":     cfg.WindowSize,
	})
	rctx, cancel := context.WithTimeout(ctx, cfg.Stall)
	resp, err := nc.RequestWithContext(rctx, fmt.Sprintf(apiSnapshot, stream), req)
	cancel()
	if err != nil {
		return StreamState{}, snapshotMeta{}, fmt.Errorf("%w request: %v", ErrSnapshot, err)
	}
	var r struct {
		Error  *apiError       `json:"error"`
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return StreamState{}, snapshotMeta{}, fmt.Errorf("%w response: %v", ErrSnapshot, err)
	}
	if r.Error != nil {
		return StreamState{}, snapshotMeta{}, fmt.Errorf("%w refused: %s (%d)", ErrSnapshot, r.Error.Description, r.Error.ErrCode)
	}
	var ss serverState
	if err := json.Unmarshal(r.State, &ss); err != nil || len(r.Config) == 0 {
		return StreamState{}, snapshotMeta{}, fmt.Errorf("%w response: no configuration or state", ErrSnapshot)
	}
	meta := snapshotMeta{Config: r.Config, State: r.State}
	for {
		mctx, cancel := context.WithTimeout(ctx, cfg.Stall)
		m, err := sub.NextMsgWithContext(mctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return StreamState{}, snapshotMeta{}, ctx.Err()
			}
			return StreamState{}, snapshotMeta{}, fmt.Errorf("%w stalled: no chunk for %s: %v", ErrSnapshot, cfg.Stall, err)
		}
		if len(m.Data) == 0 {
			// The end. The server sends status 204 when it sent chunks, none when the
			// snapshot was empty, and 408 or 500 with a description when it failed.
			if s := m.Header.Get("Status"); s != "" && s != "204" {
				return StreamState{}, snapshotMeta{}, fmt.Errorf("%w failed on the server: %s %s", ErrSnapshot, s, m.Header.Get("Description"))
			}
			return ss.state(), meta, nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return StreamState{}, snapshotMeta{}, err
		}
		if m.Reply != "" {
			if err := m.Respond(nil); err != nil {
				return StreamState{}, snapshotMeta{}, fmt.Errorf("%w acknowledge chunk: %v", ErrSnapshot, err)
			}
		}
	}
}

// checkSnapshotFile reads a snapshot back and checks that it holds exactly the messages
// of its state, in sequence order, and ends with the archive's end marker.
func checkSnapshotFile(path string, want StreamState) error {
	var n, last uint64
	got, err := ReadSnapshot(path, func(m SnapshotMsg) error {
		if m.Seq <= last || m.Seq < want.FirstSeq || m.Seq > want.LastSeq {
			return fmt.Errorf("sequence %d out of order or outside %d-%d", m.Seq, want.FirstSeq, want.LastSeq)
		}
		n, last = n+1, m.Seq
		return nil
	})
	if err != nil {
		return err
	}
	if n != want.Messages || got.LastSeq != want.LastSeq || got.FirstSeq != want.FirstSeq {
		return fmt.Errorf("%w: %s holds %d messages (state %d-%d), the snapshot's state %d messages (%d-%d)",
			ErrBackupDamaged, path, n, got.FirstSeq, got.LastSeq, want.Messages, want.FirstSeq, want.LastSeq)
	}
	return nil
}

// SnapshotMsg is one message of a snapshot, as the server stored it.
type SnapshotMsg struct {
	Seq     uint64
	Subject string
	Time    time.Time
	// Header is the message's header block in NATS wire form ("NATS/1.0\r\n..."), or nil.
	Header []byte
	Data   []byte
}

// ReadSnapshot decodes a snapshot file without a server: it calls fn with every message
// in order (the slices are only valid during the call) and returns the state recorded at
// the head of the archive. A file that is truncated, fails an S2 checksum or lacks the
// end marker is ErrBackupDamaged.
func ReadSnapshot(path string, fn func(SnapshotMsg) error) (StreamState, error) {
	f, err := os.Open(path)
	if err != nil {
		return StreamState{}, err
	}
	defer f.Close()
	damaged := func(err error) (StreamState, error) {
		return StreamState{}, fmt.Errorf("%w: %s: %v", ErrBackupDamaged, path, err)
	}
	ar := archive.NewReader(s2.NewReader(f))
	h, err := ar.Next()
	if err != nil {
		return damaged(err)
	}
	if h.Name != "state.json" {
		return damaged(fmt.Errorf("the archive does not begin with the stream state"))
	}
	var ss serverState
	if err := json.NewDecoder(ar).Decode(&ss); err != nil {
		return damaged(fmt.Errorf("stream state: %v", err))
	}
	var buf []byte
	for {
		h, err := ar.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return damaged(errors.New("no end marker: the snapshot is truncated"))
			}
			return damaged(err)
		}
		if h.Name == "" && h.Sequence == 0 && h.HeaderSize == 0 && h.PayloadSize == 0 {
			// The end marker; nothing may follow it.
			if _, err := ar.Next(); !errors.Is(err, io.EOF) {
				return damaged(errors.New("data after the end marker"))
			}
			return ss.state(), nil
		}
		total := h.HeaderSize + h.PayloadSize
		if cap(buf) < int(total) {
			buf = make([]byte, total)
		}
		buf = buf[:total]
		if _, err := io.ReadFull(ar, buf); err != nil {
			return damaged(err)
		}
		if strings.HasPrefix(h.Name, "consumers/") || h.Sequence == 0 {
			continue // consumer state: custody does not snapshot consumers
		}
		m := SnapshotMsg{Seq: h.Sequence, Subject: h.Name, Time: time.Unix(0, h.Timestamp).UTC(), Data: buf[h.HeaderSize:]}
		if h.HeaderSize > 0 {
			m.Header = buf[:h.HeaderSize]
		}
		if err := fn(m); err != nil {
			return StreamState{}, fmt.Errorf("%s: %w", path, err)
		}
	}
}

// Restore creates a stream from the snapshot in dir (as Snapshot wrote it), with the
// configuration recorded beside it, and returns its state once the server has stored
// every message. The stream must not exist. The restored state must be the snapshot's:
// the same messages, bytes and first and last sequences; otherwise it is an error (the
// restored stream is left for inspection).
func Restore(ctx context.Context, nc *nats.Conn, dir string, cfg SnapshotConfig) (StreamState, error) {
	cfg.setDefaults(nc)
	raw, err := os.ReadFile(filepath.Join(dir, SnapshotMetaFile))
	if err != nil {
		return StreamState{}, fmt.Errorf("restore: %w", err)
	}
	var meta snapshotMeta
	var name struct {
		Name string `json:"name"`
	}
	var want serverState
	if err := json.Unmarshal(raw, &meta); err != nil || json.Unmarshal(meta.Config, &name) != nil || json.Unmarshal(meta.State, &want) != nil || name.Name == "" {
		return StreamState{}, fmt.Errorf("restore: %w: %s: not a stream's configuration and state", ErrBackupDamaged, filepath.Join(dir, SnapshotMetaFile))
	}
	fail := func(err error) (StreamState, error) {
		return StreamState{}, fmt.Errorf("restore %s: %w", name.Name, err)
	}
	f, err := os.Open(filepath.Join(dir, SnapshotDataFile))
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	body, _ := json.Marshal(meta)
	rctx, cancel := context.WithTimeout(ctx, cfg.Stall)
	resp, err := nc.RequestWithContext(rctx, fmt.Sprintf(apiRestore, name.Name), body)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("%w request: %v", ErrSnapshot, err))
	}
	var r struct {
		Error   *apiError `json:"error"`
		Deliver string    `json:"deliver_subject"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return fail(fmt.Errorf("%w response: %v", ErrSnapshot, err))
	}
	if r.Error != nil {
		return fail(fmt.Errorf("%w refused: %s (%d)", ErrSnapshot, r.Error.Description, r.Error.ErrCode))
	}
	if r.Deliver == "" {
		return fail(fmt.Errorf("%w response: no delivery subject", ErrSnapshot))
	}
	// Each chunk is a request: the server answers once it has taken the chunk (flow
	// control), with an empty message, or with an error and nothing more.
	chunk := make([]byte, cfg.ChunkSize)
	for {
		n, rerr := io.ReadFull(f, chunk)
		if n > 0 {
			cctx, cancel := context.WithTimeout(ctx, cfg.Stall)
			ack, err := nc.RequestWithContext(cctx, r.Deliver, chunk[:n])
			cancel()
			if err != nil {
				return fail(fmt.Errorf("%w chunk: %v", ErrSnapshot, err))
			}
			if len(ack.Data) > 0 {
				return fail(restoreError(ack.Data))
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fail(rerr)
		}
	}
	// An empty message ends the transfer; the server answers when the stream is stored,
	// which for a large stream takes a while.
	done, err := nc.RequestWithContext(ctx, r.Deliver, nil)
	if err != nil {
		return fail(fmt.Errorf("%w finish: %v", ErrSnapshot, err))
	}
	var created struct {
		Error *apiError   `json:"error"`
		State serverState `json:"state"`
	}
	if err := json.Unmarshal(done.Data, &created); err != nil {
		return fail(fmt.Errorf("%w final response: %v", ErrSnapshot, err))
	}
	if created.Error != nil {
		return fail(fmt.Errorf("%w failed on the server: %s (%d)", ErrSnapshot, created.Error.Description, created.Error.ErrCode))
	}
	got, exp := created.State.state(), want.state()
	if got.Messages != exp.Messages || got.Bytes != exp.Bytes || got.FirstSeq != exp.FirstSeq || got.LastSeq != exp.LastSeq {
		return fail(fmt.Errorf("%w: restored %d messages, %d bytes, sequences %d-%d; the snapshot has %d, %d, %d-%d",
			ErrSnapshot, got.Messages, got.Bytes, got.FirstSeq, got.LastSeq, exp.Messages, exp.Bytes, exp.FirstSeq, exp.LastSeq))
	}
	return got, nil
}

func restoreError(b []byte) error {
	var r struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(b, &r) == nil && r.Error != nil {
		return fmt.Errorf("%w failed on the server: %s (%d)", ErrSnapshot, r.Error.Description, r.Error.ErrCode)
	}
	return fmt.Errorf("%w failed on the server: %q", ErrSnapshot, b)
}

// Manifest describes a backup directory.
type Manifest struct {
	// Format is ManifestFormat.
	Format string `json:"format"`
	// Created is when the backup began: nothing stored later is in it.
	Created time.Time `json:"created"`
	// Version is the version of the custody that wrote it; Server the NATS server's.
	Version string `json:"custodyVersion"`
	Server  string `json:"natsServerVersion"`
	// Streams are the streams it holds, in the order they were snapshotted.
	Streams []StreamBackup `json:"streams"`
	// Files are every file of the backup but the manifest, sorted by path.
	Files []FileSum `json:"files"`
}

// StreamBackup is one stream of a backup: its directory and its state at the snapshot.
type StreamBackup struct {
	Name string `json:"name"`
	// Dir is the stream's directory, relative to the backup's (slash-separated).
	Dir string `json:"dir"`
	StreamState
}

// FileSum is one file of a backup.
type FileSum struct {
	// Path is relative to the backup directory, slash-separated.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// WriteManifest completes a backup: it lists and hashes every file under dir (but the
// manifest), writes the manifest (synced) and returns the SHA-256 of its bytes. Writing
// the manifest is the last step of a backup; a directory without one is incomplete.
func WriteManifest(dir string, m Manifest) (string, error) {
	m.Format = ManifestFormat
	m.Files = nil
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() || rel == ManifestFile {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		size, sum, err := hashFile(p)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, FileSum{Path: filepath.ToSlash(rel), Size: size, SHA256: sum})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	slices.SortFunc(m.Files, func(a, b FileSum) int { return strings.Compare(a.Path, b.Path) })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	if err := writeFileSync(filepath.Join(dir, ManifestFile), b, 0o600); err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// VerifyBackup reads a backup's manifest and checks every file it lists: present, of its
// size and SHA-256, and every stream's snapshot and configuration listed. Every problem
// is reported (errors.Join), each naming its file and matching ErrBackupDamaged. Files
// the manifest does not list are not looked at (a restore does not use them).
func VerifyBackup(dir string) (Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %v (an incomplete backup has no manifest)", ErrBackupDamaged, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %s: %v", ErrBackupDamaged, filepath.Join(dir, ManifestFile), err)
	}
	if m.Format != ManifestFormat {
		return Manifest{}, fmt.Errorf("%w: %s: format %q, want %q", ErrBackupDamaged, filepath.Join(dir, ManifestFile), m.Format, ManifestFormat)
	}
	var errs []error
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			errs = append(errs, fmt.Errorf("%w: %s: not a path inside the backup", ErrBackupDamaged, f.Path))
			continue
		}
		size, sum, err := hashFile(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrBackupDamaged, p, err))
		case size != f.Size:
			errs = append(errs, fmt.Errorf("%w: %s: %d bytes, the manifest says %d", ErrBackupDamaged, p, size, f.Size))
		case sum != f.SHA256:
			errs = append(errs, fmt.Errorf("%w: %s: SHA-256 %s, the manifest says %s", ErrBackupDamaged, p, sum, f.SHA256))
		}
	}
	for _, s := range m.Streams {
		for _, name := range []string{SnapshotDataFile, SnapshotMetaFile} {
			if rel := s.Dir + "/" + name; !listed[rel] {
				errs = append(errs, fmt.Errorf("%w: stream %s: %s is not in the manifest", ErrBackupDamaged, s.Name, rel))
			}
		}
	}
	return m, errors.Join(errs...)
}

// BackupRecord is what the data directory remembers of its last successful backup
// (DATA/backup.json), for the custody_backup_age_seconds gauge.
type BackupRecord struct {
	// Time is when the backup began (its manifest's Created).
	Time time.Time `json:"time"`
	// Dir is the backup directory as it was given.
	Dir string `json:"dir"`
	// ManifestSHA256 identifies the backup: the SHA-256 of its manifest.json.
	ManifestSHA256 string `json:"manifestSha256"`
	// EventsLastSeq is the last sequence of CUSTODY_EVENTS in the backup.
	EventsLastSeq uint64 `json:"eventsLastSeq"`
}

const backupRecordName = "backup.json"

// RecordBackup records a successful backup in the data directory (atomically).
func RecordBackup(dataDir string, r BackupRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("record backup: %w", err)
	}
	name := filepath.Join(dataDir, backupRecordName)
	if err := writeFileSync(name+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record backup: %w", err)
	}
	if err := os.Rename(name+".tmp", name); err != nil {
		return fmt.Errorf("record backup: %w", err)
	}
	return nil
}

// ReadBackupRecord returns the data directory's record of its last successful backup,
// or ErrNoBackup.
func ReadBackupRecord(dataDir string) (BackupRecord, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, backupRecordName))
	if errors.Is(err, os.ErrNotExist) {
		return BackupRecord{}, ErrNoBackup
	}
	if err != nil {
		return BackupRecord{}, fmt.Errorf("last backup: %w", err)
	}
	var r BackupRecord
	if err := json.Unmarshal(b, &r); err != nil || r.Time.IsZero() {
		return BackupRecord{}, fmt.Errorf("last backup: %s: not a backup record", filepath.Join(dataDir, backupRecordName))
	}
	return r, nil
}

// LastBackup returns when the last successful backup of the data directory began, or
// ErrNoBackup when none is recorded. The gauge custody_backup_age_seconds is the time
// since then (+Inf without a backup).
func LastBackup(dataDir string) (time.Time, error) {
	r, err := ReadBackupRecord(dataDir)
	if err != nil {
		return time.Time{}, err
	}
	return r.Time, nil
}

func hashFile(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeFileSync writes a new file and syncs it before closing.
func writeFileSync(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
