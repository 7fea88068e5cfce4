package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/custody/custody/domain"
)

// Rebuild fills fresh copies of several views from one read of the log (see
// docs/adr/0004-views.md): each view's rows go under RebuildTable(name), each event's
// body once whatever the views that keep it, duplicates dropped in memory. It raises no
// alerts.
//
// Apply only decides what every copy keeps (sequence checks, lateness, types,
// duplicates) and formats the rows; a writer goroutine of the Rebuild runs the inserts,
// with statements prepared once, and commits about every rebuildCommitEvents events the
// rows, bodies, states and checkpoints of all the copies in one transaction. Apply returns once the
// batch is queued, so the copies' stored checkpoints trail what Apply accepted until
// SwapIn (or Finish) has written everything: nothing reads a copy before it is swapped
// in. A writer's error is returned by the next Apply, Checkpoint, Park or SwapIn, and
// the Rebuild is then unusable (start a new one).
//
// Reset nothing before: NewRebuild drops what was kept under the rebuild keys. Swap the
// copies in with Rebuild.SwapIn, and Close it in every case.
type Rebuild struct {
	s     *Store
	views []*View
	names []string
	keys  []string
	// tables are the copies' tables, created by NewRebuild.
	tables []string
	// first holds, for every event id read so far, the sequence that first stored it
	// (registry.go): every event after it with the same id is a duplicate.
	first map[string]uint64
	// registryWasEmpty: the registry held no id when the rebuild began.
	registryWasEmpty bool
	// types holds, for every event type, one bit per view that reads it.
	types map[domain.Type]uint8
	// cps and sts are what Apply has accepted for each copy (ahead of the store while
	// the writer works); valid when loaded.
	cps    []uint64
	sts    []viewState
	loaded bool
	w      *rebuildWriter
}

// NewRebuild starts the rebuild of the views cfgs name (at most 8): it drops what was
// kept under their rebuild keys, creates the fresh tables, prepares the statements that
// fill them and starts the writer. Each config's Table, Silent and Bulk are set by the
// rebuild. Close it when done.
func NewRebuild(ctx context.Context, s *Store, cfgs ...ViewConfig) (*Rebuild, error) {
	if len(cfgs) == 0 || len(cfgs) > 8 {
		return nil, fmt.Errorf("rebuild: 1 to 8 views, not %d", len(cfgs))
	}
	// Room for the ids of a log of some size up front: growing the map step by step
	// rehashes it each time.
	r := &Rebuild{s: s, first: make(map[string]uint64, 1<<16), types: map[domain.Type]uint8{}}
	for i, cfg := range cfgs {
		cfg.Table, cfg.Silent, cfg.Bulk = RebuildTable(cfg.Name), true, true
		v, err := NewView(s, cfg)
		if err != nil {
			return nil, err
		}
		for t := range v.spec.types {
			r.types[t] |= 1 << i
		}
		r.views = append(r.views, v)
		r.names = append(r.names, cfg.Name)
		r.keys = append(r.keys, cfg.Table)
	}
	if err := r.create(ctx); err != nil {
		return nil, err
	}
	var one int
	switch err := s.db.QueryRowContext(ctx, `SELECT 1 FROM event_ids LIMIT 1`).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		r.registryWasEmpty = true
	case err != nil:
		return nil, fmt.Errorf("rebuild: event ids: %w", err)
	}
	w, err := newRebuildWriter(ctx, s, r.keys, r.tables)
	if err != nil {
		return nil, err
	}
	r.w = w
	return r, nil
}

// create resets the rebuild keys and creates their tables.
func (r *Rebuild) create(ctx context.Context) error {
	tx, err := r.s.begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer tx.Rollback()
	if err := r.s.lockKeys(ctx, tx, r.keys...); err != nil {
		return err
	}
	r.tables = r.tables[:0]
	for _, key := range r.keys {
		if err := r.s.dropKey(ctx, tx, key); err != nil {
			return err
		}
		tbl, err := r.s.ensureTable(ctx, tx, key)
		if err != nil {
			return err
		}
		r.tables = append(r.tables, tbl)
	}
	return tx.Commit()
}

// Close stops the writer, rolling back what it has not committed, and releases the
// prepared statements.
func (r *Rebuild) Close() {
	if r.w != nil {
		r.w.close()
	}
}

