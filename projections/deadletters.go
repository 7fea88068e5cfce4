package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/custody/custody/domain"
)

// Dead letters. A message a projector cannot apply (above all one that does not decode:
// written by another publisher, or by a newer custody) is parked after a bounded number
// of deliveries: a dead_letters row naming the projector, the sequence, the subject and
// the reason, written in the transaction that moves the projector's checkpoint past the
// sequence. The no-gap rule still holds: every sequence up to the checkpoint is either
// applied or parked, and a parked one is listed until it is redriven. The message stays
// in the log (which is immutable); the row holds no part of it, since a message that did
// not pass validation may carry anything. Redrive reads it from the log again, applies it
// once, and marks the row resolved in the same transaction.

// DeadLetter is one parked message.
type DeadLetter struct {
	Projector string    `json:"projector"`
	Seq       uint64    `json:"seq"`
	Subject   string    `json:"subject"`
	Reason    string    `json:"reason"`
	ParkedAt  time.Time `json:"parkedAt"`
	// ResolvedAt is set once a redrive applied it; Resolution says how.
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
}

// ErrNotParked is returned by a redrive of a sequence the projector has not parked, or
// whose dead letter is already resolved.
var ErrNotParked = errors.New("not an unresolved dead letter")

// park records a dead letter of projector at seq and moves the checkpoint under key
// (the projector's table) past it, in one transaction. A sequence the checkpoint has
// passed already is left alone.
func (s *Store) park(ctx context.Context, projector, key string, seq uint64, subject, reason string, now time.Time) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("park: %w", err)
	}
	defer tx.Rollback()
	cp, err := s.checkpointTx(ctx, tx, key)
	if err != nil {
		return err
	}
	if seq <= cp {
		return nil
	}
	if seq != cp+1 {
		return fmt.Errorf("park %s: %w: checkpoint %d, parking %d", projector, ErrGap, cp, seq)
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO dead_letters (projector, seq, subject, reason, parked_at, resolved_at, resolution)
		VALUES (?, ?, ?, ?, ?, NULL, '') ON CONFLICT DO NOTHING`), projector, int64(seq), subject, reason, dbTime(now)); err != nil {
		return fmt.Errorf("park %s %d: %w", projector, seq, err)
	}
	if err := s.setCheckpoint(ctx, tx, key, seq); err != nil {
		return err
	}
	return tx.Commit()
}

// parked reports, inside tx, whether projector has an unresolved dead letter at seq.
func (s *Store) parked(ctx context.Context, tx *sql.Tx, projector string, seq uint64) error {
	var n int
	err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM dead_letters WHERE projector = ? AND seq = ? AND resolved_at IS NULL`), projector, int64(seq)).Scan(&n)
	if err != nil {
		return fmt.Errorf("dead letter %s %d: %w", projector, seq, err)
	}
	if n == 0 {
		return fmt.Errorf("%s sequence %d: %w", projector, seq, ErrNotParked)
	}
	return nil
}

// resolve marks a dead letter resolved inside tx.
func (s *Store) resolve(ctx context.Context, tx *sql.Tx, projector string, seq uint64, how string, now time.Time) error {
	_, err := tx.ExecContext(ctx, s.q(`UPDATE dead_letters SET resolved_at = ?, resolution = ? WHERE projector = ? AND seq = ? AND resolved_at IS NULL`),
		dbTime(now), how, projector, int64(seq))
	if err != nil {
		return fmt.Errorf("resolve dead letter %s %d: %w", projector, seq, err)
	}
	return nil
}

