package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// Report names (REPORTS.md).
const (
	UnauthorizedReport = "unauthorized"
	AlertsReport       = "alerts"
	ConsentReport      = "consent"
	RetentionReport    = "retention"
	ExposureReport     = "exposure"
	AccessAuditReport  = "access-audit"
)

// ReportNames lists the reports in a fixed order.
var ReportNames = []string{AccessAuditReport, AlertsReport, ConsentReport, ExposureReport, RetentionReport, UnauthorizedReport}

// reportView is the view each report is computed from.
var reportView = map[string]string{
	UnauthorizedReport: UnauthorizedView,
	ConsentReport:      ConsentView,
	RetentionReport:    RetentionView,
	ExposureReport:     ExposureView,
	AccessAuditReport:  AccessAuditView,
}

// ReportViews names the views a report is computed from.
func ReportViews(report string) []string {
	if report == AlertsReport {
		var out []string
		for _, v := range ViewNames {
			if specs[v].findings != nil {
				out = append(out, v)
			}
		}
		return out
	}
	if v, ok := reportView[report]; ok {
		return []string{v}
	}
	return nil
}

// Params are a report's parameters. The zero value of every optional field is valid.
type Params struct {
	// AsOf is the instant the rules are evaluated at: only events whose time is at or
	// before it count. Required.
	AsOf time.Time
	// AsOfSeq, when > 0, restricts the report to the log prefix up to that sequence.
	AsOfSeq uint64
	// Location is the time zone times are printed in. Optional; default UTC.
	Location *time.Location
	// RedactionBuffer overrides the default 4 h. Optional.
	RedactionBuffer time.Duration
	// Access-audit filters. Optional.
	Agent, Interaction string
	From, To           time.Time
	Flagged            *bool
	// Offset and Limit page the access-audit rows (Limit 0: all). Optional.
	Offset, Limit int
}

// Header holds the fields every report carries.
type Header struct {
	Report      string `json:"report"`
	AsOf        string `json:"asOf"`
	LogPosition uint64 `json:"logPosition"`
	ExecutionID string `json:"executionId"`
	// LateEvents counts the events of the view's types up to LogPosition that arrived
	// more than the allowed lateness behind the latest event time before them (kept in
	// the access audit only).
	LateEvents int64 `json:"lateEvents"`
	// Integrity ties the report to the log it was computed from (set by the caller).
	Integrity *Proof `json:"integrity,omitempty"`
}

// Proof is what a report carries to prove itself: the Merkle tree of the log prefix it
// was computed from (size and root, and the signed checkpoint of that size when one
// could be signed), the parameters it was computed with, and the SHA-256 of its own
// canonical body. custody verify-report recomputes both from the log.
type Proof struct {
	Origin     string            `json:"origin"`
	TreeSize   uint64            `json:"treeSize"`
	RootHash   string            `json:"rootHash"`
	Checkpoint string            `json:"checkpoint,omitempty"`
	Parameters map[string]string `json:"parameters"`
	BodySHA256 string            `json:"bodySha256"`
}

// UnauthorizedAgent is one row of the unauthorized report.
type UnauthorizedAgent struct {
	AgentID      string   `json:"agentId"`
	Count        int      `json:"count"`
	Interactions []string `json:"interactions"`
}

// UnauthorizedResult is the unauthorized report.
type UnauthorizedResult struct {
	Header
	Threshold   int                 `json:"threshold"`
	WindowHours int                 `json:"windowHours"`
	Agents      []UnauthorizedAgent `json:"agents"`
}

// ConsentViolation is one row of the consent report.
type ConsentViolation struct {
	InteractionID string   `json:"interactionId"`
	Reasons       []string `json:"reasons"`
}

// ConsentResult is the consent report.
type ConsentResult struct {
	Header
	Required   int                `json:"required"`
	Captured   int                `json:"captured"`
	Rate       string             `json:"rate"`
	Violations []ConsentViolation `json:"violations"`
}

// RetentionRecording is one recording of the retention report.
type RetentionRecording struct {
	RecordingID   string `json:"recordingId"`
	InteractionID string `json:"interactionId"`
	Kind          string `json:"kind"`
	StoredAt      string `json:"storedAt"`
	DueAt         string `json:"dueAt"`
	LegalHold     bool   `json:"legalHold"`
	Status        string `json:"status"`
	Redaction     string `json:"redaction"`
}

