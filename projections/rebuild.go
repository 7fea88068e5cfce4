package projections

import (
	"context"
	"fmt"
)

// RebuildTable is the table a view is rebuilt into before it is swapped in.
func RebuildTable(view string) string { return view + "~rebuild" }

// ResetTable removes every row, the state and the checkpoint kept under a table name
// (a rebuild starts from a fresh copy).
func (s *Store) ResetTable(ctx context.Context, table string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM view_events WHERE view = ?`,
		`DELETE FROM view_state WHERE view = ?`,
		`DELETE FROM checkpoints WHERE projector = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), table); err != nil {
			return fmt.Errorf("reset %s: %w", table, err)
		}
	}
	return tx.Commit()
}

// SwapIn replaces a view's rows, state and checkpoint with those of its rebuilt copy, in
// one transaction: readers see the old view or the new one, never a mix.
func (s *Store) SwapIn(ctx context.Context, view string) error {
	tmp := RebuildTable(view)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM view_events WHERE view = ?`,
		`DELETE FROM view_state WHERE view = ?`,
		`DELETE FROM checkpoints WHERE projector = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), view); err != nil {
			return fmt.Errorf("swap %s: %w", view, err)
		}
	}
	for _, q := range []string{
		`UPDATE view_events SET view = ? WHERE view = ?`,
		`UPDATE view_state SET view = ? WHERE view = ?`,
		`UPDATE checkpoints SET projector = ? WHERE projector = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.q(q), view, tmp); err != nil {
			return fmt.Errorf("swap %s: %w", view, err)
		}
	}
	return tx.Commit()
}
