package projections

import (
	"context"
	"fmt"

	"github.com/custody/custody/domain"
)

// TimelineName is the timeline index's projector name.
const TimelineName = "timeline"

// Timeline is the index behind forensic replay: for every subject (an interaction, or
// an agent for training events) the stream sequences of its events with their event
// times, and for every event id the sequence that first stored it. Replay looks
// sequences up here and fetches exactly those messages from the log instead of scanning it.
type Timeline struct {
	s *Store
}

// NewTimeline returns the timeline projector over a store.
func NewTimeline(s *Store) *Timeline { return &Timeline{s: s} }

// Name implements the projector contract.
func (t *Timeline) Name() string { return TimelineName }

// Checkpoint implements the projector contract.
func (t *Timeline) Checkpoint(ctx context.Context) (uint64, error) {
	return t.s.Checkpoint(ctx, TimelineName)
}

// Apply indexes a batch and moves the checkpoint in one transaction.
func (t *Timeline) Apply(ctx context.Context, batch []domain.Stored) error {
	if len(batch) == 0 {
		return nil
	}
	tx, err := t.s.begin(ctx)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	defer tx.Rollback()
	insT := t.s.stmt(ctx, tx, qTimelineRow)
	insID := t.s.stmt(ctx, tx, qEventIDRow)
	cp, err := t.s.checkpointTx(ctx, tx, TimelineName)
	if err != nil {
		return err
	}
	applied := false
	for _, st := range batch {
		if st.Seq <= cp {
			continue // another process applied it first
		}
		if st.Seq != cp+1 {
			return fmt.Errorf("timeline: %w: checkpoint %d, next event %d", ErrGap, cp, st.Seq)
		}
		cp = st.Seq
		applied = true
		e := st.Event
		if _, err := insT.ExecContext(ctx, e.Subject, int64(st.Seq), domain.FormatTime(e.Time), string(e.Type), e.ID); err != nil {
			return fmt.Errorf("timeline: sequence %d: %w", st.Seq, err)
		}
		if _, err := insID.ExecContext(ctx, e.ID, int64(st.Seq)); err != nil {
			return fmt.Errorf("timeline: sequence %d: %w", st.Seq, err)
		}
	}
	if !applied {
		return nil
	}
	if err := t.s.setCheckpoint(ctx, tx, TimelineName, cp); err != nil {
		return err
	}
	return tx.Commit()
}

// Sequences returns the stream sequences of a subject's events, ascending.
func (t *Timeline) Sequences(ctx context.Context, subject string) ([]uint64, error) {
	rows, err := t.s.db.QueryContext(ctx, t.s.q(`SELECT seq FROM timeline WHERE subject = ? ORDER BY seq`), subject)
	if err != nil {
		return nil, fmt.Errorf("timeline %s: %w", subject, err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, uint64(s))
	}
	return out, rows.Err()
}

// Known returns, for the ids already in the log, the sequence that first stored each.
// Publishing uses it to treat an id seen at any time as a duplicate, beyond the server's
// deduplication window.
func (t *Timeline) Known(ctx context.Context, ids []string) (map[string]uint64, error) {
	known, err := t.s.registered(ctx, t.s.db, ids)
	if err != nil {
		return nil, fmt.Errorf("known ids: %w", err)
	}
	return known, nil
}
