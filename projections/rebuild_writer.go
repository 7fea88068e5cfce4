package projections

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// How a rebuild loads its copies (measured with `go test -run '^$' -bench Rebuild
// -benchtime 1x ./cmd/custody`; see docs/adr/0004-views.md).
const (
	// rebuildCommitEvents is about how many events of the log the writer applies in one
	// transaction. A commit writes every page the transaction changed to the WAL, the
	// indexes' pages included, so fewer commits write the same pages fewer times; a
	// copy is not read before the swap, so only the WAL's size (SQLite) bounds it.
	rebuildCommitEvents = 1 << 16
	// rebuildQueue is how many batches Apply may be ahead of the writer.
	rebuildQueue = 4
	// rebuildIdle is how long the writer keeps a transaction open without a batch
	// coming before it commits: a stalled log does not hold the store's write lock.
	rebuildIdle = 100 * time.Millisecond
)

// rebuildBatch is what Apply hands the writer: the events every copy keeps (sequence<<1
// | late, in sequence order), the bodies (2 insert arguments per event kept by any
// copy), the registry's rows (2 per id read for the first time), and each copy's
// checkpoint and state after the batch.
type rebuildBatch struct {
	ctx    context.Context
	kept   [][]uint64
	bodies []any
	ids    []any
	cps    []uint64
	sts    []viewState
	events int
	// flush, when set, asks the writer to commit and reply (the batch has no rows).
	flush chan error
}

// rebuildWriter runs a rebuild's inserts and commits on a goroutine of its own. Only
// run touches the fields below "owned by run", except committed, cps and sts, which
// Rebuild.load sets while the writer is idle (after a flush; the next send publishes
// them to run).
type rebuildWriter struct {
	s      *Store
	keys   []string
	tables []string
	stmts  *stmtCache
	// byRows[t][j] is the statement inserting 1<<j rows into table t (the copies',
	// then event_bodies, then event_ids), prepared on the database.
	byRows [][]*sql.Stmt
	cols   []int
	in     chan *rebuildBatch
	free   chan *rebuildBatch
	quit   chan struct{} // closed by close
	done   chan struct{} // closed when run returns
	once   sync.Once

	mu   sync.Mutex
	err  error
	errc chan struct{} // closed with the first error

	// owned by run
	tx        *sql.Tx
	txStmts   map[*sql.Stmt]*sql.Stmt
	pend      [][]any    // the arguments not yet inserted, by table
	open      []blockRow // each copy's last block, not yet in pend (block -1: none)
	events    int        // in the open transaction
	cps       []uint64
	sts       []viewState
	dirty     []bool
	committed []uint64 // each copy's stored checkpoint
}

func newRebuildWriter(ctx context.Context, s *Store, keys, tables []string) (*rebuildWriter, error) {
	stmts, err := rebuildStmts(ctx, s, tables)
	if err != nil {
		return nil, err
	}
	n := len(tables)
	w := &rebuildWriter{s: s, keys: keys, tables: tables, stmts: stmts,
		in: make(chan *rebuildBatch, rebuildQueue), free: make(chan *rebuildBatch, rebuildQueue+2),
		quit: make(chan struct{}), done: make(chan struct{}), errc: make(chan struct{}),
		pend: make([][]any, n+2), open: make([]blockRow, n), cps: make([]uint64, n), sts: make([]viewState, n), dirty: make([]bool, n),
		committed: make([]uint64, n)}
	for t := 0; t < n+2; t++ {
		m := rebuildTarget(s, tables, t, stmts)
		var byRows []*sql.Stmt
		for k := 1; k <= bulkRows; k *= 2 {
			st, err := m.prepare(ctx, k)
			if err != nil {
				stmts.close()
				return nil, err
			}
			byRows = append(byRows, st)
		}
		w.byRows = append(w.byRows, byRows)
		w.cols = append(w.cols, m.cols)
		w.pend[t] = make([]any, 0, 2*bulkRows*m.cols)
	}
	for t := range w.open {
		w.open[t].block = -1
	}
	go w.run()
	return w, nil
}