// Finish waits for the writer to commit everything Apply accepted, then checks that
// every copy's stored checkpoint is the one Apply reached.
func (r *Rebuild) Finish(ctx context.Context) error {
	if err := r.w.flush(ctx); err != nil {
		return err
	}
	if !r.loaded {
		return nil
	}
	for i, v := range r.views {
		cp, err := v.Checkpoint(ctx)
		if err != nil {
			return err
		}
		if cp != r.cps[i] {
			return fmt.Errorf("rebuild %s: checkpoint %d stored, %d applied", v.cfg.Name, cp, r.cps[i])
		}
	}
	return nil
}

// SwapIn finishes the rebuild (Finish) and makes the copies the live views, in one
// transaction (Store.SwapIn).
func (r *Rebuild) SwapIn(ctx context.Context) error {
	if err := r.Finish(ctx); err != nil {
		return err
	}
	if err := r.reconcileRegistry(ctx); err != nil {
		return err
	}
	if err := r.s.SwapIn(ctx, r.names...); err != nil {
		return err
	}
	for _, name := range ViewNames {
		if !slices.Contains(r.names, name) {
			return nil
		}
	}
	// Every view is the log's again.
	if _, err := r.s.db.ExecContext(ctx, r.s.q(`DELETE FROM store_meta WHERE key = ?`), metaRebuildAdvised); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return nil
}

// reconcileRegistry makes the registry of event ids agree with the log up to the last
// sequence the rebuild read: the writer registered every id it read that the registry
// lacked; this gives every id read its first sequence where a row says otherwise, and
// removes the rows up to there that name an id the log does not hold (a damaged or
// edited store). A registry that was empty when the rebuild began holds only what the
// rebuild and live projectors registered, in log order, and is left as it is.
func (r *Rebuild) reconcileRegistry(ctx context.Context) error {
	if !r.loaded || r.registryWasEmpty {
		return nil
	}
	last := r.cps[0]
	for _, cp := range r.cps[1:] {
		last = max(last, cp)
	}
	rows, err := r.s.db.QueryContext(ctx, `SELECT event_id, seq FROM event_ids`)
	if err != nil {
		return fmt.Errorf("rebuild: event ids: %w", err)
	}
	var wrong []any // id, first sequence
	var stray []string
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			rows.Close()
			return fmt.Errorf("rebuild: event ids: %w", err)
		}
		first, ok := r.first[id]
		switch {
		case ok && first != uint64(seq):
			wrong = append(wrong, id, int64(first))
		case !ok && uint64(seq) <= last:
			stray = append(stray, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rebuild: event ids: %w", err)
	}
	if len(wrong) == 0 && len(stray) == 0 {
		return nil
	}
	tx, err := r.s.begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer tx.Rollback()
	for i := 0; i < len(wrong); i += 2 {
		if _, err := tx.ExecContext(ctx, r.s.q(`UPDATE event_ids SET seq = ? WHERE event_id = ?`), wrong[i+1], wrong[i]); err != nil {
			return fmt.Errorf("rebuild: event ids: %w", err)
		}
	}
	for lo := 0; lo < len(stray); lo += registryChunk {
		part := stray[lo:min(lo+registryChunk, len(stray))]
		args := make([]any, 0, len(part)+1)
		for _, id := range part {
			args = append(args, id)
		}
		args = append(args, int64(last))
		if _, err := tx.ExecContext(ctx, r.s.q(`DELETE FROM event_ids WHERE event_id IN (`+placeholderList(len(part))+`) AND seq <= ?`), args...); err != nil {
			return fmt.Errorf("rebuild: event ids: %w", err)
		}
	}
	return tx.Commit()
}

// load reads every copy's checkpoint and state from the store, once the writer has
// committed what it was given.
func (r *Rebuild) load(ctx context.Context) error {
	if r.loaded {
		return r.w.failed()
	}
	if err := r.w.flush(ctx); err != nil {
		return err
	}
	r.cps, r.sts = make([]uint64, len(r.views)), make([]viewState, len(r.views))
	for i, v := range r.views {
		cp, err := v.Checkpoint(ctx)
		if err != nil {
			return err
		}
		st, err := v.state(ctx, r.s.db)
		if err != nil {
			return err
		}
		r.cps[i], r.sts[i] = cp, st
	}
	// The writer is idle (flushed): it starts from what is stored.
	copy(r.w.committed, r.cps)
	copy(r.w.cps, r.cps)
	copy(r.w.sts, r.sts)
	r.loaded = true
	return nil
}

// Park implements the consume loop's Parker: once the writer has committed every
// batch before it, each copy that has not passed seq parks a message that does not
// decode, as its live view does.
func (r *Rebuild) Park(ctx context.Context, seq uint64, subject, reason string) error {
	if err := r.w.flush(ctx); err != nil {
		return err
	}
	r.loaded = false // the checkpoints move in the store
	for _, v := range r.views {
		cp, err := v.Checkpoint(ctx)
		if err != nil {
			return err
		}
		if cp >= seq {
			continue
		}
		if err := v.Park(ctx, seq, subject, reason); err != nil {
			return err
		}
	}
	return nil
}

