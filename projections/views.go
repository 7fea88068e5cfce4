package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// The five views (DESIGN.md; REPORTS.md names their reports).
const (
	AccessAuditView  = "access-audit"
	ConsentView      = "consent"
	RetentionView    = "retention"
	ExposureView     = "exposure"
	UnauthorizedView = "unauthorized-24h"
)

// ViewNames lists the views in a fixed order.
var ViewNames = []string{AccessAuditView, ConsentView, RetentionView, ExposureView, UnauthorizedView}

// DefaultLateness is the allowed lateness: an event more than this far behind the latest
// event time seen before it is late. It stays in the log and the access audit, is
// counted, and is left out of the other views.
const DefaultLateness = 24 * time.Hour

// spec says what one view keeps and which findings it raises.
type spec struct {
	types    map[domain.Type]bool
	keepLate bool
	// findings evaluates the view's rules over what a batch changed.
	findings func(l *domain.Ledger, s domain.Scope, asOf time.Time) []domain.Finding
	// ticks: time alone can make this view's findings true (overdue), so they are also
	// evaluated on a clock.
	ticks bool
}

func types(ts ...domain.Type) map[domain.Type]bool {
	m := map[domain.Type]bool{}
	for _, t := range ts {
		m[t] = true
	}
	return m
}

var specs = map[string]spec{
	AccessAuditView: {
		types: types(domain.InteractionStartedType, domain.InteractionClassifiedType, domain.AgentAssignedType,
			domain.PHIAccessedType, domain.InteractionEndedType, domain.TrainingCompletedType, domain.TrainingExpiredType),
		keepLate: true,
		findings: func(l *domain.Ledger, s domain.Scope, asOf time.Time) []domain.Finding {
			var out []domain.Finding
			for _, a := range sortedSet(s.Agents) {
				out = append(out, l.AgentFindings(a, asOf)...)
			}
			for _, i := range sortedSet(s.Interactions) {
				out = append(out, l.TransportFindings(i, asOf)...)
			}
			return out
		},
	},
	ConsentView: {
		types: types(domain.InteractionStartedType, domain.InteractionClassifiedType, domain.ConsentCapturedType,
			domain.ConsentDeclinedType, domain.PHIAccessedType, domain.RecordingStoredType, domain.InteractionEndedType),
		findings: func(l *domain.Ledger, s domain.Scope, asOf time.Time) []domain.Finding {
			var out []domain.Finding
			for _, i := range sortedSet(s.Interactions) {
				out = append(out, l.ConsentFindings(i, asOf)...)
			}
			return out
		},
	},
	RetentionView: {
		types: types(domain.RecordingStoredType, domain.RedactionRequestedType, domain.RedactionCompletedType, domain.RecordPurgedType),
		findings: func(l *domain.Ledger, s domain.Scope, asOf time.Time) []domain.Finding {
			var out []domain.Finding
			for _, r := range sortedSet(s.Recordings) {
				out = append(out, l.RecordingFindings(r, asOf)...)
			}
			return out
		},
		ticks: true,
	},
	ExposureView: {
		types: types(domain.InteractionStartedType, domain.InteractionClassifiedType, domain.AgentAssignedType,
			domain.PHIAccessedType, domain.RedactionRequestedType, domain.RedactionCompletedType),
	},
	UnauthorizedView: {
		types: types(domain.InteractionClassifiedType, domain.AgentAssignedType, domain.PHIAccessedType),
		findings: func(l *domain.Ledger, s domain.Scope, asOf time.Time) []domain.Finding {
			var out []domain.Finding
			for _, a := range sortedSet(s.Agents) {
				out = append(out, l.ThresholdFindings(a, asOf)...)
			}
			return out
		},
	},
}