// RetentionPurge is one purge of the retention report.
type RetentionPurge struct {
	RecordingID string `json:"recordingId"`
	OperatorID  string `json:"operatorId"`
	PurgedAt    string `json:"purgedAt"`
	RecordCount int64  `json:"recordCount"`
	Reason      string `json:"reason"`
}

// RetentionResult is the retention report.
type RetentionResult struct {
	Header
	Recordings []RetentionRecording `json:"recordings"`
	Purges     []RetentionPurge     `json:"purges"`
}

// ExposureAgent is one agent of the exposure report.
type ExposureAgent struct {
	AgentID                  string         `json:"agentId"`
	EPHIInteractions         int            `json:"ephiInteractions"`
	UnauthorizedInteractions int            `json:"unauthorizedInteractions"`
	PendingRedactionViews    int            `json:"pendingRedactionViews"`
	ByInteractionType        map[string]int `json:"byInteractionType"`
	ByChannel                map[string]int `json:"byChannel"`
}

// ExposureResult is the exposure report.
type ExposureResult struct {
	Header
	Agents []ExposureAgent `json:"agents"`
}

// AuditRow is one touch of the access-audit report.
type AuditRow struct {
	Time           string  `json:"time"`
	AgentID        string  `json:"agentId"`
	InteractionID  string  `json:"interactionId"`
	Action         string  `json:"action"`
	Channel        *string `json:"channel"`
	Classification *string `json:"classification"`
	Authorized     bool    `json:"authorized"`
	Flagged        bool    `json:"flagged"`
	EventID        string  `json:"eventId"`
	Late           bool    `json:"late"`
}

// AuditResult is the access-audit report.
type AuditResult struct {
	Header
	Total  int        `json:"total"`
	Offset int        `json:"offset"`
	Rows   []AuditRow `json:"rows"`
}

// AlertRow is one alert of the alerts report.
type AlertRow struct {
	ID             string   `json:"id"`
	Rule           string   `json:"rule"`
	AgentID        string   `json:"agentId,omitempty"`
	InteractionIDs []string `json:"interactionIds"`
	RecordingID    string   `json:"recordingId,omitempty"`
	TriggeredAt    string   `json:"triggeredAt"`
	RaisedAt       string   `json:"raisedAt"`
	Status         string   `json:"status"`
	RetractedAt    string   `json:"retractedAt,omitempty"`
}

// AlertsResult is the alerts report.
type AlertsResult struct {
	Header
	Alerts []AlertRow `json:"alerts"`
}

