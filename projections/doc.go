// Package projections holds custody's views of the log: deterministic folds of events
// into SQL tables, each with its own checkpoint (the last applied stream sequence)
// committed in the same transaction as its rows, so a crash at any instant neither loses
// nor double-counts an event.
//
// # Stores
//
// A Store is one SQL database reached through database/sql, in one of two dialects:
//
//   - SQLite (OpenSQLite; modernc.org/sqlite, pure Go), the default: custody.db in the
//     data directory, in WAL mode, with one connection. Every write transaction takes
//     the database's write lock at BEGIN (BEGIN IMMEDIATE), so writers run one at a
//     time, across processes too. A goroutine of the store checkpoints the WAL into
//     the database file, off the writer's commit path.
//   - PostgreSQL (OpenPostgres; pgx's database/sql driver, github.com/jackc/pgx/v5/stdlib),
//     chosen with custody's --store postgres://... A pool of up to PostgresPool
//     connections. Write transactions run at READ COMMITTED; the transaction that
//     applies a projector's batch first takes a transaction-scoped advisory lock keyed
//     by the projector (pg_advisory_xact_lock), then reads the checkpoint, so
//     concurrent appliers of one view serialize while different views commit in
//     parallel. Reports read in one read-only REPEATABLE READ transaction, a consistent
//     snapshot even while views commit or a rebuild swaps a table in.
//
// Both hold the same schema, created by the same migrations (schema_migrations records
// them), applied in one transaction under a lock (the write lock; an advisory lock on
// PostgreSQL) so that processes opening a store together migrate it once. The SQL is
// portable: "?" placeholders, rewritten to $n for PostgreSQL; INSERT ... ON CONFLICT
// upserts; BOOLEAN columns compared with bound Go bools, never 0/1 literals; BIGINT
// sequences; times as TEXT in a fixed-width UTC form, so that text comparison is time
// comparison. What differs is small and kept in one place each: the sequence column of
// a view's table (INTEGER PRIMARY KEY, SQLite's rowid, against BIGINT), the locks
// (lockKeys), the isolation levels (begin, snapshot), and COLLATE "C" where rows are
// ordered by text (textOrder) so that PostgreSQL sorts by bytes, as SQLite does,
// whatever the database's collation. The conformance suite (conformance_test.go) runs
// the same tests against both and requires byte-identical reports; see
// docs/adr/0007-postgres-store.md.
//
// Error messages name a PostgreSQL store by its URL with the password replaced
// (RedactDSN); a password never reaches a message, whatever failed.
//
// # Projectors
//
// Timeline is the index behind forensic replay (custody replay): subject → stream
// sequences, and event id → first sequence, the latter so that an id seen at any time is
// a duplicate, not only within the log's deduplication window. View keeps the events of
// one of the five views with its state and raises its alerts into the alerts outbox
// (docs/adr/0004-views.md).
//
// Projectors satisfy the streams consume loop's Projector contract (Name, Checkpoint,
// Apply) using domain types only; this package does not import streams.
package projections