// Name implements the projector contract.
func (r *Rebuild) Name() string { return "rebuild:" + strings.Join(r.keys, ",") }

// Checkpoint implements the projector contract: the smallest of the checkpoints Apply
// has reached (the writer may not have committed them yet).
func (r *Rebuild) Checkpoint(ctx context.Context) (uint64, error) {
	if err := r.load(ctx); err != nil {
		return 0, err
	}
	low := r.cps[0]
	for _, cp := range r.cps[1:] {
		low = min(low, cp)
	}
	return low, nil
}

// Apply implements the projector contract: it decides every copy's rows of the batch
// and hands them, with their bodies, states and checkpoints, to the writer, which
// commits them with the next few batches in one transaction.
func (r *Rebuild) Apply(ctx context.Context, batch []domain.Stored) error {
	if len(batch) == 0 {
		return nil
	}
	if err := r.load(ctx); err != nil {
		return err
	}
	b := r.w.batch()
	applied := false
	for _, s := range batch {
		e := s.Event
		keep := r.types[e.Type] // the copies that read its type
		// The first sequence of its id, over the whole log: the id is registered the
		// first time it is read, whatever the copies that keep the event.
		// Each value is converted to an interface once, whatever the rows it goes in.
		var seq, id any
		bodied := false
		first, ok := r.first[e.ID]
		if !ok {
			first = s.Seq
			r.first[strings.Clone(e.ID)] = first // the event's strings share one string of its values
			seq, id = int64(s.Seq), e.ID
			b.ids = append(b.ids, id, seq)
		}
		for i, v := range r.views {
			cp := r.cps[i]
			if s.Seq <= cp {
				continue
			}
			if s.Seq != cp+1 {
				return fmt.Errorf("view %s: %w: checkpoint %d, next event %d", v.cfg.Table, ErrGap, cp, s.Seq)
			}
			r.cps[i], applied = s.Seq, true
			st := &r.sts[i]
			late := !st.maxTime.IsZero() && e.Time.Before(st.maxTime.Add(-v.cfg.Lateness))
			if e.Time.After(st.maxTime) {
				st.maxTime = e.Time
			}
			if late {
				st.late++
			}
			if keep&(1<<i) == 0 || first != s.Seq {
				continue // not of its types, or an id the log already holds
			}
			if !bodied {
				bodied = true
				b.bodies = append(b.bodies, seq, string(s.Raw))
			}
			k := s.Seq << 1
			if late {
				k |= 1
			}
			b.kept[i] = append(b.kept[i], k)
		}
	}
	if !applied {
		r.w.recycle(b)
		return nil
	}
	b.events = len(batch)
	for i := range r.views {
		b.cps[i], b.sts[i] = r.cps[i], r.sts[i]
	}
	return r.w.send(ctx, b)
}

// errRebuildClosed is returned after Close.
var errRebuildClosed = errors.New("rebuild: closed")

// rebuildStmts prepares, on the database, the multi-row inserts of every size the
// writer runs: for each copy's table, event_bodies and event_ids.
func rebuildStmts(ctx context.Context, s *Store, tables []string) (*stmtCache, error) {
	c := &stmtCache{db: true, stmts: map[string]*sql.Stmt{}}
	for t := 0; t < len(tables)+2; t++ {
		m := rebuildTarget(s, tables, t, c)
		for k := bulkRows; k > 0; k /= 2 {
			if _, err := m.prepare(ctx, k); err != nil {
				c.close()
				return nil, err
			}
		}
	}
	return c, nil
}

// rebuildTarget is the multi-row insert of the writer's table t: the copies' tables,
// then event_bodies, then event_ids.
func rebuildTarget(s *Store, tables []string, t int, c *stmtCache) *multiRow {
	switch n := len(tables); {
	case t < n:
		return newMultiRow(s, nil, `INSERT INTO `+tables[t]+` `+blocksCols+` VALUES `, 3, blocksUpsert(tables[t]), c)
	case t == n:
		return newBodies(s, nil, c)
	}
	// A row already there is left as it is (an upsert would lock it on PostgreSQL for the
	// writer's long transaction); reconcileRegistry corrects it at the end.
	return newMultiRow(s, nil, `INSERT INTO event_ids (event_id, seq) VALUES `, 2, ` ON CONFLICT DO NOTHING`, c)
}