func sortedSet(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// scopeOf names the entity a finding belongs to, so that a later evaluation of that
// entity can retract it.
func scopeOf(f domain.Finding) string {
	switch f.Rule {
	case domain.RuleUnauthorizedAccessThreshold, domain.RuleAuthorizationDiscrepancy, domain.RuleTrainingExpiredOpen:
		return "agent:" + f.AgentID
	case domain.RuleConsentViolation, domain.RuleRecordedAfterDecline, domain.RuleInsecureEmailTransport:
		return "interaction:" + f.InteractionIDs[0]
	}
	return "recording:" + f.RecordingID
}

func inScope(scope string, s domain.Scope) bool {
	kind, id, _ := strings.Cut(scope, ":")
	var ok bool
	switch kind {
	case "agent":
		_, ok = s.Agents[id]
	case "interaction":
		_, ok = s.Interactions[id]
	case "recording":
		_, ok = s.Recordings[id]
	}
	return ok
}

// ViewConfig configures a view projector. The zero value of every optional field is valid.
type ViewConfig struct {
	// Name is one of ViewNames. Required.
	Name string
	// Silent raises no alerts (rebuilds). Optional.
	Silent bool
	// Bulk loads a fresh copy from the start of the log, many rows per statement:
	// duplicates are found in memory (every id passed is remembered) instead of in the
	// store's registry of event ids, which it does not write (a report recomputed in a
	// scratch store; rebuilds use Rebuild). Optional.
	Bulk bool
	// Table is the name its rows are kept under; a rebuild writes a fresh copy under
	// another name and swaps it in. Optional; default Name.
	Table string
	// Lateness is the allowed lateness. Optional; default DefaultLateness.
	Lateness time.Duration
	// Now is the wall clock, for raisedAt and for findings that time alone makes true.
	// Optional; default time.Now.
	Now func() time.Time
	// RedactionBuffer overrides the default 4 h. Optional.
	RedactionBuffer time.Duration
	// OnRaise, if set, is called after a commit that raised alerts, with the alerts it
	// inserted into the outbox (none when it only brought retracted ones back), so they
	// can be published at once; the outbox table stays the record of what is still to
	// publish. Optional.
	OnRaise func(fresh []OutboxAlert)
}

// View is one view's projector: it keeps the events its rules need (each with its
// sequence and whether it arrived late), its checkpoint and its state in one
// transaction per batch, and raises the view's alerts into the alerts outbox in the same
// transaction, the first time the rules show them. Reports evaluate the rules over the
// kept events as of any instant (see Report); see docs/adr/0004-views.md.
type View struct {
	s      *Store
	cfg    ViewConfig
	spec   spec
	ledger *domain.Ledger
	raised bool   // the open transaction raised alerts
	loaded uint64 // the checkpoint the live ledger reflects; ledger nil when unknown
	// redriven is the view's redrive count the live ledger reflects: a redrive (by any
	// process) applies an event below the checkpoint, so the ledger is reloaded.
	redriven int64
	// fresh are the alerts the open transaction inserted into the outbox.
	fresh  []OutboxAlert
	active map[string]string
	seen   map[string]uint64 // bulk: every id passed so far, with the sequence that first stored it
}

// NewView returns the projector of one view.
func NewView(s *Store, cfg ViewConfig) (*View, error) {
	sp, ok := specs[cfg.Name]
	if !ok {
		return nil, fmt.Errorf("view %q: must be one of %s", cfg.Name, strings.Join(ViewNames, ", "))
	}
	if cfg.Table == "" {
		cfg.Table = cfg.Name
	}
	if cfg.Lateness == 0 {
		cfg.Lateness = DefaultLateness
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &View{s: s, cfg: cfg, spec: sp}, nil
}

// Name implements the projector contract: the table name.
func (v *View) Name() string { return v.cfg.Table }

// Checkpoint implements the projector contract.
func (v *View) Checkpoint(ctx context.Context) (uint64, error) {
	return v.s.Checkpoint(ctx, v.cfg.Table)
}

type viewState struct {
	maxTime time.Time
	late    int64
}

func (v *View) state(ctx context.Context, q queryer) (viewState, error) {
	var st viewState
	var mt string
	err := v.s.stmt(ctx, q, qViewState).QueryRowContext(ctx, v.cfg.Table).Scan(&mt, &st.late)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("view %s state: %w", v.cfg.Table, err)
	}
	st.maxTime, err = parseDBTime(mt)
	return st, err
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Apply keeps a batch's events, moves the checkpoint and raises the alerts the batch
// made visible, in one transaction.
func (v *View) Apply(ctx context.Context, batch []domain.Stored) (err error) {
	if len(batch) == 0 {
		return nil
	}
	defer func() {
		if err != nil {
			// The in-memory ledger may hold events of the rolled-back batch: reload it
			// from the store next time.
			v.ledger, v.raised, v.fresh = nil, false, nil
		}
	}()
	tx, err := v.s.begin(ctx)
	if err != nil {
		return fmt.Errorf("view %s: %w", v.cfg.Table, err)
	}
	defer tx.Rollback()
	cp, err := v.s.checkpointTx(ctx, tx, v.cfg.Table)
	if err != nil {
		return err
	}
	live := !v.cfg.Silent && v.spec.findings != nil
	if live {
		redriven, err := v.s.redrives(ctx, tx, v.cfg.Table)
		if err != nil {
			return err
		}
		if v.ledger == nil || v.loaded != cp || v.redriven != redriven {
			if err := v.loadLive(ctx, tx); err != nil {
				return err
			}
			v.loaded = cp // the ledger reflects the store at cp, even if the batch applies nothing
			v.redriven = redriven
		}
	}
	st, err := v.state(ctx, tx)
	if err != nil {
		return err
	}
	tbl, err := v.s.ensureTable(ctx, tx, v.cfg.Table)
	if err != nil {
		return err
	}
	// Whether an event counts is decided over the whole log (the registry of event
	// ids, registry.go): a bulk copy, filled from the start, keeps every id it passed in
	// memory; a live view asks the store.
	var first map[string]uint64
	if v.cfg.Bulk {
		if v.seen == nil {
			v.seen = map[string]uint64{}
		}
	} else if first, err = v.s.firstSeqs(ctx, tx, batch, cp); err != nil {
		return fmt.Errorf("view %s: %w", v.cfg.Table, err)
	}
	ins := newInserter(v.s, tx, tbl, v.cfg.Bulk)
	defer ins.close()
	scope := domain.NewScope()
	applied := false
	for _, s := range batch {
		if s.Seq <= cp {
			continue
		}
		if s.Seq != cp+1 {
			return fmt.Errorf("view %s: %w: checkpoint %d, next event %d", v.cfg.Table, ErrGap, cp, s.Seq)
		}
		cp, applied = s.Seq, true
		e := s.Event
		late := !st.maxTime.IsZero() && e.Time.Before(st.maxTime.Add(-v.cfg.Lateness))
		if e.Time.After(st.maxTime) {
			st.maxTime = e.Time
		}
		if late {
			st.late++
		}
		if v.cfg.Bulk {
			if _, ok := v.seen[e.ID]; !ok {
				v.seen[strings.Clone(e.ID)] = s.Seq // the event's strings share one string of its values
			}
			if v.seen[e.ID] != s.Seq {
				continue // an id the log already holds, whatever the type: the same event
			}
		} else if first[e.ID] != s.Seq {
			continue
		}
		if !v.spec.types[e.Type] {
			continue
		}
		if v.cfg.Bulk {
			if err := ins.add(ctx, s, late); err != nil {
				return fmt.Errorf("view %s: sequence %d: %w", v.cfg.Table, s.Seq, err)
			}
		} else if inserted, err := ins.one(ctx, s, late); err != nil {
			return fmt.Errorf("view %s: sequence %d: %w", v.cfg.Table, s.Seq, err)
		} else if !inserted {
			continue // an id the view already has: the same event
		}
		if live && (!late || v.spec.keepLate) {
			v.ledger.Add(e)
			v.ledger.Touch(scope, e)
		}
	}
	if !applied {
		return nil
	}
	if err := ins.flush(ctx); err != nil {
		return fmt.Errorf("view %s: %w", v.cfg.Table, err)
	}
	if _, err := v.s.stmt(ctx, tx, qSetViewState).ExecContext(ctx, v.cfg.Table, dbTime(st.maxTime), st.late); err != nil {
		return fmt.Errorf("view %s state: %w", v.cfg.Table, err)
	}
	if live {
		// The rules are evaluated at the view's watermark, the latest event time it has
		// seen (never ahead of the wall clock): what the log shows so far, without
		// claiming that time has passed that the log has not reached yet. Time-driven
		// findings past the watermark come from Tick once the view is caught up.
		at := st.maxTime
		if now := v.cfg.Now(); at.After(now) {
			at = now
		}
		if err := v.raise(ctx, tx, scope, cp, at); err != nil {
			return err
		}
	}
	if err := v.s.setCheckpoint(ctx, tx, v.cfg.Table, cp); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("view %s: commit: %w", v.cfg.Table, err)
	}
	v.loaded = cp
	v.notify()
	return nil
}

func (v *View) notify() {
	if v.raised && v.cfg.OnRaise != nil {
		v.cfg.OnRaise(v.fresh)
	}
	v.raised, v.fresh = false, nil
}

// Tick evaluates, at the wall clock, the findings that time alone can make true
// (retention and redaction overdue) over every entity of the view. Call it when the view
// is caught up with the log; before that, the wall clock is ahead of what the view knows.
func (v *View) Tick(ctx context.Context) (err error) {
	if v.cfg.Silent || !v.spec.ticks {
		return nil
	}
	defer func() {
		if err != nil {
			v.ledger, v.raised, v.fresh = nil, false, nil // the active alerts may be ahead of the store
		}
	}()
	tx, err := v.s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cp, err := v.s.checkpointTx(ctx, tx, v.cfg.Table)
	if err != nil {
		return err
	}
	redriven, err := v.s.redrives(ctx, tx, v.cfg.Table)
	if err != nil {
		return err
	}
	if v.ledger == nil || v.loaded != cp || v.redriven != redriven {
		if err := v.loadLive(ctx, tx); err != nil {
			return err
		}
		v.redriven = redriven
	}
	scope := domain.NewScope()
	for _, r := range v.ledger.Recordings() {
		scope.Recordings[r] = struct{}{}
	}
	if err := v.raise(ctx, tx, scope, cp, v.cfg.Now()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	v.loaded = cp
	v.notify()
	return nil
}

func agentOf(e domain.Event) string {
	switch d := e.Data.(type) {
	case *domain.AgentAssigned:
		return d.AgentID
	case *domain.PHIAccessed:
		return d.AgentID
	}
	if e.Type.AgentSubject() {
		return e.Subject
	}
	return ""
}

// loadLive rebuilds the in-memory ledger and the set of active alerts from the store.
func (v *View) loadLive(ctx context.Context, q queryer) error {
	l, _, err := v.s.loadLedger(ctx, q, v.cfg.Table, time.Time{}, 0, v.spec.keepLate)
	if err != nil {
		return err
	}
	if v.cfg.RedactionBuffer > 0 {
		l.RedactionBuffer = v.cfg.RedactionBuffer
	}
	rows, err := q.QueryContext(ctx, v.s.q(`SELECT id, scope FROM alerts WHERE view = ? AND retracted_at IS NULL`), v.cfg.Name)
	if err != nil {
		return fmt.Errorf("view %s alerts: %w", v.cfg.Table, err)
	}
	defer rows.Close()
	active := map[string]string{}
	for rows.Next() {
		var id, scope string
		if err := rows.Scan(&id, &scope); err != nil {
			return err
		}
		active[id] = scope
	}
	if err := rows.Err(); err != nil {
		return err
	}
	v.ledger, v.active = l, active
	return nil
}

// raise evaluates the view's findings over a scope at an instant: a finding not yet
// raised goes to the alerts outbox; an active alert of the scope that the rules no
// longer show is marked retracted (never deleted).
func (v *View) raise(ctx context.Context, tx *sql.Tx, scope domain.Scope, seq uint64, at time.Time) error {
	now := v.cfg.Now().UTC()
	found := v.spec.findings(v.ledger, scope, at)
	ids := map[string]bool{}
	for _, f := range found {
		id := f.AlertID()
		ids[id] = true
		if _, ok := v.active[id]; ok {
			continue
		}
		body, err := alertEvent(id, v.cfg.Name, f, now)
		if err != nil {
			return err
		}
		interactions, _ := json.Marshal(nonNil(f.InteractionIDs))
		res, err := v.s.stmt(ctx, tx, qRaise).ExecContext(ctx, id, v.cfg.Name, f.Rule, f.AgentID, string(interactions), f.RecordingID, scopeOf(f), dbTime(f.TriggeredAt), dbTime(now), int64(seq), false, string(body))
		if err != nil {
			return fmt.Errorf("raise %s: %w", f.Rule, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Raised before and retracted since: the condition is back.
			if _, err := v.s.stmt(ctx, tx, qUnretract).ExecContext(ctx, id); err != nil {
				return err
			}
		} else {
			v.fresh = append(v.fresh, OutboxAlert{ID: id, Body: body})
		}
		v.active[id] = scopeOf(f)
		v.raised = true
	}
	for id, sc := range v.active {
		if ids[id] || !inScope(sc, scope) {
			continue
		}
		if _, err := v.s.stmt(ctx, tx, qRetract).ExecContext(ctx, dbTime(now), id); err != nil {
			return err
		}
		delete(v.active, id)
	}
	return nil
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// alertEvent builds the alert.raised event published to the alerts stream.
func alertEvent(id, view string, f domain.Finding, raisedAt time.Time) ([]byte, error) {
	subject := f.AgentID
	if subject == "" && len(f.InteractionIDs) > 0 {
		subject = f.InteractionIDs[0]
	}
	if subject == "" {
		subject = f.RecordingID
	}
	e := domain.Event{ID: id, Source: "custody/" + view, Type: domain.AlertRaisedType, Time: raisedAt, Subject: subject,
		DataContentType: domain.ContentType, Data: f.Alert()}
	return e.MarshalJSON()
}

// loadLedger reads a view's kept events into a ledger: those at or before asOf (zero:
// all), with sequence at most seq (0: all), late ones only when includeLate. It returns
// the last sequence considered (the checkpoint, or seq when smaller).
func (s *Store) loadLedger(ctx context.Context, q queryer, table string, asOf time.Time, seq uint64, includeLate bool) (*domain.Ledger, uint64, error) {
	var cp int64
	err := s.stmt(ctx, q, qCheckpoint).QueryRowContext(ctx, table).Scan(&cp)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, 0, err
	}
	pos := uint64(cp)
	if seq > 0 && seq < pos {
		pos = seq
	}
	l := domain.NewLedger()
	tbl, layout, err := s.tableLayout(ctx, q, table)
	if err != nil || tbl == "" {
		return l, pos, err
	}
	var query string
	var args []any
	switch layout {
	case layoutBlocks:
		last, _ := blockOf(pos)
		query, args = blocksSelect(tbl, includeLate), []any{last}
	default:
		query = `SELECT v.seq, v.body, v.late FROM ` + tbl + ` v WHERE v.seq <= ?`
		if layout == layoutShared {
			query = `SELECT v.seq, b.body, v.late FROM ` + tbl + ` v JOIN event_bodies b ON b.seq = v.seq WHERE v.seq <= ?`
		}
		args = []any{int64(pos)}
		if !asOf.IsZero() {
			query += ` AND v.event_time <= ?`
			args = append(args, dbTime(asOf))
		}
		if !includeLate {
			query += ` AND v.late = ?`
			args = append(args, false)
		}
		query += ` ORDER BY v.seq`
	}
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("load %s: %w", table, err)
	}
	defer rows.Close()
	var at int64
	var body []byte
	var late any
	for rows.Next() {
		if err := rows.Scan(&at, &body, &late); err != nil {
			return nil, 0, err
		}
		if uint64(at) > pos {
			continue // past the position, in its last block (layoutBlocks)
		}
		e, err := domain.Parse(body)
		if err != nil {
			return nil, 0, fmt.Errorf("load %s: sequence %d: %w", table, at, err)
		}
		// layoutBlocks keeps no event times beside the bodies: the instant is
		// applied here (the same comparison as the older layouts' SQL).
		if keptBefore(e, asOf) {
			l.Add(e)
		}
	}
	return l, pos, rows.Err()
}

// inserter writes a view's rows: one statement per row with conflict detection (live),
// or many rows per statement (bulk loads, where duplicates were dropped in memory). In
// layoutShared the body goes to event_bodies, once per event whatever the views that
// keep it.
type inserter struct {
	s      *Store
	tx     *sql.Tx
	tbl    string
	layout int // 0 until looked up
	bulk   bool
	stmt   *sql.Stmt // one row, conflict detection
	body   *sql.Stmt // one body (layoutShared)
	rows   *multiRow // bulk: the view's rows
	bodies *multiRow // bulk: their bodies (layoutShared, layoutBlocks)
	blocks blockSet  // bulk, layoutBlocks: the bits not yet written
}

// close releases the prepared statements.
func (in *inserter) close() {
	if in.stmt != nil {
		in.stmt.Close()
	}
	for _, m := range []*multiRow{in.rows, in.bodies} {
		if m != nil {
			m.close()
		}
	}
}

// The columns of a view's table in each layout.
const (
	inlineCols = `(seq, event_id, type, subject, agent, event_time, late, body)`
	sharedCols = `(seq, event_id, event_time, late)`
)

// bulkRows is how many rows one bulk INSERT carries (a power of two).
const bulkRows = 256

// newInserter writes into tbl within tx: row by row with one, or in bulk with add and
// flush (bulk says which; the table's layout is looked up at the first row).
func newInserter(s *Store, tx *sql.Tx, tbl string, bulk bool) *inserter {
	return &inserter{s: s, tx: tx, tbl: tbl, bulk: bulk}
}

// init looks the table's layout up, once per transaction.
func (in *inserter) init(ctx context.Context) error {
	if in.layout != 0 {
		return nil
	}
	layout, err := in.s.layoutOf(ctx, in.tx, in.tbl)
	in.layout = layout
	return err
}

func (in *inserter) cols() (string, int) {
	switch in.layout {
	case layoutInline:
		return inlineCols, 8
	case layoutShared:
		return sharedCols, 4
	}
	return blocksCols, 3
}

// conflict ends the inserts of a row: a block already there is added to.
func (in *inserter) conflict() string {
	if in.layout == layoutBlocks {
		return blocksUpsert(in.tbl)
	}
	return ``
}

func (in *inserter) rowArgs(st domain.Stored, late bool) []any {
	e := st.Event
	switch in.layout {
	case layoutInline:
		return []any{int64(st.Seq), e.ID, string(e.Type), e.Subject, agentOf(e), dbTime(e.Time), late, string(st.Raw)}
	case layoutShared:
		return []any{int64(st.Seq), e.ID, dbTime(e.Time), late}
	}
	block, bit := blockOf(st.Seq)
	lateBit := int64(0)
	if late {
		lateBit = bit
	}
	return []any{block, bit, lateBit}
}

// one inserts a row unless its event id is already there.
func (in *inserter) one(ctx context.Context, st domain.Stored, late bool) (bool, error) {
	if in.stmt == nil { // prepared once per transaction, not per row
		if err := in.init(ctx); err != nil {
			return false, err
		}
		cols, n := in.cols()
		conflict := ` ON CONFLICT DO NOTHING`
		if in.layout == layoutBlocks { // unless the event's bit is set already
			conflict = blocksUpsert(in.tbl) + ` WHERE (` + in.tbl + `.kept & excluded.kept) = 0`
		}
		stmt, err := in.tx.PrepareContext(ctx, in.s.q(`INSERT INTO `+in.tbl+` `+cols+` VALUES `+placeholders(n)+conflict))
		if err != nil {
			return false, err
		}
		in.stmt = stmt
	}
	res, err := in.stmt.ExecContext(ctx, in.rowArgs(st, late)...)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if in.layout != layoutInline {
		if in.body == nil {
			in.body = in.s.stmt(ctx, in.tx, qBody)
		}
		if _, err := in.body.ExecContext(ctx, int64(st.Seq), string(st.Raw)); err != nil {
			return false, fmt.Errorf("body: %w", err)
		}
	}
	return true, nil
}

func (in *inserter) add(ctx context.Context, st domain.Stored, late bool) error {
	if in.rows == nil {
		if err := in.init(ctx); err != nil {
			return err
		}
		cols, n := in.cols()
		in.rows = newMultiRow(in.s, in.tx, `INSERT INTO `+in.tbl+` `+cols+` VALUES `, n, in.conflict(), nil)
		if in.layout != layoutInline {
			in.bodies = newBodies(in.s, in.tx, nil)
		}
	}
	if in.layout == layoutBlocks {
		in.blocks.add(st.Seq, late) // written by flush, each block once
	} else if err := in.rows.add(ctx, in.rowArgs(st, late)...); err != nil {
		return err
	}
	if in.bodies != nil {
		return in.bodies.add(ctx, int64(st.Seq), string(st.Raw))
	}
	return nil
}

func (in *inserter) flush(ctx context.Context) error {
	for _, r := range in.blocks.rows {
		if err := in.rows.add(ctx, r.block, r.kept, r.late); err != nil {
			return err
		}
	}
	in.blocks.reset()
	for _, m := range []*multiRow{in.rows, in.bodies} {
		if m != nil {
			if err := m.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// multiRow inserts rows into one table, bulkRows per statement; the rest of a
// transaction's rows go in statements of power-of-two sizes, so that a handful of
// statements serve every count. They are prepared once per transaction, or once for
// all when the caller passes a cache (prepared on the database, used in each
// transaction).
type multiRow struct {
	s          *Store
	tx         *sql.Tx
	head, tail string // the statement around its VALUES tuples
	cols       int
	stmts      *stmtCache
	args       []any
	n          int
}

// stmtCache holds prepared statements by query.
type stmtCache struct {
	db    bool // prepared on the database, to be used in any transaction
	stmts map[string]*sql.Stmt
}

func (c *stmtCache) close() {
	for _, st := range c.stmts {
		st.Close()
	}
	clear(c.stmts)
}

func newMultiRow(s *Store, tx *sql.Tx, head string, cols int, tail string, cache *stmtCache) *multiRow {
	if cache == nil {
		cache = &stmtCache{stmts: map[string]*sql.Stmt{}}
	}
	return &multiRow{s: s, tx: tx, head: head, tail: tail, cols: cols, stmts: cache, args: make([]any, 0, bulkRows*cols)}
}

// newBodies inserts into event_bodies.
func newBodies(s *Store, tx *sql.Tx, cache *stmtCache) *multiRow {
	return newMultiRow(s, tx, `INSERT INTO event_bodies (seq, body) VALUES `, 2, ` `+bodyConflict, cache)
}

func (m *multiRow) add(ctx context.Context, args ...any) error {
	m.args = append(m.args, args...)
	m.n++
	if m.n == bulkRows {
		return m.flush(ctx)
	}
	return nil
}

func (m *multiRow) flush(ctx context.Context) error {
	args := m.args
	for n := m.n; n > 0; {
		k := bulkRows
		for k > n {
			k /= 2
		}
		st, err := m.stmt(ctx, k)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, args[:k*m.cols]...); err != nil {
			return err
		}
		args, n = args[k*m.cols:], n-k
	}
	clear(m.args)
	m.args, m.n = m.args[:0], 0
	return nil
}

// stmt returns the statement of k rows, usable in the transaction.
func (m *multiRow) stmt(ctx context.Context, k int) (*sql.Stmt, error) {
	st, err := m.prepare(ctx, k)
	if err != nil {
		return nil, err
	}
	if m.stmts.db {
		return m.tx.StmtContext(ctx, st), nil
	}
	return st, nil
}

// prepare returns the statement of k rows from the cache, preparing it when missing:
// on the transaction, or on the database for a database cache (not while a
// transaction holds SQLite's one connection).
func (m *multiRow) prepare(ctx context.Context, k int) (*sql.Stmt, error) {
	q := m.s.q(m.query(k))
	if st, ok := m.stmts.stmts[q]; ok {
		return st, nil
	}
	var st *sql.Stmt
	var err error
	if m.stmts.db {
		st, err = m.s.db.PrepareContext(ctx, q)
	} else {
		st, err = m.tx.PrepareContext(ctx, q)
	}
	if err != nil {
		return nil, err
	}
	m.stmts.stmts[q] = st
	return st, nil
}

// close releases the statements prepared for this transaction only.
func (m *multiRow) close() {
	if !m.stmts.db {
		m.stmts.close()
	}
}

// query is the INSERT of n rows.
func (m *multiRow) query(n int) string {
	var b strings.Builder
	b.WriteString(m.head)
	p := placeholders(m.cols)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p)
	}
	b.WriteString(m.tail)
	return b.String()
}

// placeholders is "(?, ?, ...)" for n columns.
func placeholders(n int) string {
	return "(" + strings.Repeat("?, ", n-1) + "?)"
}