// DeadLetters lists the dead letters by sequence and projector: the unresolved ones, or
// all with all.
func (s *Store) DeadLetters(ctx context.Context, all bool) ([]DeadLetter, error) {
	q := `SELECT projector, seq, subject, reason, parked_at, resolved_at, resolution FROM dead_letters`
	if !all {
		q += ` WHERE resolved_at IS NULL`
	}
	q += ` ORDER BY seq, ` + s.textOrder("projector")
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var seq int64
		var parked string
		var resolved sql.NullString
		if err := rows.Scan(&d.Projector, &seq, &d.Subject, &d.Reason, &parked, &resolved, &d.Resolution); err != nil {
			return nil, err
		}
		d.Seq = uint64(seq)
		if d.ParkedAt, err = parseDBTime(parked); err != nil {
			return nil, err
		}
		if resolved.Valid {
			t, err := parseDBTime(resolved.String)
			if err != nil {
				return nil, err
			}
			d.ResolvedAt = &t
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// UnresolvedDeadLetters counts the dead letters not yet redriven.
func (s *Store) UnresolvedDeadLetters(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters WHERE resolved_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("dead letters: %w", err)
	}
	return n, nil
}

// Park implements the consume loop's Parker: the dead letter and the checkpoint past
// it, in one transaction.
func (t *Timeline) Park(ctx context.Context, seq uint64, subject, reason string) error {
	return t.s.park(ctx, TimelineName, TimelineName, seq, subject, reason, time.Now())
}

// Redrive indexes a parked event and resolves its dead letter, in one transaction.
func (t *Timeline) Redrive(ctx context.Context, st domain.Stored) error {
	tx, err := t.s.begin(ctx)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	defer tx.Rollback()
	if _, err := t.s.checkpointTx(ctx, tx, TimelineName); err != nil {
		return err
	}
	if err := t.s.parked(ctx, tx, TimelineName, st.Seq); err != nil {
		return err
	}
	e := st.Event
	if _, err := t.s.stmt(ctx, tx, qTimelineRow).ExecContext(ctx, e.Subject, int64(st.Seq), domain.FormatTime(e.Time), string(e.Type), e.ID); err != nil {
		return fmt.Errorf("timeline: sequence %d: %w", st.Seq, err)
	}
	// The registry's first sequence of the id moves back to the redriven one when a
	// later duplicate was registered while it was parked.
	if _, err := t.s.firstSeqs(ctx, tx, []domain.Stored{st}, 0); err != nil {
		return fmt.Errorf("timeline: sequence %d: %w", st.Seq, err)
	}
	if err := t.s.resolve(ctx, tx, TimelineName, st.Seq, "redriven", time.Now()); err != nil {
		return err
	}
	return tx.Commit()
}

// Park implements the consume loop's Parker. The dead letter is kept under the view's
// name (a rebuild's copy parks under the name it will be swapped in as).
func (v *View) Park(ctx context.Context, seq uint64, subject, reason string) error {
	if err := v.s.park(ctx, v.cfg.Name, v.cfg.Table, seq, subject, reason, v.cfg.Now()); err != nil {
		return err
	}
	if v.loaded == seq-1 {
		v.loaded = seq // nothing was added to the ledger
	}
	return nil
}

// Redrive applies a parked event to the view once and resolves its dead letter, in one
// transaction: the event is kept (judged late against the view's watermark now), and the
// view's rules are evaluated over what it touches, raising or retracting alerts as a
// live batch would. The event keeps its own sequence; the checkpoint does not move.
func (v *View) Redrive(ctx context.Context, st domain.Stored) (err error) {
	defer func() { v.ledger, v.raised, v.fresh = nil, false, nil }() // reload from the store next time
	tx, err := v.s.begin(ctx)
	if err != nil {
		return fmt.Errorf("view %s: %w", v.cfg.Table, err)
	}
	defer tx.Rollback()
	cp, err := v.s.checkpointTx(ctx, tx, v.cfg.Table)
	if err != nil {
		return err
	}
	if err := v.s.parked(ctx, tx, v.cfg.Name, st.Seq); err != nil {
		return err
	}
	if st.Seq > cp {
		return fmt.Errorf("view %s: sequence %d is past the checkpoint %d", v.cfg.Table, st.Seq, cp)
	}
	state, err := v.state(ctx, tx)
	if err != nil {
		return err
	}
	e := st.Event
	late := !state.maxTime.IsZero() && e.Time.Before(state.maxTime.Add(-v.cfg.Lateness))
	if late {
		state.late++
	}
	if e.Time.After(state.maxTime) {
		state.maxTime = e.Time
	}
	// The log's order decides which event of an id counts, as a rebuild would: when the
	// parked event is the first of its id, a later duplicate the view kept while it was
	// parked is dropped, and the registry moves back to the parked event.
	how := "redriven"
	first, err := v.s.firstSeqs(ctx, tx, []domain.Stored{st}, 0)
	if err != nil {
		return fmt.Errorf("view %s: %w", v.cfg.Table, err)
	}
	var touched []domain.Event // what the rules must look at again
	if seq := first[e.ID]; seq != st.Seq {
		how = fmt.Sprintf("redriven: a duplicate of the event id stored at sequence %d", seq)
	} else {
		tbl, err := v.s.ensureTable(ctx, tx, v.cfg.Table)
		if err != nil {
			return err
		}
		displaced, err := v.s.dropOthers(ctx, tx, tbl, e.ID, st.Seq)
		if err != nil {
			return fmt.Errorf("view %s: sequence %d: %w", v.cfg.Table, st.Seq, err)
		}
		touched = displaced
		switch {
		case !v.spec.types[e.Type]:
			how = "redriven: not of a type this view keeps"
		default:
			ins := newInserter(v.s, tx, tbl, false)
			inserted, err := ins.one(ctx, st, late)
			ins.close()
			if err != nil {
				return fmt.Errorf("view %s: sequence %d: %w", v.cfg.Table, st.Seq, err)
			}
			if !inserted {
				how = "redriven: the view already had this event"
			} else if !late || v.spec.keepLate {
				touched = append(touched, e)
			}
		}
		if len(displaced) > 0 {
			how += fmt.Sprintf("; %d later event(s) of the same id dropped", len(displaced))
		}
	}
	if live := !v.cfg.Silent && v.spec.findings != nil; live && len(touched) > 0 {
		if err := v.loadLive(ctx, tx); err != nil {
			return err
		}
		scope := domain.NewScope()
		for _, t := range touched {
			v.ledger.Touch(scope, t)
		}
		at := state.maxTime
		if now := v.cfg.Now(); at.After(now) {
			at = now
		}
		if err := v.raise(ctx, tx, scope, cp, at); err != nil {
			return err
		}
	}
	if _, err := v.s.stmt(ctx, tx, qSetViewState).ExecContext(ctx, v.cfg.Table, dbTime(state.maxTime), state.late); err != nil {
		return fmt.Errorf("view %s state: %w", v.cfg.Table, err)
	}
	if err := v.s.resolve(ctx, tx, v.cfg.Name, st.Seq, how, v.cfg.Now()); err != nil {
		return err
	}
	if err := v.s.bumpRedrives(ctx, tx, v.cfg.Table); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("view %s: commit: %w", v.cfg.Table, err)
	}
	v.notify()
	return nil
}

