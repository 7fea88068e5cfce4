package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the default projection store: pure-Go SQLite
)

// Store is the projection store: one SQL database holding every view, the timeline
// index and each projector's checkpoint. SQLite in the data directory by default
// (OpenSQLite), or PostgreSQL (OpenPostgres); both hold the same schema, migrated by
// the same statements.
type Store struct {
	db      *sql.DB
	dialect string
	stmts   map[string]*sql.Stmt // the hot statements, prepared once (see hot)
	stop    func()               // ends the WAL checkpointer (SQLite)
}

// The dialects a Store speaks.
const (
	sqliteDialect   = "sqlite"
	postgresDialect = "postgres"
)

// OpenSQLite opens (creating if needed) the SQLite store at path and migrates it.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// busy_timeout first: the other pragmas (journal_mode above all) may need to wait for
	// another process opening the same store. The writer never checkpoints the WAL in
	// its commit path (wal_autocheckpoint 0): a checkpoint writes and syncs the database
	// file, which would stall every projector queued behind the commit. A goroutine of
	// the store checkpoints on its own connection instead, beside the writer.
	dsn := "file:" + path + "?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(0)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serializes writes anyway
	s := &Store{db: db, dialect: sqliteDialect, stop: func() {}}
	// Two processes creating the same store at once can see SQLITE_BUSY while the WAL
	// is set up, before the busy handler applies: try again for a while.
	for attempt := 0; ; attempt++ {
		err = s.migrate(ctx)
		if err == nil {
			if err = s.prepareHot(ctx); err != nil {
				db.Close()
				return nil, err
			}
			s.stop = checkpointWAL(dsn, walInterval)
			return s, nil
		}
		if attempt == 100 || !strings.Contains(err.Error(), "SQLITE_BUSY") {
			db.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// walInterval is how often the WAL is checkpointed into the database file.
const walInterval = time.Second

// checkpointWAL copies the WAL into the database file every interval from a connection of
// its own (PASSIVE: it never blocks the writer or readers), so the WAL stays small. It
// returns the function that stops it. Closing the last connection checkpoints whatever
// is left.
func checkpointWAL(dsn string, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Errors (SQLITE_BUSY while another process checkpoints) only delay it.
				_, _ = db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Close closes the database.
func (s *Store) Close() error {
	s.stop()
	for _, st := range s.stmts {
		st.Close()
	}
	return s.db.Close()
}

// DB exposes the database for read-only SQL tools and tests.
func (s *Store) DB() *sql.DB { return s.db }

// q rewrites the portable "?" placeholders for the store's dialect.
func (s *Store) q(query string) string {
	if s.dialect != postgresDialect {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrations are applied in order, each once, recorded in schema_migrations. Append
// only: never edit a released migration.
var migrations = []string{
	`CREATE TABLE checkpoints (
		projector TEXT PRIMARY KEY,
		seq BIGINT NOT NULL
	)`,
	`CREATE TABLE timeline (
		subject TEXT NOT NULL,
		seq BIGINT NOT NULL,
		event_time TEXT NOT NULL,
		type TEXT NOT NULL,
		event_id TEXT NOT NULL,
		PRIMARY KEY (subject, seq)
	)`,
	`CREATE TABLE event_ids (
		event_id TEXT PRIMARY KEY,
		seq BIGINT NOT NULL
	)`,
	`CREATE TABLE view_tables (
		view TEXT PRIMARY KEY,
		tbl TEXT NOT NULL
	)`,
	`CREATE TABLE view_state (
		view TEXT PRIMARY KEY,
		max_time TEXT NOT NULL,
		late_events BIGINT NOT NULL
	)`,
	`CREATE TABLE alerts (
		id TEXT PRIMARY KEY,
		view TEXT NOT NULL,
		rule TEXT NOT NULL,
		agent_id TEXT NOT NULL,
		interaction_ids TEXT NOT NULL,
		recording_id TEXT NOT NULL,
		scope TEXT NOT NULL,
		triggered_at TEXT NOT NULL,
		raised_at TEXT NOT NULL,
		seq BIGINT NOT NULL,
		retracted_at TEXT,
		published BOOLEAN NOT NULL,
		body TEXT NOT NULL
	)`,
	`CREATE INDEX alerts_unpublished ON alerts (published)`,
	// Dead letters: messages a projector could not apply, parked with the checkpoint
	// moving past them (deadletters.go).
	`CREATE TABLE dead_letters (
		projector TEXT NOT NULL,
		seq BIGINT NOT NULL,
		subject TEXT NOT NULL,
		reason TEXT NOT NULL,
		parked_at TEXT NOT NULL,
		resolved_at TEXT,
		resolution TEXT NOT NULL,
		PRIMARY KEY (projector, seq)
	)`,
	// Leases: which process applies a projector now (lease.go).
	`CREATE TABLE leases (
		name TEXT PRIMARY KEY,
		holder TEXT NOT NULL,
		expires_at TEXT NOT NULL,
		since TEXT NOT NULL
	)`,
	// The store's identity (its durable consumers are named after it) and other facts.
	`CREATE TABLE store_meta (
		key TEXT PRIMARY KEY,
		value TEXT NOT NULL
	)`,
	// Each kept event's stored bytes, once, whatever the views that keep it (ADR 0004):
	// a view's table of layout 2 holds only the columns it is queried by.
	`CREATE TABLE event_bodies (
		seq ` + seqKey + `,
		body TEXT NOT NULL
	)`,
	// The layout of each view's table: 1, the body in the view's own table (tables
	// created before event_bodies); 2, the body in event_bodies.
	`ALTER TABLE view_tables ADD COLUMN layout INTEGER NOT NULL DEFAULT 1`,
	// The registry of event ids (registry.go), written by every projector for every
	// event since it decides duplicates for all views: on SQLite one b-tree keyed by
	// the id instead of a table and an index of it.
	`CREATE TABLE event_ids_keyed (
		event_id TEXT PRIMARY KEY,
		seq BIGINT NOT NULL
	` + keyedTable,
	`INSERT INTO event_ids_keyed (event_id, seq) SELECT event_id, seq FROM event_ids`,
	`DROP TABLE event_ids`,
	`ALTER TABLE event_ids_keyed RENAME TO event_ids`,
}

// registryMigration is the version of the first migration of the registry of event ids
// as every view's judge of duplicates.
func registryMigration() int {
	for i, m := range migrations {
		if strings.Contains(m, "event_ids_keyed") {
			return i + 1
		}
	}
	return len(migrations) + 1
}

// metaRebuildAdvised is the store_meta key saying why the views should be rebuilt once.
const metaRebuildAdvised = "rebuild_advised"

// RebuildAdvised returns why the store's views should be rebuilt once ("" when they need
// not): set when a migration changed what the views' rows mean, cleared by a rebuild of
// every view.
func (s *Store) RebuildAdvised(ctx context.Context) (string, error) {
	var why string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM store_meta WHERE key = ?`), metaRebuildAdvised).Scan(&why)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return why, nil
}

// keyedTable ends a migration's CREATE TABLE whose rows are found by their primary key
// only: on SQLite a table without rowid (one b-tree), on PostgreSQL a plain table.
const keyedTable = "KEYED_TABLE"

// seqKey in a migration is a sequence primary key: on SQLite the rowid itself (64 bits),
// on PostgreSQL a BIGINT.
const seqKey = "SEQ_KEY"

// ddl adapts a migration to the store's dialect.
func (s *Store) ddl(stmt string) string {
	if s.dialect == postgresDialect {
		return strings.NewReplacer(seqKey, "BIGINT PRIMARY KEY", keyedTable, ")").Replace(stmt)
	}
	return strings.NewReplacer(seqKey, "INTEGER PRIMARY KEY", keyedTable, ") WITHOUT ROWID").Replace(stmt)
}

// sortableTime is the fixed-width UTC form stored in SQL, so that text comparison is
// time comparison.
const sortableTime = "2006-01-02T15:04:05.000000000Z"

func dbTime(t time.Time) string { return t.UTC().Format(sortableTime) }

func parseDBTime(s string) (time.Time, error) { return time.Parse(sortableTime, s) }

func (s *Store) migrate(ctx context.Context) error {
	// One transaction, taken with the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
	// transaction-scoped advisory lock), so that processes opening the store at the same
	// time migrate one after the other: the second finds the work done.
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if s.dialect == postgresDialect {
		if _, err := tx.ExecContext(ctx, s.q(qLock), lockKey("migrate")); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// A store that had views before the registry of event ids decided duplicates for
	// all of them kept per-view decisions: a rebuild makes them the log's.
	if have > 0 && have < registryMigration() {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING`),
			metaRebuildAdvised, "the views were kept by a custody that decided duplicates per view, before the registry of event ids"); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	for v := have + 1; v <= len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, s.ddl(migrations[v-1])); err != nil {
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version) VALUES (?)`), v); err != nil {
			return fmt.Errorf("migrate %d: %w", v, err)
		}
	}
	if err := s.ensureID(ctx, tx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// The statements every batch runs, prepared once when the store opens (parsing them per
// transaction cost more than running them). Tables named at run time (a view's physical
// table) are prepared once per transaction instead.
const (
	qCheckpoint    = `SELECT seq FROM checkpoints WHERE projector = ?`
	qSetCheckpoint = `INSERT INTO checkpoints (projector, seq) VALUES (?, ?) ON CONFLICT (projector) DO UPDATE SET seq = excluded.seq`
	qViewState     = `SELECT max_time, late_events FROM view_state WHERE view = ?`
	qSetViewState  = `INSERT INTO view_state (view, max_time, late_events) VALUES (?, ?, ?) ON CONFLICT (view) DO UPDATE SET max_time = excluded.max_time, late_events = excluded.late_events`
	qTableOf       = `SELECT tbl, layout FROM view_tables WHERE view = ?`
	qRaise         = `INSERT INTO alerts (id, view, rule, agent_id, interaction_ids, recording_id, scope, triggered_at, raised_at, seq, retracted_at, published, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING`
	qUnretract     = `UPDATE alerts SET retracted_at = NULL WHERE id = ?`
	qRetract       = `UPDATE alerts SET retracted_at = ? WHERE id = ?`
	qPublished     = `UPDATE alerts SET published = ? WHERE id = ?`
	qTimelineRow   = `INSERT INTO timeline (subject, seq, event_time, type, event_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	qEventIDRow    = `INSERT INTO event_ids (event_id, seq) VALUES (?, ?) ON CONFLICT DO NOTHING`
	// qBody stores an event's bytes; the log is the truth, so a different body under the
	// same sequence (a store kept across a restored log) is replaced.
	qBody = `INSERT INTO event_bodies (seq, body) VALUES (?, ?) ` + bodyConflict
)

// bodyConflict ends every insert into event_bodies.
const bodyConflict = `ON CONFLICT (seq) DO UPDATE SET body = excluded.body WHERE event_bodies.body <> excluded.body`

var hot = []string{qCheckpoint, qSetCheckpoint, qViewState, qSetViewState, qTableOf, qRaise, qUnretract, qRetract, qPublished, qTimelineRow, qEventIDRow, qBody}

// qLock takes PostgreSQL's transaction-scoped advisory lock of a key (see lockKeys).
const qLock = `SELECT pg_advisory_xact_lock(?)`

func (s *Store) prepareHot(ctx context.Context) error {
	s.stmts = map[string]*sql.Stmt{}
	qs := hot
	if s.dialect == postgresDialect {
		qs = append(qs[:len(qs):len(qs)], qLock)
	}
	for _, q := range qs {
		st, err := s.db.PrepareContext(ctx, s.q(q))
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		s.stmts[q] = st
	}
	return nil
}

// stmt returns a hot statement for use in q (the database or a transaction).
func (s *Store) stmt(ctx context.Context, q any, query string) *sql.Stmt {
	st := s.stmts[query]
	if tx, ok := q.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st)
	}
	return st
}

// Checkpoint returns the last sequence applied by a projector, 0 when none.
func (s *Store) Checkpoint(ctx context.Context, projector string) (uint64, error) {
	var seq int64
	err := s.stmts[qCheckpoint].QueryRowContext(ctx, projector).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", projector, err)
	}
	return uint64(seq), nil
}

// ErrGap is returned by Apply when a batch does not continue right after the checkpoint.
var ErrGap = errors.New("sequence gap")

// checkpointTx reads a checkpoint inside a transaction, after taking the projector's
// lock, so that concurrent appliers of the same projector serialize on it: on SQLite
// the transaction holds the database's write lock from its start; on PostgreSQL it takes
// the projector's advisory lock here, held until it ends (see lockKeys).
func (s *Store) checkpointTx(ctx context.Context, tx *sql.Tx, projector string) (uint64, error) {
	if err := s.lockKeys(ctx, tx, projector); err != nil {
		return 0, err
	}
	var seq int64
	err := s.stmt(ctx, tx, qCheckpoint).QueryRowContext(ctx, projector).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", projector, err)
	}
	return uint64(seq), nil
}

// setCheckpoint records seq for projector inside tx.
func (s *Store) setCheckpoint(ctx context.Context, tx *sql.Tx, projector string, seq uint64) error {
	_, err := s.stmt(ctx, tx, qSetCheckpoint).ExecContext(ctx, projector, int64(seq))
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", projector, err)
	}
	return nil
}
