package projections

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// In layoutBlocks a view's table says which events of the log the view keeps as bits:
// one row per block of 64 consecutive sequences, bit i of kept set when the view keeps
// the event at sequence 64*block+i, bit i of late set when that event arrived late.
// The events' bytes are in event_bodies, once whatever the views that keep them, and
// their ids in the registry (registry.go). A view of 100,000 events is about 1,600
// small rows instead of one row per event: a rebuild writes a view in a few
// statements, and a live batch updates the one or two rows its sequences fall in
// (docs/adr/0004-views.md).

// blockBits is how many sequences one row covers (the bits of a BIGINT).
const blockBits = 64

// blockOf returns the block of a sequence and its bit there (bit 63 makes the int64
// negative; the stores keep the 64 bits as they are).
func blockOf(seq uint64) (block, bit int64) {
	return int64(seq / blockBits), int64(uint64(1) << (seq % blockBits))
}

// blocksCols are the columns of a layoutBlocks table, in insert order.
const blocksCols = `(block, kept, late)`

// blocksUpsert ends an insert into a layoutBlocks table: the bits of a block already
// there are added to.
func blocksUpsert(tbl string) string {
	return ` ON CONFLICT (block) DO UPDATE SET kept = ` + tbl + `.kept | excluded.kept, late = ` + tbl + `.late | excluded.late`
}

// blockSet gathers the bits of events added in increasing sequence order, one entry
// per block.
type blockSet struct {
	rows []blockRow
}

type blockRow struct{ block, kept, late int64 }

func (b *blockSet) add(seq uint64, late bool) {
	block, bit := blockOf(seq)
	if n := len(b.rows); n == 0 || b.rows[n-1].block != block {
		b.rows = append(b.rows, blockRow{block: block})
	}
	r := &b.rows[len(b.rows)-1]
	r.kept |= bit
	if late {
		r.late |= bit
	}
}

func (b *blockSet) reset() { b.rows = b.rows[:0] }

// blocksSelect is the query of a layoutBlocks table's kept events in the blocks up to
// one (the bits are tested in SQL, so that only kept bodies leave the store), with
// their late bits. The caller drops the events of the last block past its sequence: a
// bound on b.seq beside the block's own would be the one SQLite seeks by, and every
// block would scan the bodies to the end.
func blocksSelect(tbl string, includeLate bool) string {
	off := `CAST(b.seq - v.block * 64 AS INTEGER)`
	q := `SELECT b.seq, b.body, ((v.late >> ` + off + `) & 1) FROM ` + tbl + ` v
		JOIN event_bodies b ON b.seq >= v.block * 64 AND b.seq < v.block * 64 + 64
		WHERE v.block <= ? AND ((v.kept >> ` + off + `) & 1) = 1`
	if !includeLate {
		q += ` AND ((v.late >> ` + off + `) & 1) = 0`
	}
	return q + ` ORDER BY v.block, b.seq`
}

// Kept is one event a view keeps.
type Kept struct {
	Seq  uint64
	Late bool
	// Event is the stored event (its body decoded).
	Event domain.Event
}

// KeptEvents lists what a view key keeps, by sequence, whatever the table's layout:
// the means to check a store's rows (one per event, none twice) from outside.
func (s *Store) KeptEvents(ctx context.Context, key string) ([]Kept, error) {
	tbl, layout, err := s.tableLayout(ctx, s.db, key)
	if err != nil || tbl == "" {
		return nil, err
	}
	var query string
	var args []any
	switch layout {
	case layoutInline:
		query = `SELECT v.seq, v.body, v.late FROM ` + tbl + ` v ORDER BY v.seq`
	case layoutShared:
		query = `SELECT v.seq, b.body, v.late FROM ` + tbl + ` v JOIN event_bodies b ON b.seq = v.seq ORDER BY v.seq`
	default:
		query, args = blocksSelect(tbl, true), []any{int64(1) << 62}
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("kept %s: %w", key, err)
	}
	defer rows.Close()
	var out []Kept
	for rows.Next() {
		var seq int64
		var body []byte
		var late any
		if err := rows.Scan(&seq, &body, &late); err != nil {
			return nil, fmt.Errorf("kept %s: %w", key, err)
		}
		e, err := domain.Parse(body)
		if err != nil {
			return nil, fmt.Errorf("kept %s: sequence %d: %w", key, seq, err)
		}
		out = append(out, Kept{Seq: uint64(seq), Late: truthy(late), Event: e})
	}
	return out, rows.Err()
}

// truthy reads a boolean column or a 0/1 expression, whatever the driver returns.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	case []byte:
		return len(x) > 0 && x[0] != '0' && x[0] != 'f'
	case string:
		return x != "" && x != "0" && x != "f" && x != "false"
	}
	return false
}

// blocksLate counts the late bits of a layoutBlocks table up to a sequence.
func (s *Store) blocksLate(ctx context.Context, q queryer, tbl string, pos uint64) (int64, error) {
	last, _ := blockOf(pos)
	rows, err := q.QueryContext(ctx, s.q(`SELECT block, late FROM `+tbl+` WHERE block <= ? AND late <> 0`), last)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var block, late int64
		if err := rows.Scan(&block, &late); err != nil {
			return 0, err
		}
		m := uint64(late)
		if block == last {
			m &= ^uint64(0) >> (blockBits - 1 - pos%blockBits) // bits up to pos
		}
		n += int64(bits.OnesCount64(m))
	}
	return n, rows.Err()
}

// blocksOthers is the query of a layoutBlocks table's events of an id other than the
// one at keep, with its arguments. Only blocks from keep's on can hold them (a later
// duplicate kept while keep was parked). The bodies are the log's bytes, so the same id
// may be written in upper case or with JSON escapes: the query keeps the bodies that
// hold the id's text in any case, or any backslash, and the caller decodes them to be
// sure (a pre-filter that cannot miss; a redrive does not decode the whole view).
func blocksOthers(tbl, id string, keep uint64) (string, []any) {
	from, _ := blockOf(keep)
	off := `CAST(b.seq - v.block * 64 AS INTEGER)`
	q := `SELECT b.seq, b.body FROM ` + tbl + ` v
		JOIN event_bodies b ON b.seq >= v.block * 64 AND b.seq < v.block * 64 + 64
		WHERE v.block >= ? AND b.seq <> ? AND ((v.kept >> ` + off + `) & 1) = 1
			AND (LOWER(b.body) LIKE ? ESCAPE '!' OR b.body LIKE ? ESCAPE '!')
		ORDER BY b.seq`
	like := "%" + strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(strings.ToLower(id)) + "%"
	return q, []any{from, int64(keep), like, `%\%`}
}

// blocksClear is the statement, with its arguments, that removes an event from a
// layoutBlocks table.
func blocksClear(tbl string, seq uint64) (string, []any) {
	block, bit := blockOf(seq)
	return `UPDATE ` + tbl + ` SET kept = kept & ?, late = late & ? WHERE block = ?`, []any{^bit, ^bit, block}
}

// keptBefore reports whether an event at or before asOf (zero: any) counts in a report.
func keptBefore(e domain.Event, asOf time.Time) bool {
	return asOf.IsZero() || !e.Time.After(asOf)
}
