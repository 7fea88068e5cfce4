// Package projections holds custody's views of the log: deterministic folds of events
// into SQL tables, each with its own checkpoint (the last applied stream sequence)
// committed in the same transaction as its rows, so a crash at any instant neither loses
// nor double-counts an event.
//
// The store is SQLite (modernc.org/sqlite, pure Go) in the data directory by default.
// Its SQL is portable: "?" placeholders rewritten per dialect, ON CONFLICT upserts, TEXT
// times in RFC 3339 UTC (which sort as instants), BIGINT sequences.
//
// Timeline is the index behind forensic replay (custody replay): subject → stream
// sequences, and event id → first sequence, the latter so that an id seen at any time is
// a duplicate, not only within the log's deduplication window.
//
// Projectors satisfy the streams consume loop's Projector contract (Name, Checkpoint,
// Apply) using domain types only; this package does not import streams.
package projections
