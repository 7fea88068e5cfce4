package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Each view keeps its events in a physical table of its own, named in view_tables. A
// rebuild fills a new table and swaps the name in; the old table is dropped. Swapping a
// name is one row; dropping a table is cheap; nothing is copied or rewritten.

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// The layouts of a view's table (view_tables.layout).
const (
	// layoutInline keeps each event's body in the view's own table (tables created
	// before event_bodies existed; they keep working until rebuilt).
	layoutInline = 1
	// layoutShared keeps the body once in event_bodies, keyed by sequence, and one row
	// per kept event (seq, event_id, event_time, late) in the view's table (tables
	// created before layoutBlocks; they keep working until rebuilt).
	layoutShared = 2
	// layoutBlocks keeps the body once in event_bodies and, in the view's table, one row
	// per block of 64 sequences with a bit per kept event (blocks.go).
	layoutBlocks = 3
)

// tableOf returns the physical table of a view key, or "" when it has none.
func (s *Store) tableOf(ctx context.Context, q queryer, key string) (string, error) {
	tbl, _, err := s.tableLayout(ctx, q, key)
	return tbl, err
}

// layoutOf returns the layout of a physical table.
func (s *Store) layoutOf(ctx context.Context, q queryer, tbl string) (int, error) {
	var layout int
	if err := q.QueryRowContext(ctx, s.q(`SELECT layout FROM view_tables WHERE tbl = ?`), tbl).Scan(&layout); err != nil {
		return 0, fmt.Errorf("view table %s: layout: %w", tbl, err)
	}
	return layout, nil
}

// tableLayout returns the physical table of a view key and its layout, or "" when it
// has none.
func (s *Store) tableLayout(ctx context.Context, q queryer, key string) (string, int, error) {
	var tbl string
	var layout int
	err := s.stmt(ctx, q, qTableOf).QueryRowContext(ctx, key).Scan(&tbl, &layout)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("view table %s: %w", key, err)
	}
	return tbl, layout, nil
}

// ensureTable returns the physical table of a view key, creating it (layoutBlocks) when
// missing.
func (s *Store) ensureTable(ctx context.Context, tx execer, key string) (string, error) {
	tbl, err := s.tableOf(ctx, tx.(queryer), key)
	if err != nil || tbl != "" {
		return tbl, err
	}
	base := strings.NewReplacer("-", "_", "~", "_").Replace(key)
	tbl = "ve_" + base + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	keyType := "INTEGER" // SQLite: the rowid itself
	if s.dialect == postgresDialect {
		keyType = "BIGINT"
	}
	// One row per block of 64 sequences, the bits of the events the view keeps
	// (blocks.go); the events themselves are in event_bodies and the registry of event
	// ids. Tables made before keep their layout until a rebuild replaces them
	// (docs/adr/0004-views.md).
	ddl := `CREATE TABLE ` + tbl + ` (
		block ` + keyType + ` PRIMARY KEY,
		kept BIGINT NOT NULL,
		late BIGINT NOT NULL
	)`
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return "", fmt.Errorf("create %s: %w", tbl, err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO view_tables (view, tbl, layout) VALUES (?, ?, ?)`), key, tbl, layoutBlocks); err != nil {
		return "", fmt.Errorf("register %s: %w", tbl, err)
	}
	return tbl, nil
}

// RebuildTable is the key a view is rebuilt under before it is swapped in.
func RebuildTable(view string) string { return view + "~rebuild" }

// ResetTable drops the rows, state and checkpoint kept under a view key.
func (s *Store) ResetTable(ctx context.Context, key string) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.lockKeys(ctx, tx, key); err != nil {
		return err
	}
	if err := s.dropKey(ctx, tx, key); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) dropKey(ctx context.Context, tx *sql.Tx, key string) error {
	tbl, err := s.tableOf(ctx, tx, key)
	if err != nil {
		return err
	}
	if tbl != "" {
		if _, err := tx.ExecContext(ctx, `DROP TABLE `+tbl); err != nil {
			return fmt.Errorf("drop %s: %w", tbl, err)
		}
	}
	for _, q := range []string{
		`DELETE FROM view_tables WHERE view = ?`,
		`DELETE FROM view_state WHERE view = ?`,
		`DELETE FROM checkpoints WHERE projector = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), key); err != nil {
			return fmt.Errorf("reset %s: %w", key, err)
		}
	}
	return nil
}

// SwapIn makes the rebuilt copies of views the live views, in one transaction: readers
// see the old views or the new ones, never a mix. The old tables are dropped.
func (s *Store) SwapIn(ctx context.Context, views ...string) error {
	keys := make([]string, 0, 2*len(views))
	for _, view := range views {
		keys = append(keys, view, RebuildTable(view))
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.lockKeys(ctx, tx, keys...); err != nil {
		return err
	}
	for _, view := range views {
		if err := s.swapIn(ctx, tx, view); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *Store) swapIn(ctx context.Context, tx *sql.Tx, view string) error {
	tmp := RebuildTable(view)
	tbl, err := s.tableOf(ctx, tx, tmp)
	if err != nil {
		return err
	}
	if tbl == "" {
		return fmt.Errorf("swap %s: no rebuilt copy", view)
	}
	if err := s.dropKey(ctx, tx, view); err != nil {
		return err
	}
	for _, q := range []string{
		`UPDATE view_tables SET view = ? WHERE view = ?`,
		`UPDATE view_state SET view = ? WHERE view = ?`,
		`UPDATE checkpoints SET projector = ? WHERE projector = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), view, tmp); err != nil {
			return fmt.Errorf("swap %s: %w", view, err)
		}
	}
	return nil
}
