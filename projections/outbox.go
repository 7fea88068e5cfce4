package projections

import (
	"context"
	"fmt"
)

// OutboxAlert is a raised alert not yet acknowledged by the alerts stream.
type OutboxAlert struct {
	ID   string
	Body []byte // the alert.raised event, canonical JSON
}

// PendingAlerts returns up to limit raised alerts that are not yet published, oldest
// first. The alerts table is an outbox: an alert is raised in the same transaction as
// the view's checkpoint, and published after; a crash in between publishes it on restart,
// and its deterministic id (the Nats-Msg-Id) keeps it single in the stream.
func (s *Store) PendingAlerts(ctx context.Context, limit int) ([]OutboxAlert, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, body FROM alerts WHERE published = ? ORDER BY `+s.textOrder("raised_at")+`, `+s.textOrder("id")+` LIMIT ?`), false, limit)
	if err != nil {
		return nil, fmt.Errorf("pending alerts: %w", err)
	}
	defer rows.Close()
	var out []OutboxAlert
	for rows.Next() {
		var a OutboxAlert
		var body string
		if err := rows.Scan(&a.ID, &body); err != nil {
			return nil, err
		}
		a.Body = []byte(body)
		out = append(out, a)
	}
	return out, rows.Err()
}

// MarkPublished records that the alerts stream acknowledged these alerts.
func (s *Store) MarkPublished(ctx context.Context, ids []string) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, id := range ids {
		if _, err := s.stmt(ctx, tx, qPublished).ExecContext(ctx, true, id); err != nil {
			return fmt.Errorf("mark published: %w", err)
		}
	}
	return tx.Commit()
}

// LateEvents returns the count of late events of a view's types up to log position pos:
// from the kept rows, so that a report as of an earlier position counts what was known
// then (a recomputation from that log prefix gives the same count).
func (s *Store) LateEvents(ctx context.Context, view string, pos uint64) (int64, error) {
	return s.lateEvents(ctx, s.db, view, pos)
}

func (s *Store) lateEvents(ctx context.Context, q queryer, view string, pos uint64) (int64, error) {
	tbl, layout, err := s.tableLayout(ctx, q, view)
	if err != nil || tbl == "" {
		return 0, err
	}
	if layout == layoutBlocks {
		return s.blocksLate(ctx, q, tbl, pos)
	}
	var n int64
	err = q.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+tbl+` WHERE late = ? AND seq <= ?`), true, int64(pos)).Scan(&n)
	return n, err
}
