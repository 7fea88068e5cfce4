package projections

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// The alerts table is the one part of the store that is not a fold of the log: an alert's
// raisedAt and retractedAt come from the wall clock of the process that raised or
// retracted it, and a rebuild raises nothing. A backup therefore carries the table
// itself (docs/adr/0008-backup.md): ExportAlerts writes every row, every column, as JSON
// Lines, and ImportAlerts loads them into a fresh store. The views' live projectors read
// the active alerts from the table (the rows of their view not retracted), so alerts
// imported before the first live batch are never raised again.

// AlertRecord is one row of the alerts table as a backup holds it: every column, in the
// store's own text forms (times fixed-width UTC, interaction ids and body as stored), so
// that an import gives back the same bytes.
type AlertRecord struct {
	ID   string `json:"id"`
	View string `json:"view"`
	Rule string `json:"rule"`
	// AgentID and RecordingID are empty when the rule names none.
	AgentID string `json:"agentId"`
	// InteractionIDs is the column's text: a JSON array of strings.
	InteractionIDs string `json:"interactionIds"`
	RecordingID    string `json:"recordingId"`
	// Scope is what the alert is about ("agent:ID", "interaction:ID", "recording:ID"):
	// the entities whose events can retract it.
	Scope       string `json:"scope"`
	TriggeredAt string `json:"triggeredAt"`
	RaisedAt    string `json:"raisedAt"`
	// Seq is the view's checkpoint when the alert was raised.
	Seq int64 `json:"seq"`
	// RetractedAt is nil while the alert is active.
	RetractedAt *string `json:"retractedAt"`
	// Published: the alerts stream acknowledged it.
	Published bool `json:"published"`
	// Body is the alert.raised event published to the alerts stream, as stored.
	Body string `json:"body"`
}

// ErrAlertRecord: a line of an alerts export is not a valid row of the alerts table.
var ErrAlertRecord = errors.New("not an alert record")

const alertColumns = `id, view, rule, agent_id, interaction_ids, recording_id, scope, triggered_at, raised_at, seq, retracted_at, published, body`

// ExportAlerts writes every row of the alerts table to w as JSON Lines, one AlertRecord a
// line, ordered by id, from one consistent read, and returns how many it wrote.
func (s *Store) ExportAlerts(ctx context.Context, w io.Writer) (int, error) {
	q, done, err := s.snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("export alerts: %w", err)
	}
	defer done()
	rows, err := q.QueryContext(ctx, `SELECT `+alertColumns+` FROM alerts ORDER BY `+s.textOrder("id"))
	if err != nil {
		return 0, fmt.Errorf("export alerts: %w", err)
	}
	defer rows.Close()
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	for rows.Next() {
		var (
			a         AlertRecord
			retracted sql.NullString
		)
		if err := rows.Scan(&a.ID, &a.View, &a.Rule, &a.AgentID, &a.InteractionIDs, &a.RecordingID, &a.Scope,
			&a.TriggeredAt, &a.RaisedAt, &a.Seq, &retracted, &a.Published, &a.Body); err != nil {
			return n, fmt.Errorf("export alerts: %w", err)
		}
		if retracted.Valid {
			a.RetractedAt = &retracted.String
		}
		// JSON would replace invalid UTF-8: such a row would not come back as it is.
		if err := a.validate(); err != nil {
			return n, fmt.Errorf("export alerts: row %d (in id order): %w", n+1, err)
		}
		if err := enc.Encode(a); err != nil {
			return n, fmt.Errorf("export alerts: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("export alerts: %w", err)
	}
	return n, bw.Flush()
}

// maxAlertLine bounds a line of an alerts export (an alert body is a few hundred bytes).
const maxAlertLine = 1 << 20

// ReadAlerts decodes an alerts export, checking every line (known members only, every
// column valid, no id twice), and calls fn with each record in order. It returns how many
// records it read. An error names the line and the column, never a value: the caller may
// show it.
func ReadAlerts(r io.Reader, fn func(AlertRecord) error) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxAlertLine)
	seen := map[string]int{}
	n, line := 0, 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var a AlertRecord
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return n, fmt.Errorf("line %d: %w: %v", line, ErrAlertRecord, jsonProblem(err))
		}
		if dec.More() {
			return n, fmt.Errorf("line %d: %w: more than one JSON value", line, ErrAlertRecord)
		}
		if err := a.validate(); err != nil {
			return n, fmt.Errorf("line %d: %w", line, err)
		}
		if first, dup := seen[a.ID]; dup {
			return n, fmt.Errorf("line %d: %w: id: the id of line %d again", line, ErrAlertRecord, first)
		}
		seen[a.ID] = line
		if err := fn(a); err != nil {
			return n, fmt.Errorf("line %d: %w", line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("line %d: %w", line+1, err)
	}
	return n, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: must be a JSON %s", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return err.Error()[len("json: "):] // the member's name only
	}
	return "invalid JSON"
}