// Report computes a report from its view as of p.AsOf (and p.AsOfSeq). It returns a
// pointer to one of the *Result types, whose Header the caller completes with the
// execution id.
func (s *Store) Report(ctx context.Context, name string, p Params) (any, error) {
	if p.AsOf.IsZero() {
		return nil, fmt.Errorf("report %s: AsOf is required", name)
	}
	if p.Location == nil {
		p.Location = time.UTC
	}
	ft := func(t time.Time) string { return t.In(p.Location).Format(time.RFC3339Nano) }
	view, ok := reportView[name]
	if !ok && name != AlertsReport {
		return nil, fmt.Errorf("report %q: must be one of %s", name, strings.Join(ReportNames, ", "))
	}
	q, done, err := s.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", name, err)
	}
	defer done()
	if name == AlertsReport {
		return s.alertsReport(ctx, q, p, ft)
	}
	l, pos, err := s.loadLedger(ctx, q, view, p.AsOf, p.AsOfSeq, specs[view].keepLate)
	if err != nil {
		return nil, err
	}
	if p.RedactionBuffer > 0 {
		l.RedactionBuffer = p.RedactionBuffer
	}
	late, err := s.lateEvents(ctx, q, view, pos)
	if err != nil {
		return nil, err
	}
	h := Header{Report: name, AsOf: ft(p.AsOf), LogPosition: pos, LateEvents: late}
	asOf := p.AsOf
	switch name {
	case UnauthorizedReport:
		r := &UnauthorizedResult{Header: h, Threshold: domain.Threshold, WindowHours: int(domain.Window / time.Hour), Agents: []UnauthorizedAgent{}}
		for _, a := range l.Agents() {
			if ids := l.Count(a, asOf, asOf); len(ids) > 0 {
				r.Agents = append(r.Agents, UnauthorizedAgent{AgentID: a, Count: len(ids), Interactions: ids})
			}
		}
		sort.SliceStable(r.Agents, func(i, j int) bool {
			if r.Agents[i].Count != r.Agents[j].Count {
				return r.Agents[i].Count > r.Agents[j].Count
			}
			return r.Agents[i].AgentID < r.Agents[j].AgentID
		})
		return r, nil
	case ConsentReport:
		r := &ConsentResult{Header: h, Violations: []ConsentViolation{}}
		for _, id := range l.Interactions() {
			if !l.NeedsConsent(id, asOf) {
				continue
			}
			r.Required++
			if l.HasConsent(id, asOf) {
				r.Captured++
			}
			if f, ok := l.ConsentViolation(id, asOf); ok {
				r.Violations = append(r.Violations, ConsentViolation{InteractionID: id, Reasons: f.Reasons})
			}
		}
		r.Rate = domain.Rate(int64(r.Captured), int64(r.Required))
		return r, nil
	case RetentionReport:
		r := &RetentionResult{Header: h, Recordings: []RetentionRecording{}, Purges: []RetentionPurge{}}
		for _, rid := range l.Recordings() {
			st, ok := l.Recording(rid, asOf)
			if !ok {
				continue
			}
			r.Recordings = append(r.Recordings, RetentionRecording{RecordingID: rid, InteractionID: st.InteractionID, Kind: st.Kind,
				StoredAt: ft(st.StoredAt), DueAt: ft(st.DueAt), LegalHold: st.LegalHold, Status: st.Status, Redaction: st.Redaction})
		}
		for _, e := range l.Purges(asOf) {
			d := e.Data.(*domain.RecordPurged)
			r.Purges = append(r.Purges, RetentionPurge{RecordingID: d.RecordingID, OperatorID: d.OperatorID, PurgedAt: ft(e.Time), RecordCount: d.RecordCount, Reason: d.Reason})
		}
		return r, nil
	case ExposureReport:
		r := &ExposureResult{Header: h, Agents: []ExposureAgent{}}
		for _, a := range l.Agents() {
			x, ok := l.Exposure(a, asOf)
			if !ok {
				continue
			}
			r.Agents = append(r.Agents, ExposureAgent{AgentID: a, EPHIInteractions: x.EPHIInteractions, UnauthorizedInteractions: x.UnauthorizedInteractions,
				PendingRedactionViews: x.PendingRedactionViews, ByInteractionType: x.ByInteractionType, ByChannel: x.ByChannel})
		}
		return r, nil
	case AccessAuditReport:
		return s.auditReport(l, h, p, ft)
	}
	return nil, fmt.Errorf("report %q: unknown", name)
}

func (s *Store) auditReport(l *domain.Ledger, h Header, p Params, ft func(time.Time) string) (*AuditResult, error) {
	asOf := p.AsOf
	touches := l.Touches(asOf)
	r := &AuditResult{Header: h, Offset: p.Offset, Rows: []AuditRow{}}
	sort.Slice(touches, func(i, j int) bool {
		a, b := touches[i], touches[j]
		switch {
		case !a.Event.Time.Equal(b.Event.Time):
			return a.Event.Time.Before(b.Event.Time)
		case a.InteractionID != b.InteractionID:
			return a.InteractionID < b.InteractionID
		case a.AgentID != b.AgentID:
			return a.AgentID < b.AgentID
		case a.Action != b.Action:
			return a.Action < b.Action
		}
		return a.Event.ID < b.Event.ID
	})
	type ixInfo struct {
		channel, class *string
		ephi           bool
	}
	cache := map[string]ixInfo{}
	for _, t := range touches {
		if p.Agent != "" && t.AgentID != p.Agent || p.Interaction != "" && t.InteractionID != p.Interaction {
			continue
		}
		if !p.From.IsZero() && t.Event.Time.Before(p.From) || !p.To.IsZero() && t.Event.Time.After(p.To) {
			continue
		}
		info, ok := cache[t.InteractionID]
		if !ok {
			if ch := l.Channel(t.InteractionID, asOf); ch != "" {
				info.channel = &ch
			}
			if c, ok := l.Classification(t.InteractionID, asOf); ok {
				class := c.DataClassification
				info.class = &class
				info.ephi = domain.IsEPHI(class)
			}
			cache[t.InteractionID] = info
		}
		auth := l.Authorized(t.AgentID, t.InteractionID, asOf)
		row := AuditRow{Time: ft(t.Event.Time), AgentID: t.AgentID, InteractionID: t.InteractionID, Action: t.Action,
			Channel: info.channel, Classification: info.class, Authorized: auth, Flagged: info.ephi && !auth, EventID: t.Event.ID}
		if p.Flagged != nil && row.Flagged != *p.Flagged {
			continue
		}
		r.Total++
		r.Rows = append(r.Rows, row)
	}
	if p.Offset > 0 {
		r.Rows = r.Rows[min(p.Offset, len(r.Rows)):]
	}
	if p.Limit > 0 && len(r.Rows) > p.Limit {
		r.Rows = r.Rows[:p.Limit]
	}
	return r, nil
}

