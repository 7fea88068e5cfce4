package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/custody/custody/domain"
)

// The registry of event ids (table event_ids) holds, for every event id in the log, the
// sequence that first stored it. The contract makes a second event with an id already
// seen a duplicate whatever its content, so whether an event counts is a question about
// the whole log, not about the types one view reads: every projector (the timeline and
// each view) registers every event it passes, whatever its type, and a view keeps an
// event only when the registry names the event's own sequence.
//
// Projectors run at their own pace, but each passes the log in sequence order, so the
// first to register an id always registers the sequence that first stored it: a projector
// at a later duplicate has passed (and registered) the first. Registrations by several
// projectors write the same truth, so it does not matter which commits first. A rebuild
// rewrites the registry from the log (Rebuild.reconcileRegistry).

// registryChunk is how many ids one registry query names.
const registryChunk = 500

// firstSeqs returns, for the id of every event of batch after cp, the sequence that first
// stored it, registering the ids the registry lacks (at their first sequence in the
// batch) in tx. An id the registry holds at a later sequence than the batch's (a dead
// letter redriven after its duplicate was applied) is moved back to the batch's.
func (s *Store) firstSeqs(ctx context.Context, tx *sql.Tx, batch []domain.Stored, cp uint64) (map[string]uint64, error) {
	first := map[string]uint64{}
	var ids []string
	for _, st := range batch {
		if st.Seq <= cp {
			continue
		}
		if _, ok := first[st.Event.ID]; !ok {
			first[st.Event.ID] = st.Seq
			ids = append(ids, st.Event.ID)
		}
	}
	known, err := s.registered(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	var fresh []any
	for _, id := range ids {
		seq, ok := known[id]
		switch {
		case !ok:
			fresh = append(fresh, id, int64(first[id]))
		case seq > first[id]:
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE event_ids SET seq = ? WHERE event_id = ? AND seq > ?`), int64(first[id]), id, int64(first[id])); err != nil {
				return nil, fmt.Errorf("event ids: %w", err)
			}
		default:
			first[id] = seq
		}
	}
	// Another projector may register an id between the lookup and the insert (on
	// PostgreSQL, committed by then): what the registry holds then is what counts.
	var lost []string
	for lo := 0; lo < len(fresh); lo += 2 * registryChunk {
		part := fresh[lo:min(lo+2*registryChunk, len(fresh))]
		q := `INSERT INTO event_ids (event_id, seq) VALUES ` + tuples(len(part)/2, 2) + ` ON CONFLICT DO NOTHING RETURNING event_id`
		rows, err := tx.QueryContext(ctx, s.q(q), part...)
		if err != nil {
			return nil, fmt.Errorf("event ids: %w", err)
		}
		inserted := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("event ids: %w", err)
			}
			inserted[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("event ids: %w", err)
		}
		for i := 0; i < len(part); i += 2 {
			if id := part[i].(string); !inserted[id] {
				lost = append(lost, id)
			}
		}
	}
	if len(lost) > 0 {
		now, err := s.registered(ctx, tx, lost)
		if err != nil {
			return nil, err
		}
		for _, id := range lost {
			seq, ok := now[id]
			switch {
			case !ok: // its other registrant rolled back
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO event_ids (event_id, seq) VALUES (?, ?) ON CONFLICT DO NOTHING`), id, int64(first[id])); err != nil {
					return nil, fmt.Errorf("event ids: %w", err)
				}
			case seq > first[id]:
				if _, err := tx.ExecContext(ctx, s.q(`UPDATE event_ids SET seq = ? WHERE event_id = ? AND seq > ?`), int64(first[id]), id, int64(first[id])); err != nil {
					return nil, fmt.Errorf("event ids: %w", err)
				}
			default:
				first[id] = seq
			}
		}
	}
	return first, nil
}

// registered returns the registry's sequence of each id it holds.
func (s *Store) registered(ctx context.Context, q queryer, ids []string) (map[string]uint64, error) {
	known := make(map[string]uint64, len(ids))
	for lo := 0; lo < len(ids); lo += registryChunk {
		part := ids[lo:min(lo+registryChunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, s.q(`SELECT event_id, seq FROM event_ids WHERE event_id IN (`+placeholderList(len(part))+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("event ids: %w", err)
		}
		for rows.Next() {
			var id string
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("event ids: %w", err)
			}
			known[id] = uint64(seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("event ids: %w", err)
		}
	}
	return known, nil
}

// placeholderList is n placeholders separated by commas.
func placeholderList(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// tuples is n VALUES tuples of cols placeholders each.
func tuples(n, cols int) string {
	one := placeholders(cols)
	return strings.TrimSuffix(strings.Repeat(one+",", n), ",")
}