// validate checks a record against the alerts table's columns.
func (a AlertRecord) validate() error {
	var bad []string
	retracted := ""
	if a.RetractedAt != nil {
		retracted = *a.RetractedAt
	}
	for _, c := range []struct{ name, v string }{{"id", a.ID}, {"view", a.View}, {"rule", a.Rule}, {"agentId", a.AgentID},
		{"interactionIds", a.InteractionIDs}, {"recordingId", a.RecordingID}, {"scope", a.Scope}, {"triggeredAt", a.TriggeredAt},
		{"raisedAt", a.RaisedAt}, {"retractedAt", retracted}, {"body", a.Body}} {
		if !utf8.ValidString(c.v) {
			bad = append(bad, c.name+": not valid UTF-8")
		}
	}
	for _, c := range []struct{ name, v string }{{"id", a.ID}, {"rule", a.Rule}, {"scope", a.Scope}} {
		if c.v == "" {
			bad = append(bad, c.name+": required")
		}
	}
	if _, ok := specs[a.View]; !ok || specs[a.View].findings == nil {
		bad = append(bad, "view: not a view that raises alerts")
	}
	if kind, _, ok := strings.Cut(a.Scope, ":"); a.Scope != "" && (!ok || (kind != "agent" && kind != "interaction" && kind != "recording")) {
		bad = append(bad, "scope: must be agent:ID, interaction:ID or recording:ID")
	}
	var ixs []string
	if err := json.Unmarshal([]byte(a.InteractionIDs), &ixs); err != nil || ixs == nil {
		bad = append(bad, "interactionIds: must be a JSON array of strings")
	}
	times := map[string]string{"triggeredAt": a.TriggeredAt, "raisedAt": a.RaisedAt}
	if a.RetractedAt != nil {
		times["retractedAt"] = *a.RetractedAt
	}
	for col, v := range times {
		if t, err := parseDBTime(v); err != nil || dbTime(t) != v {
			bad = append(bad, col+": must be a UTC time of the form "+sortableTime)
		}
	}
	if a.Seq < 0 {
		bad = append(bad, "seq: must not be negative")
	}
	if !json.Valid([]byte(a.Body)) {
		bad = append(bad, "body: must be a JSON event")
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return fmt.Errorf("%w: %s", ErrAlertRecord, strings.Join(bad, "; "))
}

// AlertCount returns how many rows the alerts table holds.
func (s *Store) AlertCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM alerts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count alerts: %w", err)
	}
	return n, nil
}

// ErrAlertsPresent: ImportAlerts into a store whose alerts table is not empty.
var ErrAlertsPresent = errors.New("the store already holds alerts")

// ImportAlerts loads an alerts export (as ExportAlerts wrote it, checked by ReadAlerts)
// into the alerts table, all of it or nothing, in one transaction, and returns how many
// rows it loaded. The table must be empty (ErrAlertsPresent): an import restores a
// store, it does not merge two. Call it before the views' live projectors first run on
// the store (after a rebuild, which raises nothing): they then take the imported active
// alerts as raised and never raise them again, and the outbox publishes those not yet
// published.
func (s *Store) ImportAlerts(ctx context.Context, r io.Reader) (int, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("import alerts: %w", err)
	}
	defer tx.Rollback()
	// Serialize with every view's projector (PostgreSQL; SQLite's write lock is held).
	if err := s.lockKeys(ctx, tx, ViewNames...); err != nil {
		return 0, fmt.Errorf("import alerts: %w", err)
	}
	var have int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM alerts`).Scan(&have); err != nil {
		return 0, fmt.Errorf("import alerts: %w", err)
	}
	if have > 0 {
		return 0, fmt.Errorf("import alerts: %w (%d)", ErrAlertsPresent, have)
	}
	ins, err := tx.PrepareContext(ctx, s.q(`INSERT INTO alerts (`+alertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return 0, fmt.Errorf("import alerts: %w", err)
	}
	defer ins.Close()
	n, err := ReadAlerts(r, func(a AlertRecord) error {
		var retracted sql.NullString
		if a.RetractedAt != nil {
			retracted = sql.NullString{String: *a.RetractedAt, Valid: true}
		}
		if _, err := ins.ExecContext(ctx, a.ID, a.View, a.Rule, a.AgentID, a.InteractionIDs, a.RecordingID, a.Scope,
			a.TriggeredAt, a.RaisedAt, a.Seq, retracted, a.Published, a.Body); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("import alerts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("import alerts: commit: %w", err)
	}
	return n, nil
}