// findingIDs are the ids of every finding a view's rules show as of asOf.
func (s *Store) findingIDs(ctx context.Context, q queryer, view string, asOf time.Time, seq uint64, buffer time.Duration) (map[string]bool, uint64, error) {
	sp := specs[view]
	l, pos, err := s.loadLedger(ctx, q, view, asOf, seq, sp.keepLate)
	if err != nil {
		return nil, 0, err
	}
	if buffer > 0 {
		l.RedactionBuffer = buffer
	}
	scope := domain.NewScope()
	for _, a := range l.Agents() {
		scope.Agents[a] = struct{}{}
	}
	for _, i := range l.Interactions() {
		scope.Interactions[i] = struct{}{}
	}
	for _, r := range l.Recordings() {
		scope.Recordings[r] = struct{}{}
	}
	ids := map[string]bool{}
	if sp.findings != nil {
		for _, f := range sp.findings(l, scope, asOf) {
			ids[f.AlertID()] = true
		}
	}
	return ids, pos, nil
}

func (s *Store) alertsReport(ctx context.Context, q queryer, p Params, ft func(time.Time) string) (*AlertsResult, error) {
	r := &AlertsResult{Header: Header{Report: AlertsReport, AsOf: ft(p.AsOf)}, Alerts: []AlertRow{}}
	holds := map[string]map[string]bool{}
	var pos uint64
	for _, v := range ViewNames {
		if specs[v].findings == nil {
			continue
		}
		ids, vp, err := s.findingIDs(ctx, q, v, p.AsOf, p.AsOfSeq, p.RedactionBuffer)
		if err != nil {
			return nil, err
		}
		holds[v] = ids
		if pos == 0 || vp < pos {
			pos = vp
		}
	}
	r.LogPosition = pos
	query := `SELECT id, view, rule, agent_id, interaction_ids, recording_id, triggered_at, raised_at, retracted_at FROM alerts WHERE triggered_at <= ?`
	args := []any{dbTime(p.AsOf)}
	if p.AsOfSeq > 0 {
		query += ` AND seq <= ?`
		args = append(args, int64(p.AsOfSeq))
	}
	query += ` ORDER BY ` + s.textOrder("triggered_at") + `, ` + s.textOrder("id")
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("alerts report: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a                       AlertRow
			view, ixs, trig, raised string
			retracted               sql.NullString
		)
		if err := rows.Scan(&a.ID, &view, &a.Rule, &a.AgentID, &ixs, &a.RecordingID, &trig, &raised, &retracted); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(ixs), &a.InteractionIDs); err != nil {
			return nil, err
		}
		tt, _ := parseDBTime(trig)
		rt, _ := parseDBTime(raised)
		a.TriggeredAt, a.RaisedAt = ft(tt), ft(rt)
		if holds[view][a.ID] {
			a.Status = "active"
		} else {
			a.Status = "retracted"
			if retracted.Valid {
				t, _ := parseDBTime(retracted.String)
				a.RetractedAt = ft(t)
			} else {
				a.RetractedAt = ft(p.AsOf)
			}
		}
		r.Alerts = append(r.Alerts, a)
	}
	return r, rows.Err()
}