// dropOthers deletes a view table's events of an id other than the one at keep, and
// returns them (a redriven first event displacing a later duplicate).
func (s *Store) dropOthers(ctx context.Context, tx *sql.Tx, tbl, id string, keep uint64) ([]domain.Event, error) {
	layout, err := s.layoutOf(ctx, tx, tbl)
	if err != nil {
		return nil, err
	}
	var q string
	args := []any{id, int64(keep)}
	switch layout {
	case layoutInline:
		q = `SELECT v.seq, v.body FROM ` + tbl + ` v WHERE v.event_id = ? AND v.seq <> ?`
	case layoutShared:
		q = `SELECT v.seq, b.body FROM ` + tbl + ` v JOIN event_bodies b ON b.seq = v.seq WHERE v.event_id = ? AND v.seq <> ?`
	default:
		q, args = blocksOthers(tbl, id, keep)
	}
	rows, err := tx.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	var out []domain.Event
	var seqs []uint64
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			rows.Close()
			return nil, err
		}
		e, err := domain.Parse(body)
		if err != nil {
			rows.Close()
			return nil, err
		}
		if e.ID == id { // layoutBlocks matched the body's text
			out, seqs = append(out, e), append(seqs, uint64(seq))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, seq := range seqs {
		q, args := `DELETE FROM `+tbl+` WHERE seq = ?`, []any{int64(seq)}
		if layout == layoutBlocks {
			q, args = blocksClear(tbl, seq)
		}
		if _, err := tx.ExecContext(ctx, s.q(q), args...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bumpRedrives counts a redrive of a view in store_meta, so that live processes know to
// reload their in-memory state (redrives).
func (s *Store) bumpRedrives(ctx context.Context, tx *sql.Tx, table string) error {
	key := "redrives:" + table
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO store_meta (key, value) VALUES (?, '1')
		ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(store_meta.value AS BIGINT) + 1 AS TEXT)`), key)
	if err != nil {
		return fmt.Errorf("redrive count: %w", err)
	}
	return nil
}

// redrives returns how many redrives a view has had, inside q.
func (s *Store) redrives(ctx context.Context, q queryer, table string) (int64, error) {
	var v string
	err := q.QueryRowContext(ctx, s.q(`SELECT value FROM store_meta WHERE key = ?`), "redrives:"+table).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redrive count: %w", err)
	}
	var n int64
	_, err = fmt.Sscan(v, &n)
	return n, err
}