// batch returns an empty batch to fill.
func (w *rebuildWriter) batch() *rebuildBatch {
	select {
	case b := <-w.free:
		return b
	default:
	}
	n := len(w.tables)
	return &rebuildBatch{kept: make([][]uint64, n), cps: make([]uint64, n), sts: make([]viewState, n)}
}

// recycle gives a batch back, emptied.
func (w *rebuildWriter) recycle(b *rebuildBatch) {
	for i := range b.kept {
		b.kept[i] = b.kept[i][:0]
	}
	clear(b.bodies)
	clear(b.ids)
	b.bodies, b.ids, b.ctx, b.events = b.bodies[:0], b.ids[:0], nil, 0
	select {
	case w.free <- b:
	default:
	}
}

// failed returns the writer's error, if any.
func (w *rebuildWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *rebuildWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		close(w.errc)
	}
}

// send queues a batch for the writer.
func (w *rebuildWriter) send(ctx context.Context, b *rebuildBatch) error {
	b.ctx = ctx
	select {
	case w.in <- b:
		return nil
	case <-w.errc:
		return w.failed()
	case <-w.done:
		return errRebuildClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush waits until the writer has committed every batch sent before.
func (w *rebuildWriter) flush(ctx context.Context) error {
	reply := make(chan error, 1)
	if err := w.send(ctx, &rebuildBatch{flush: reply}); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-w.done:
		return errRebuildClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the writer (rolling back what it has not committed) and releases the
// statements.
func (w *rebuildWriter) close() {
	w.once.Do(func() {
		close(w.quit)
		<-w.done
		w.stmts.close()
	})
}

func (w *rebuildWriter) run() {
	defer close(w.done)
	defer func() {
		if w.tx != nil {
			_ = w.tx.Rollback()
		}
	}()
	idle := time.NewTimer(rebuildIdle)
	defer idle.Stop()
	var last context.Context // of the last batch, for a commit while idle
	for {
		var b *rebuildBatch
		if w.tx == nil {
			select {
			case b = <-w.in:
			case <-w.quit:
				return
			}
		} else {
			idle.Reset(rebuildIdle)
			select {
			case b = <-w.in:
			case <-w.quit:
				return
			case <-idle.C:
				// Nothing came for a while (the log stalled, or Apply's caller is
				// busy): commit, which releases the store's write lock.
				w.do(func() error { return w.commit(last) })
				continue
			}
		}
		last = b.ctx
		if b.flush != nil {
			w.do(func() error { return w.commit(b.ctx) })
			b.flush <- w.failed()
			continue
		}
		w.do(func() error { return w.write(b) })
		w.recycle(b)
	}
}

// do runs step unless the writer has failed; an error rolls the transaction back and
// fails the writer.
func (w *rebuildWriter) do(step func() error) {
	if w.failed() != nil {
		return
	}
	if err := step(); err != nil {
		if w.tx != nil {
			_ = w.tx.Rollback()
			w.tx = nil
		}
		w.fail(fmt.Errorf("rebuild: %w", err))
	}
}

// write inserts a batch's rows and bodies, in the open transaction or a new one, and
// commits once the transaction holds rebuildCommitEvents events.
func (w *rebuildWriter) write(b *rebuildBatch) error {
	ctx := b.ctx
	if w.tx == nil {
		if err := w.begin(ctx); err != nil {
			return err
		}
	}
	// The registry's rows first, all of them, then the bodies: a live projector writes
	// the same shared rows in that order (its batch's ids, then its bodies), so the two
	// never wait for each other in opposite orders (a deadlock on PostgreSQL).
	n := len(b.kept)
	if err := w.insert(ctx, n+1, b.ids, true); err != nil {
		return err
	}
	if err := w.insert(ctx, n, b.bodies, false); err != nil {
		return err
	}
	for t := range n {
		// Each block goes in once per transaction, when the copy's events have passed
		// it (or at the commit): one statement never names a block twice.
		open := &w.open[t]
		for _, k := range b.kept[t] {
			block, bit := blockOf(k >> 1)
			if block != open.block {
				w.closeBlock(t)
				*open = blockRow{block: block}
			}
			open.kept |= bit
			if k&1 == 1 {
				open.late |= bit
			}
		}
		if err := w.insert(ctx, t, nil, false); err != nil {
			return err
		}
	}
	for i := range w.cps {
		if b.cps[i] != w.cps[i] {
			w.cps[i], w.sts[i], w.dirty[i] = b.cps[i], b.sts[i], true
		}
	}
	w.events += b.events
	if w.events >= rebuildCommitEvents {
		return w.commit(ctx)
	}
	return nil
}

// closeBlock moves copy t's open block to its pending rows.
func (w *rebuildWriter) closeBlock(t int) {
	if o := w.open[t]; o.block >= 0 {
		w.pend[t] = append(w.pend[t], o.block, o.kept, o.late)
		w.open[t] = blockRow{block: -1}
	}
}

// begin starts a transaction and checks that nothing else changed the copies since the
// last commit.
func (w *rebuildWriter) begin(ctx context.Context) error {
	tx, err := w.s.begin(ctx)
	if err != nil {
		return err
	}
	if err := w.s.lockKeys(ctx, tx, w.keys...); err != nil {
		_ = tx.Rollback()
		return err
	}
	for i, key := range w.keys {
		cp, err := w.s.checkpointTx(ctx, tx, key)
		if err == nil && cp != w.committed[i] {
			err = fmt.Errorf("view %s: checkpoint %d, %d expected: another process changed the copy", key, cp, w.committed[i])
		}
		if err != nil {
			_ = tx.Rollback()
			return err
		}
		tbl, err := w.s.tableOf(ctx, tx, key)
		if err == nil && tbl != w.tables[i] {
			err = fmt.Errorf("view %s: its table changed from %s to %q", key, w.tables[i], tbl)
		}
		if err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	w.tx, w.txStmts, w.events = tx, map[*sql.Stmt]*sql.Stmt{}, 0
	return nil
}

// insert adds args to table t's pending rows and inserts every full statement of them,
// or all of them with all.
func (w *rebuildWriter) insert(ctx context.Context, t int, args []any, all bool) error {
	cols := w.cols[t]
	full := bulkRows * cols
	p := append(w.pend[t], args...)
	for len(p) >= full || (all && len(p) > 0) {
		j := len(w.byRows[t]) - 1
		for (1<<j)*cols > len(p) {
			j--
		}
		n := (1 << j) * cols
		st, ok := w.txStmts[w.byRows[t][j]]
		if !ok {
			st = w.tx.StmtContext(ctx, w.byRows[t][j])
			w.txStmts[w.byRows[t][j]] = st
		}
		if _, err := st.ExecContext(ctx, p[:n]...); err != nil {
			switch n := len(w.keys); {
			case t < n:
				return fmt.Errorf("view %s: %w", w.keys[t], err)
			case t == n:
				return fmt.Errorf("bodies: %w", err)
			}
			return fmt.Errorf("event ids: %w", err)
		}
		p = p[n:]
	}
	// Keep the rest at the start of the buffer, without references behind it.
	rest := copy(w.pend[t][:cap(w.pend[t])], p)
	clear(w.pend[t][rest:cap(w.pend[t])])
	w.pend[t] = w.pend[t][:rest]
	return nil
}

// commit inserts the pending rows, writes the states and checkpoints of the copies the
// transaction moved, and commits.
func (w *rebuildWriter) commit(ctx context.Context) error {
	if w.tx == nil {
		return nil
	}
	for t := range w.open {
		w.closeBlock(t)
	}
	for t := range w.pend {
		if err := w.insert(ctx, t, nil, true); err != nil {
			return err
		}
	}
	for i, key := range w.keys {
		if !w.dirty[i] {
			continue
		}
		if _, err := w.s.stmt(ctx, w.tx, qSetViewState).ExecContext(ctx, key, dbTime(w.sts[i].maxTime), w.sts[i].late); err != nil {
			return fmt.Errorf("view %s state: %w", key, err)
		}
		if err := w.s.setCheckpoint(ctx, w.tx, key, w.cps[i]); err != nil {
			return err
		}
	}
	if err := w.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.tx, w.txStmts = nil, nil
	for i := range w.keys {
		if w.dirty[i] {
			w.committed[i], w.dirty[i] = w.cps[i], false
		}
	}
	return nil
}
