package main_test

// A brute-force oracle for the reports of REPORTS.md, written from the words of
// ../shared/contract/EVENTS.md and REPORTS.md only (plus the product decisions listed on
// oracleOpts), independently of the projections. It favours the most direct reading:
// every rule is a loop over all events, nothing is indexed or cached, so that it is
// easy to check line by line against the contract.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
)

// oracleOpts are the parameters the contract leaves configurable, plus the as-of-seq
// prefix.
//
// Product decisions the oracle follows where the contract is silent:
//   - the event set of a report is the events whose time is at or before asOf (and whose
//     stream sequence is at most AsOfSeq when set); an id seen twice counts once, the
//     first stored;
//   - an event is late when its time is more than Lateness before the maximum event time
//     of all events stored before it (whole log order, independent of asOf); late events
//     are left out of consent, retention, exposure and unauthorized, kept in the access
//     audit (rows and the attributes of rows, see AuditExcludesLate);
//   - the redaction buffer is RedactionBuffer.
type oracleOpts struct {
	AsOfSeq         int           // 0: the whole log
	Lateness        time.Duration // 0: 24 h
	RedactionBuffer time.Duration // 0: 4 h
	// AuditExcludesLate: compute the channel, classification and authorization of
	// access-audit rows without late events (rows themselves always include them). The
	// default (false) takes late events into account everywhere in the access audit.
	AuditExcludesLate bool
}

func (o oracleOpts) lateness() time.Duration {
	if o.Lateness == 0 {
		return 24 * time.Hour
	}
	return o.Lateness
}

func (o oracleOpts) buffer() time.Duration {
	if o.RedactionBuffer == 0 {
		return 4 * time.Hour
	}
	return o.RedactionBuffer
}

// oracleStored deduplicates events in log order (the first of an id is stored) and
// returns the stored events with their sequence (1-based) and whether each is late.
func oracleStored(events []domain.Event, lateness time.Duration) (stored []domain.Event, late []bool) {
	seen := map[string]bool{}
	for _, e := range events {
		id := strings.ToLower(e.ID)
		if seen[id] {
			continue
		}
		seen[id] = true
		stored = append(stored, e)
	}
	// max is the maximum event time of all events stored before stored[i].
	late = make([]bool, len(stored))
	var max time.Time
	for i, e := range stored {
		if i > 0 && max.Sub(e.Time) > lateness {
			late[i] = true
		}
		if i == 0 || e.Time.After(max) {
			max = e.Time
		}
	}
	return stored, late
}

// oracleSets returns the event set of a report: all (late included) and onTime.
func oracleSets(events []domain.Event, asOf time.Time, opts oracleOpts) (all, onTime []domain.Event) {
	stored, late := oracleStored(events, opts.lateness())
	for i, e := range stored {
		if opts.AsOfSeq > 0 && i+1 > opts.AsOfSeq {
			continue
		}
		if e.Time.After(asOf) {
			continue
		}
		all = append(all, e)
		if !late[i] {
			onTime = append(onTime, e)
		}
	}
	return all, onTime
}

// lowerID is the tie rule: smallest id by byte order of the (lower-case) string.
func lowerID(a, b domain.Event) bool { return strings.ToLower(a.ID) < strings.ToLower(b.ID) }

// ---- rules of EVENTS.md, each a scan of the whole set ----

var classRank = map[string]int{"public": 0, "internal": 1, "protected_health_information": 2, "restricted": 3}

// decidingClassification is the latest interaction.classified of I by time; on a tie the
// more restrictive class, then the smallest id.
func decidingClassification(set []domain.Event, I string) (domain.Event, *domain.InteractionClassified) {
	var best domain.Event
	var bd *domain.InteractionClassified
	for _, e := range set {
		d, ok := e.Data.(*domain.InteractionClassified)
		if !ok || e.Subject != I {
			continue
		}
		if bd == nil {
			best, bd = e, d
			continue
		}
		switch {
		case e.Time.After(best.Time):
			best, bd = e, d
		case e.Time.Equal(best.Time):
			if classRank[d.DataClassification] > classRank[bd.DataClassification] ||
				classRank[d.DataClassification] == classRank[bd.DataClassification] && lowerID(e, best) {
				best, bd = e, d
			}
		}
	}
	return best, bd
}

func isEPHI(set []domain.Event, I string) bool {
	_, d := decidingClassification(set, I)
	return d != nil && (d.DataClassification == "protected_health_information" || d.DataClassification == "restricted")
}

// authorized: the flag of the latest agent.assigned for A on I by time, false winning a
// tie; no assignment: not authorized.
func authorized(set []domain.Event, A, I string) bool {
	found := false
	var bt time.Time
	var flag bool
	for _, e := range set {
		d, ok := e.Data.(*domain.AgentAssigned)
		if !ok || e.Subject != I || d.AgentID != A {
			continue
		}
		switch {
		case !found || e.Time.After(bt):
			found, bt, flag = true, e.Time, d.Authorized
		case e.Time.Equal(bt):
			flag = flag && d.Authorized
		}
	}
	return found && flag
}

// channel: that of the earliest interaction.started (ties: smallest id); "" when none.
func channelOf(set []domain.Event, I string) string {
	var best domain.Event
	var bd *domain.InteractionStarted
	for _, e := range set {
		d, ok := e.Data.(*domain.InteractionStarted)
		if !ok || e.Subject != I {
			continue
		}
		if bd == nil || e.Time.Before(best.Time) || e.Time.Equal(best.Time) && lowerID(e, best) {
			best, bd = e, d
		}
	}
	if bd == nil {
		return ""
	}
	return bd.Channel
}

type touch struct {
	ev     domain.Event
	agent  string
	inter  string
	action string
}

// touchOf reports the touch an event is, if any.
func touchOf(e domain.Event) (touch, bool) {
	switch d := e.Data.(type) {
	case *domain.AgentAssigned:
		return touch{e, d.AgentID, e.Subject, "assigned"}, true
	case *domain.PHIAccessed:
		return touch{e, d.AgentID, e.Subject, d.Action}, true
	}
	return touch{}, false
}

func touches(set []domain.Event) []touch {
	var ts []touch
	for _, e := range set {
		if t, ok := touchOf(e); ok {
			ts = append(ts, t)
		}
	}
	return ts
}

// unauthorizedEPHI: the unauthorized ePHI interactions of A in the set, each with its
// time (A's earliest touch of it).
func unauthorizedEPHI(set []domain.Event, A string) map[string]time.Time {
	return unauthorizedEPHIBy(set, bySubject(set), A)
}

// unauthorizedEPHIBy is unauthorizedEPHI given bySubject(set).
func unauthorizedEPHIBy(set []domain.Event, by map[string][]domain.Event, A string) map[string]time.Time {
	out := map[string]time.Time{}
	for _, t := range touches(set) {
		if t.agent != A {
			continue
		}
		if !isEPHI(by[t.inter], t.inter) || authorized(by[t.inter], A, t.inter) {
			continue
		}
		if cur, ok := out[t.inter]; !ok || t.ev.Time.Before(cur) {
			out[t.inter] = t.ev.Time
		}
	}
	return out
}

// countAt is count(A, t) over the set: distinct unauthorized ePHI interactions of A whose
// time lies in (t-24h, t]. It returns the sorted interaction ids.
func countAt(set []domain.Event, A string, t time.Time) []string {
	return countIn(unauthorizedEPHI(set, A), t)
}

// countIn is count(A, t) given A's unauthorized ePHI interactions and their times.
func countIn(unauth map[string]time.Time, t time.Time) []string {
	var ids []string
	for I, at := range unauth {
		if at.After(t.Add(-24*time.Hour)) && !at.After(t) {
			ids = append(ids, I)
		}
	}
	sort.Strings(ids)
	return ids
}

func agentsOf(set []domain.Event) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range touches(set) {
		if !seen[t.agent] {
			seen[t.agent] = true
			out = append(out, t.agent)
		}
	}
	sort.Strings(out)
	return out
}

// bySubject groups a set by subject, keeping the set's order. The rules below filter by
// subject themselves; passing them a subject's events only saves time, it changes no
// result.
func bySubject(set []domain.Event) map[string][]domain.Event {
	by := map[string][]domain.Event{}
	for _, e := range set {
		by[e.Subject] = append(by[e.Subject], e)
	}
	return by
}

// decidingStore is the recording.stored that decides recording rec: the earliest by
// time, ties by the smallest id.
func decidingStore(set []domain.Event, rec string) (domain.Event, *domain.RecordingStored) {
	var st domain.Event
	var sd *domain.RecordingStored
	for _, e := range set {
		d, ok := e.Data.(*domain.RecordingStored)
		if !ok || d.RecordingID != rec {
			continue
		}
		if sd == nil || e.Time.Before(st.Time) || e.Time.Equal(st.Time) && lowerID(e, st) {
			st, sd = e, d
		}
	}
	return st, sd
}

// byRecording groups the events that name a recordingId by it, keeping the set's order.
func byRecording(set []domain.Event) map[string][]domain.Event {
	by := map[string][]domain.Event{}
	for _, e := range set {
		var rec string
		switch d := e.Data.(type) {
		case *domain.RecordingStored:
			rec = d.RecordingID
		case *domain.RedactionRequested:
			rec = d.RecordingID
		case *domain.RedactionCompleted:
			rec = d.RecordingID
		case *domain.RecordPurged:
			rec = d.RecordingID
		default:
			continue
		}
		by[rec] = append(by[rec], e)
	}
	return by
}

func interactionsOf(set []domain.Event) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range set {
		if e.Type.AgentSubject() {
			continue
		}
		if !seen[e.Subject] {
			seen[e.Subject] = true
			out = append(out, e.Subject)
		}
	}
	sort.Strings(out)
	return out
}

// redactionState of a recording at instant t over the set (only events at or before t).
func redactionState(set []domain.Event, rec string, t time.Time, buffer time.Duration) string {
	var last domain.Event
	var ld *domain.RedactionCompleted
	var firstReq time.Time
	haveReq := false
	for _, e := range set {
		if e.Time.After(t) {
			continue
		}
		switch d := e.Data.(type) {
		case *domain.RedactionCompleted:
			if d.RecordingID != rec {
				continue
			}
			if ld == nil || e.Time.After(last.Time) || e.Time.Equal(last.Time) && lowerID(e, last) {
				last, ld = e, d
			}
		case *domain.RedactionRequested:
			if d.RecordingID != rec {
				continue
			}
			if !haveReq || e.Time.Before(firstReq) {
				haveReq, firstReq = true, e.Time
			}
		}
	}
	switch {
	case ld != nil:
		return ld.Status
	case haveReq && t.Before(firstReq.Add(buffer)):
		return "pending"
	case haveReq:
		return "overdue"
	}
	return "none"
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// rate4 prints num/den with four decimal places, rounding half to even.
func rate4(num, den int) string {
	if den == 0 {
		return "1.0000"
	}
	q := num * 10000 / den
	r := num * 10000 % den
	if 2*r > den || 2*r == den && q%2 == 1 {
		q++
	}
	return fmt.Sprintf("%d.%04d", q/10000, q%10000)
}

// ---- the reports ----

// oracleReport computes the contract fields of report name (without report, asOf,
// logPosition and executionId) as JSON-shaped values.
func oracleReport(name string, events []domain.Event, asOf time.Time, opts oracleOpts) map[string]any {
	all, set := oracleSets(events, asOf, opts)
	switch name {
	case "unauthorized":
		return oracleUnauthorized(set, asOf)
	case "consent":
		return oracleConsent(set)
	case "retention":
		return oracleRetention(set, asOf, opts.buffer())
	case "exposure":
		return oracleExposure(set, opts.buffer())
	case "access-audit":
		attrs := all
		if opts.AuditExcludesLate {
			attrs = set
		}
		return oracleAccessAudit(all, attrs)
	}
	panic("oracle: unknown report " + name)
}

func oracleUnauthorized(set []domain.Event, asOf time.Time) map[string]any {
	type row struct {
		agent string
		ids   []string
	}
	var rows []row
	by := bySubject(set)
	for _, A := range agentsOf(set) {
		if ids := countIn(unauthorizedEPHIBy(set, by, A), asOf); len(ids) > 0 {
			rows = append(rows, row{A, ids})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if len(rows[i].ids) != len(rows[j].ids) {
			return len(rows[i].ids) > len(rows[j].ids)
		}
		return rows[i].agent < rows[j].agent
	})
	agents := []any{}
	for _, r := range rows {
		ids := []any{}
		for _, id := range r.ids {
			ids = append(ids, id)
		}
		agents = append(agents, map[string]any{"agentId": r.agent, "count": len(r.ids), "interactions": ids})
	}
	return map[string]any{"threshold": 4, "windowHours": 24, "agents": agents}
}

func oracleConsent(set []domain.Event) map[string]any {
	required, captured := 0, 0
	violations := []any{}
	by := bySubject(set)
	byRec := byRecording(set)
	for _, I := range interactionsOf(set) {
		set := by[I] // only the events of I (every scan below filters by subject anyway)
		if channelOf(set, I) != "voice" || !isEPHI(set, I) {
			continue
		}
		required++
		var firstCapture time.Time
		hasCapture, ended := false, false
		for _, e := range set {
			if e.Subject != I {
				continue
			}
			switch e.Data.(type) {
			case *domain.ConsentCaptured:
				if !hasCapture || e.Time.Before(firstCapture) {
					hasCapture, firstCapture = true, e.Time
				}
			case *domain.InteractionEnded:
				ended = true
			}
		}
		if hasCapture {
			captured++
		}
		var reasons []string
		// accessed_before_consent
		for _, e := range set {
			if _, ok := e.Data.(*domain.PHIAccessed); ok && e.Subject == I {
				if !hasCapture || e.Time.Before(firstCapture) {
					reasons = append(reasons, "accessed_before_consent")
					break
				}
			}
		}
		if ended && !hasCapture {
			reasons = append(reasons, "missing")
		}
		// recorded_after_decline: a recording.stored (audio or screen) at whose time the
		// latest consent decision at or before it (ties: smallest id) was a decline. A
		// recording stored more than once keeps its first recording.stored (EVENTS.md,
		// Ties; "a recording stored again is ignored entirely"): only deciding stores count.
		for _, r := range set {
			rd, ok := r.Data.(*domain.RecordingStored)
			if !ok || r.Subject != I || (rd.Kind != "audio" && rd.Kind != "screen") {
				continue
			}
			if first, _ := decidingStore(byRec[rd.RecordingID], rd.RecordingID); first.ID != r.ID {
				continue
			}
			var dec domain.Event
			have := false
			for _, e := range set {
				if e.Subject != I || e.Time.After(r.Time) {
					continue
				}
				if e.Type != domain.ConsentCapturedType && e.Type != domain.ConsentDeclinedType {
					continue
				}
				if !have || e.Time.After(dec.Time) || e.Time.Equal(dec.Time) && lowerID(e, dec) {
					dec, have = e, true
				}
			}
			if have && dec.Type == domain.ConsentDeclinedType {
				reasons = append(reasons, "recorded_after_decline")
				break
			}
		}
		if len(reasons) > 0 {
			sort.Strings(reasons)
			rs := []any{}
			for _, r := range reasons {
				rs = append(rs, r)
			}
			violations = append(violations, map[string]any{"interactionId": I, "reasons": rs})
		}
	}
	return map[string]any{"required": required, "captured": captured, "rate": rate4(captured, required), "violations": violations}
}

func oracleRetention(set []domain.Event, asOf time.Time, buffer time.Duration) map[string]any {
	// Recordings: every recordingId with a recording.stored; the deciding store is the
	// earliest by time, ties by smallest id.
	recIDs := map[string]bool{}
	for _, e := range set {
		if d, ok := e.Data.(*domain.RecordingStored); ok {
			recIDs[d.RecordingID] = true
		}
	}
	all := set
	byRec := byRecording(set)
	var ids []string
	for id := range recIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	recordings := []any{}
	for _, rec := range ids {
		set := byRec[rec] // only the events naming rec (every scan below filters by it anyway)
		st, sd := decidingStore(set, rec)
		due := st.Time.UTC().AddDate(sd.Retention.Years, sd.Retention.Months, sd.Retention.Days)
		var pe domain.Event
		var pd *domain.RecordPurged
		for _, e := range set {
			d, ok := e.Data.(*domain.RecordPurged)
			if !ok || d.RecordingID != rec {
				continue
			}
			if pd == nil || e.Time.Before(pe.Time) || e.Time.Equal(pe.Time) && lowerID(e, pe) {
				pe, pd = e, d
			}
		}
		var status string
		switch {
		case pd == nil && sd.LegalHold:
			status = "held"
		case pd == nil && asOf.Before(due):
			status = "active"
		case pd == nil:
			status = "overdue"
		case sd.LegalHold:
			status = "purged_under_hold"
		case pe.Time.Before(due) && pd.Reason == "retention_expired":
			status = "purged_early"
		default:
			status = "purged"
		}
		recordings = append(recordings, map[string]any{
			"recordingId":   rec,
			"interactionId": st.Subject,
			"kind":          sd.Kind,
			"storedAt":      fmtTime(st.Time),
			"dueAt":         fmtTime(due),
			"legalHold":     sd.LegalHold,
			"status":        status,
			"redaction":     redactionState(set, rec, asOf, buffer),
		})
	}
	var purges []domain.Event
	for _, e := range all {
		if e.Type == domain.RecordPurgedType {
			purges = append(purges, e)
		}
	}
	sort.SliceStable(purges, func(i, j int) bool {
		a, b := purges[i], purges[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		ra, rb := a.Data.(*domain.RecordPurged).RecordingID, b.Data.(*domain.RecordPurged).RecordingID
		if ra != rb {
			return ra < rb
		}
		return lowerID(a, b)
	})
	plist := []any{}
	for _, e := range purges {
		d := e.Data.(*domain.RecordPurged)
		plist = append(plist, map[string]any{
			"recordingId": d.RecordingID,
			"operatorId":  d.OperatorID,
			"purgedAt":    fmtTime(e.Time),
			"recordCount": d.RecordCount,
			"reason":      d.Reason,
		})
	}
	return map[string]any{"recordings": recordings, "purges": plist}
}

func oracleExposure(set []domain.Event, buffer time.Duration) map[string]any {
	agents := []any{}
	by := bySubject(set)
	byRec := byRecording(set)
	for _, A := range agentsOf(set) {
		ephi := map[string]bool{}
		for _, t := range touches(set) {
			if t.agent == A && isEPHI(by[t.inter], t.inter) {
				ephi[t.inter] = true
			}
		}
		if len(ephi) == 0 {
			continue
		}
		unauth := 0
		byType := map[string]any{}
		byChannel := map[string]any{}
		for I := range ephi {
			if !authorized(by[I], A, I) {
				unauth++
			}
			_, cd := decidingClassification(by[I], I)
			byType[cd.InteractionType] = anyInt(byType[cd.InteractionType]) + 1
			ch := channelOf(by[I], I)
			if ch == "" {
				ch = "unknown"
			}
			byChannel[ch] = anyInt(byChannel[ch]) + 1
		}
		pending := 0
		for _, e := range set {
			d, ok := e.Data.(*domain.PHIAccessed)
			if !ok || d.AgentID != A || d.RecordingID == "" || !ephi[e.Subject] {
				continue
			}
			if s := redactionState(byRec[d.RecordingID], d.RecordingID, e.Time, buffer); s == "pending" || s == "overdue" {
				pending++
			}
		}
		agents = append(agents, map[string]any{
			"agentId":                  A,
			"ephiInteractions":         len(ephi),
			"unauthorizedInteractions": unauth,
			"pendingRedactionViews":    pending,
			"byInteractionType":        byType,
			"byChannel":                byChannel,
		})
	}
	return map[string]any{"agents": agents}
}

func anyInt(v any) int {
	if v == nil {
		return 0
	}
	return v.(int)
}

// oracleAccessAudit: one row per touch in rows; attributes evaluated over attrs.
func oracleAccessAudit(rowsSet, attrs []domain.Event) map[string]any {
	ts := touches(rowsSet)
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		switch {
		case !a.ev.Time.Equal(b.ev.Time):
			return a.ev.Time.Before(b.ev.Time)
		case a.inter != b.inter:
			return a.inter < b.inter
		case a.agent != b.agent:
			return a.agent < b.agent
		case a.action != b.action:
			return a.action < b.action
		}
		return lowerID(a.ev, b.ev)
	})
	rows := []any{}
	by := bySubject(attrs)
	for _, t := range ts {
		attrs := by[t.inter]
		var ch, class any
		if c := channelOf(attrs, t.inter); c != "" {
			ch = c
		}
		if _, cd := decidingClassification(attrs, t.inter); cd != nil {
			class = cd.DataClassification
		}
		auth := authorized(attrs, t.agent, t.inter)
		rows = append(rows, map[string]any{
			"time":           fmtTime(t.ev.Time),
			"agentId":        t.agent,
			"interactionId":  t.inter,
			"action":         t.action,
			"channel":        ch,
			"classification": class,
			"authorized":     auth,
			"flagged":        isEPHI(attrs, t.inter) && !auth,
		})
	}
	return map[string]any{"rows": rows}
}

// oracleThresholdAgents lists the agents whose count reaches 4 at some instant over the
// final set (all on-time events), evaluating count(A, t) at every touch time t of A and
// at every such t + 24h (count(A, ·) only rises at A's touch times).
func oracleThresholdAgents(events []domain.Event, opts oracleOpts) map[string]bool {
	_, set := oracleSets(events, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), opts)
	out := map[string]bool{}
	by := bySubject(set)
	for _, A := range agentsOf(set) {
		unauth := unauthorizedEPHIBy(set, by, A)
		for _, t := range touches(set) {
			if t.agent != A {
				continue
			}
			for _, at := range []time.Time{t.ev.Time, t.ev.Time.Add(24 * time.Hour)} {
				if len(countIn(unauth, at)) >= 4 {
					out[A] = true
				}
			}
		}
	}
	return out
}

// normalizeJSON round-trips a value through JSON with numbers kept as text, so that the
// oracle's values and a product's decoded output compare with reflect.DeepEqual.
func normalizeJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return decodeJSON(b)
}

func decodeJSON(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		panic(fmt.Sprintf("decode %q: %v", b, err))
	}
	return out
}

// ---- self-checks of the oracle on hand-computed cases ----

// hist builds histories by hand: each event is written as a JSON line and parsed like
// the log does.
type hist struct {
	t     testing.TB
	n     int
	lines [][]byte
	evs   []domain.Event
}

var base = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func hours(h float64) time.Time { return base.Add(time.Duration(h * float64(time.Hour))) }

func uuidN(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", n) }

func eventLine(id, typ string, at time.Time, subject string, data any) []byte {
	m := map[string]any{
		"specversion": "1.0",
		"id":          id,
		"source":      "genesys-cloud/org-3f1c",
		"type":        typ,
		"time":        at.Format(time.RFC3339Nano), // in at's own zone
		"subject":     subject,
		"data":        data,
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func (h *hist) add(typ string, at time.Time, subject string, data map[string]any) domain.Event {
	h.t.Helper()
	h.n++
	return h.addID(uuidN(h.n), typ, at, subject, data)
}

func (h *hist) addID(id, typ string, at time.Time, subject string, data map[string]any) domain.Event {
	h.t.Helper()
	b := eventLine(id, typ, at, subject, data)
	e, err := domain.Parse(b)
	if err != nil {
		h.t.Fatalf("bad hand event %s: %v", b, err)
	}
	h.lines = append(h.lines, b)
	h.evs = append(h.evs, e)
	return e
}

func (h *hist) phi(I string, at time.Time) {
	h.add("interaction.classified", at, I, map[string]any{"interactionType": "claims_inquiry", "dataClassification": "protected_health_information"})
}

func (h *hist) access(I, A string, at time.Time) {
	h.add("phi.accessed", at, I, map[string]any{"agentId": A, "action": "body_viewed"})
}

func (h *hist) assign(I, A string, at time.Time, ok bool) {
	h.add("agent.assigned", at, I, map[string]any{"agentId": A, "authorized": ok})
}

func countOf(t *testing.T, r map[string]any, A string) int {
	t.Helper()
	for _, a := range r["agents"].([]any) {
		m := a.(map[string]any)
		if m["agentId"] == A {
			return m["count"].(int)
		}
	}
	return 0
}

func TestOracleSelfCheckCounter(t *testing.T) {
	// Four unauthorized ePHI interactions within 24 h: count 4.
	h := &hist{t: t}
	for i, at := range []float64{0, 5, 10, 23.5} {
		I := fmt.Sprintf("i%d", i)
		h.phi(I, hours(0))
		h.access(I, "a1", hours(at))
	}
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(23.5), oracleOpts{}), "a1"); c != 4 {
		t.Fatalf("4 touches within 24h: count %d, want 4", c)
	}
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(24), oracleOpts{}), "a1"); c != 3 {
		t.Fatalf("at 24h the touch at 0 has left the half-open window: count %d, want 3", c)
	}
	if !oracleThresholdAgents(h.evs, oracleOpts{})["a1"] {
		t.Fatal("a1 reaches 4")
	}

	// Touches at t and t+24h: count 1 at t+24h (half-open), never 2.
	h = &hist{t: t}
	h.phi("i1", hours(0))
	h.phi("i2", hours(0))
	h.access("i1", "a1", hours(10))
	h.access("i2", "a1", hours(34))
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(34), oracleOpts{}), "a1"); c != 1 {
		t.Fatalf("touches 24h apart: count %d, want 1", c)
	}
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(33.99), oracleOpts{}), "a1"); c != 1 {
		t.Fatalf("before the second touch: count %d, want 1", c)
	}

	// Boundary agent: t, t+1.5h, t+3h, t+24h -> never 4.
	h = &hist{t: t}
	for i, at := range []float64{2, 3.5, 5, 26} {
		I := fmt.Sprintf("i%d", i)
		h.phi(I, hours(0))
		h.access(I, "a1", hours(at))
	}
	if oracleThresholdAgents(h.evs, oracleOpts{})["a1"] {
		t.Fatal("boundary agent must not reach 4")
	}

	// A second touch of the same interaction is not a second interaction; its time is
	// the earliest touch.
	h = &hist{t: t}
	h.phi("i1", hours(0))
	h.access("i1", "a1", hours(1))
	h.access("i1", "a1", hours(20))
	if r := oracleReport("unauthorized", h.evs, hours(24.5), oracleOpts{}); countOf(t, r, "a1") != 1 {
		t.Fatalf("interaction time is the earliest touch: %v", r)
	}
	if r := oracleReport("unauthorized", h.evs, hours(25.5), oracleOpts{}); countOf(t, r, "a1") != 0 {
		t.Fatalf("interaction time is the earliest touch: %v", r)
	}

	// Reclassification after access makes the earlier touch unauthorized retroactively,
	// but only as of an instant at or after the reclassification.
	h = &hist{t: t}
	h.add("interaction.classified", hours(0), "i1", map[string]any{"interactionType": "other", "dataClassification": "internal"})
	h.access("i1", "a1", hours(1))
	h.phi("i1", hours(3))
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(2), oracleOpts{}), "a1"); c != 0 {
		t.Fatalf("before reclassification: %d", c)
	}
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(3), oracleOpts{}), "a1"); c != 1 {
		t.Fatalf("after reclassification: %d", c)
	}
	// Tie of classifications at the same time: the more restrictive wins.
	h.add("interaction.classified", hours(5), "i1", map[string]any{"interactionType": "other", "dataClassification": "public"})
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(5), oracleOpts{}), "a1"); c != 0 {
		t.Fatalf("declassified: %d", c)
	}
	h.add("interaction.classified", hours(5), "i1", map[string]any{"interactionType": "other", "dataClassification": "restricted"})
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(5), oracleOpts{}), "a1"); c != 1 {
		t.Fatalf("restricted wins a tie: %d", c)
	}

	// Re-authorization; a tie of assignments: false wins.
	h = &hist{t: t}
	h.phi("i1", hours(0))
	h.assign("i1", "a1", hours(1), false)
	h.assign("i1", "a1", hours(2), true)
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(1.5), oracleOpts{}), "a1"); c != 1 {
		t.Fatalf("before re-authorization: %d", c)
	}
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(2), oracleOpts{}), "a1"); c != 0 {
		t.Fatalf("after re-authorization: %d", c)
	}
	h.assign("i1", "a1", hours(2), false)
	if c := countOf(t, oracleReport("unauthorized", h.evs, hours(2), oracleOpts{}), "a1"); c != 1 {
		t.Fatalf("tie of assignments, false wins: %d", c)
	}

	// Late events are left out of the counter; the access audit keeps them.
	h = &hist{t: t}
	h.phi("i1", hours(0))
	h.access("i1", "a2", hours(30))
	h.access("i1", "a1", hours(5)) // 25 h behind the max: late
	h.access("i1", "a3", hours(6)) // exactly 24 h behind: not late
	r := oracleReport("unauthorized", h.evs, hours(28), oracleOpts{})
	if countOf(t, r, "a1") != 0 || countOf(t, r, "a3") != 1 {
		t.Fatalf("late: %v", r)
	}
	if rows := oracleReport("access-audit", h.evs, hours(40), oracleOpts{})["rows"].([]any); len(rows) != 3 {
		t.Fatalf("audit keeps late touches: %v", rows)
	}
	// Duplicate ids count once (the first stored).
	h.addID(uuidN(2), "phi.accessed", hours(31), "i1", map[string]any{"agentId": "a9", "action": "handled"})
	if rows := oracleReport("access-audit", h.evs, hours(40), oracleOpts{})["rows"].([]any); len(rows) != 3 {
		t.Fatalf("duplicate counted: %v", rows)
	}
	// --as-of-seq: only the first two stored.
	if rows := oracleReport("access-audit", h.evs, hours(40), oracleOpts{AsOfSeq: 2})["rows"].([]any); len(rows) != 1 {
		t.Fatalf("as-of-seq: %v", rows)
	}
}

func TestOracleSelfCheckRate(t *testing.T) {
	for _, c := range []struct {
		n, d int
		want string
	}{
		{0, 0, "1.0000"}, {2, 3, "0.6667"}, {1, 3, "0.3333"}, {1, 8, "0.1250"},
		{1, 32, "0.0312"}, {3, 32, "0.0938"}, {5, 32, "0.1562"}, {3, 3, "1.0000"}, {0, 7, "0.0000"},
		{1, 160000, "0.0000"}, {3, 160000, "0.0000"}, {3, 20000, "0.0002"}, {1, 20000, "0.0000"},
	} {
		if got := rate4(c.n, c.d); got != c.want {
			t.Errorf("rate4(%d, %d) = %s, want %s", c.n, c.d, got, c.want)
		}
	}
}

func TestOracleSelfCheckConsent(t *testing.T) {
	h := &hist{t: t}
	start := func(I, ch string) {
		d := map[string]any{"channel": ch, "direction": "inbound"}
		if ch == "email" {
			d["email"] = map[string]any{"to": "claims@bluepayer.example", "fromMasked": "j***@example.org", "tls": "TLSv1.3"}
		}
		h.add("interaction.started", hours(0), I, d)
	}
	cc := func(I string, at float64) {
		h.add("consent.captured", hours(at), I, map[string]any{"method": "ivr_verbal"})
	}
	cd := func(I string, at float64) {
		h.add("consent.declined", hours(at), I, map[string]any{"method": "ivr_verbal"})
	}
	rec := func(I, id, kind string, at float64) {
		h.add("recording.stored", hours(at), I, map[string]any{"recordingId": id, "kind": kind, "retention": "P1D"})
	}
	// v1: captured at 1, accessed at 1 (same instant: not before), ended.
	start("v1", "voice")
	h.phi("v1", hours(0))
	cc("v1", 1)
	h.access("v1", "a1", hours(1))
	h.add("interaction.ended", hours(2), "v1", map[string]any{})
	// v2: ended without capture; accessed; -> missing, accessed_before_consent.
	start("v2", "voice")
	h.phi("v2", hours(0))
	h.access("v2", "a1", hours(1))
	h.add("interaction.ended", hours(2), "v2", map[string]any{})
	// v3: declined, then audio recorded -> recorded_after_decline; open, no capture: not missing.
	start("v3", "voice")
	h.phi("v3", hours(0))
	cd("v3", 1)
	rec("v3", "r3", "audio", 2)
	rec("v3", "r3t", "transcript", 2)
	// v4: not ePHI -> not required.
	start("v4", "voice")
	h.add("interaction.ended", hours(2), "v4", map[string]any{})
	// v5: email PHI -> not required.
	start("v5", "email")
	h.phi("v5", hours(0))
	// v6: no start -> unknown channel, not required.
	h.phi("v6", hours(0))
	h.add("interaction.ended", hours(2), "v6", map[string]any{})
	// v7: declined then captured before the recording -> no decline; capture after end clears missing.
	start("v7", "voice")
	h.phi("v7", hours(0))
	cd("v7", 1)
	cc("v7", 1.5)
	rec("v7", "r7", "screen", 2)
	h.add("interaction.ended", hours(1), "v7", map[string]any{})
	r := normalizeJSON(oracleReport("consent", h.evs, hours(10), oracleOpts{}))
	want := normalizeJSON(map[string]any{
		"required": 4, "captured": 2, "rate": "0.5000",
		"violations": []any{
			map[string]any{"interactionId": "v2", "reasons": []any{"accessed_before_consent", "missing"}},
			map[string]any{"interactionId": "v3", "reasons": []any{"recorded_after_decline"}},
		},
	})
	if d := diffJSON("consent", want, r); d != "" {
		t.Fatal(d)
	}
	// As of 1.2: v7's capture has not happened; the ended event (at 1) is there: missing.
	r = normalizeJSON(oracleReport("consent", h.evs, hours(1.2), oracleOpts{}))
	if !strings.Contains(fmt.Sprint(r), "v7 reasons:[missing]") {
		t.Fatalf("as of 1.2: %v", r)
	}
}

func TestOracleSelfCheckRetention(t *testing.T) {
	h := &hist{t: t}
	store := func(I, rec, ret string, at float64, hold bool) {
		d := map[string]any{"recordingId": rec, "kind": "audio", "retention": ret}
		if hold {
			d["legalHold"] = true
		}
		h.add("recording.stored", hours(at), I, d)
	}
	purge := func(I, rec, reason string, at float64) {
		h.add("record.purged", hours(at), I, map[string]any{"recordingId": rec, "operatorId": "op-1", "recordCount": 1, "reason": reason})
	}
	store("i1", "r1", "P1D", 0, false) // due 24: overdue at 30
	store("i1", "r2", "P1D", 0, false) // purged early (retention_expired at 10)
	purge("i1", "r2", "retention_expired", 10)
	store("i1", "r3", "P1D", 0, false) // purged at 10 for patient_request: purged
	purge("i1", "r3", "patient_request", 10)
	store("i1", "r4", "P1D", 0, true) // held
	store("i1", "r5", "P1D", 0, true) // purged under hold
	purge("i1", "r5", "retention_expired", 30)
	store("i1", "r6", "P2D", 0, false)  // active at 30
	store("i2", "r6", "P1D", -1, true)  // re-store: earlier, so it decides (i2, hold)
	purge("i9", "rx", "legal_order", 5) // never stored: purges only
	purge("i1", "r2", "retention_expired", 26)
	store("i1", "r7", "P1D", 0, false) // purged exactly at due with retention_expired: purged
	purge("i1", "r7", "retention_expired", 24)
	// redaction
	h.add("redaction.requested", hours(1), "i1", map[string]any{"recordingId": "r1"})
	h.add("redaction.requested", hours(2), "i1", map[string]any{"recordingId": "r3"})
	h.add("redaction.completed", hours(3), "i1", map[string]any{"recordingId": "r3", "status": "failed"})
	h.add("redaction.completed", hours(3), "i1", map[string]any{"recordingId": "r3", "status": "complete"}) // larger id: loses tie
	h.add("redaction.requested", hours(26), "i1", map[string]any{"recordingId": "r7"})
	noLate := oracleOpts{Lateness: 1000 * time.Hour} // this hand history is not in time order
	r := normalizeJSON(oracleReport("retention", h.evs, hours(30), noLate))
	status := map[string]string{}
	red := map[string]string{}
	for _, x := range r.(map[string]any)["recordings"].([]any) {
		m := x.(map[string]any)
		status[m["recordingId"].(string)] = m["status"].(string) + "/" + m["interactionId"].(string)
		red[m["recordingId"].(string)] = m["redaction"].(string)
	}
	want := map[string]string{"r1": "overdue/i1", "r2": "purged_early/i1", "r3": "purged/i1", "r4": "held/i1", "r5": "purged_under_hold/i1", "r6": "held/i2", "r7": "purged/i1"}
	if fmt.Sprint(status) != fmt.Sprint(want) {
		t.Fatalf("status %v, want %v", status, want)
	}
	wantRed := map[string]string{"r1": "overdue", "r2": "none", "r3": "failed", "r4": "none", "r5": "none", "r6": "none", "r7": "overdue"}
	if fmt.Sprint(red) != fmt.Sprint(wantRed) {
		t.Fatalf("redaction %v, want %v", red, wantRed)
	}
	// r7's request at 26: exactly 4 h later, overdue.
	r = normalizeJSON(oracleReport("retention", h.evs, hours(30), noLate))
	if got := fmt.Sprint(r.(map[string]any)["purges"]); !strings.HasPrefix(got, "[map[operatorId:op-1 purgedAt:2026-03-02T05:00:00Z reason:legal_order recordCount:1 recordingId:rx]") {
		t.Fatalf("purges %s", got)
	}
	r = normalizeJSON(oracleReport("retention", h.evs, hours(29.999), noLate))
	for _, x := range r.(map[string]any)["recordings"].([]any) {
		if m := x.(map[string]any); m["recordingId"] == "r7" && m["redaction"] != "pending" {
			t.Fatalf("r7 before the buffer: %v", m)
		}
	}
	if rd := redactionState(h.evs, "r7", hours(30), 4*time.Hour); rd != "overdue" {
		t.Fatalf("r7 at exactly request + buffer: %s", rd)
	}
	// P1Y from 29 February: AddDate.
	leap := time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC)
	if got := leap.AddDate(1, 0, 0); got.Month() != time.March || got.Day() != 1 {
		t.Fatalf("AddDate: %v", got)
	}
}

func TestOracleSelfCheckExposureAndAudit(t *testing.T) {
	h := &hist{t: t}
	h.add("interaction.started", hours(0), "i1", map[string]any{"channel": "voice", "direction": "inbound"})
	h.add("interaction.started", hours(-1), "i1", map[string]any{"channel": "chat", "direction": "inbound"}) // earliest: chat
	h.phi("i1", hours(0))
	h.assign("i1", "a1", hours(1), true)
	h.add("recording.stored", hours(1), "i1", map[string]any{"recordingId": "r1", "kind": "transcript", "retention": "P90D"})
	h.add("redaction.requested", hours(1), "i1", map[string]any{"recordingId": "r1"})
	h.add("phi.accessed", hours(2), "i1", map[string]any{"agentId": "a1", "action": "transcript_viewed", "recordingId": "r1"})
	h.add("phi.accessed", hours(5), "i1", map[string]any{"agentId": "a1", "action": "transcript_viewed", "recordingId": "r1"}) // overdue at 5
	h.add("redaction.completed", hours(6), "i1", map[string]any{"recordingId": "r1", "status": "complete"})
	h.add("phi.accessed", hours(7), "i1", map[string]any{"agentId": "a1", "action": "transcript_viewed", "recordingId": "r1"})
	h.access("i2", "a1", hours(3)) // i2: no start, no classification
	h.access("i3", "a1", hours(3)) // i3: no start, PHI: unknown channel, unauthorized
	h.phi("i3", hours(0))
	r := normalizeJSON(oracleReport("exposure", h.evs, hours(10), oracleOpts{}))
	want := normalizeJSON(map[string]any{"agents": []any{map[string]any{
		"agentId": "a1", "ephiInteractions": 2, "unauthorizedInteractions": 1, "pendingRedactionViews": 2,
		"byInteractionType": map[string]any{"claims_inquiry": 2},
		"byChannel":         map[string]any{"chat": 1, "unknown": 1},
	}}})
	if d := diffJSON("exposure", want, r); d != "" {
		t.Fatal(d)
	}
	a := normalizeJSON(oracleReport("access-audit", h.evs, hours(10), oracleOpts{}))
	rows := a.(map[string]any)["rows"].([]any)
	if len(rows) != 6 {
		t.Fatalf("rows %v", rows)
	}
	r2 := rows[2].(map[string]any) // time 3: i2 before i3
	r3 := rows[3].(map[string]any)
	if r2["interactionId"] != "i2" || r2["channel"] != nil || r2["classification"] != nil || r2["flagged"] != false ||
		r3["interactionId"] != "i3" || r3["classification"] != "protected_health_information" || r3["flagged"] != true {
		t.Fatalf("rows %v %v", r2, r3)
	}
	if r0 := rows[0].(map[string]any); r0["action"] != "assigned" || r0["channel"] != "chat" || r0["authorized"] != true || r0["time"] != "2026-03-02T01:00:00Z" {
		t.Fatalf("row 0 %v", r0)
	}
}

// diffJSON describes the first differences between two normalized JSON values ("" when
// equal). Objects in got may carry more keys than want (REPORTS.md allows extra fields);
// every key of want must be present in got with an equal value.
func diffJSON(path string, want, got any) string {
	var diffs []string
	var walk func(p string, w, g any)
	walk = func(p string, w, g any) {
		if len(diffs) >= 8 {
			return
		}
		switch wv := w.(type) {
		case map[string]any:
			gv, ok := g.(map[string]any)
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: want object %s, got %s", p, short(w), short(g)))
				return
			}
			keys := make([]string, 0, len(wv))
			for k := range wv {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				gk, ok := gv[k]
				if !ok {
					diffs = append(diffs, fmt.Sprintf("%s.%s: missing (want %s)", p, k, short(wv[k])))
					continue
				}
				walk(p+"."+k, wv[k], gk)
			}
			// by… maps are exact: no extra keys.
			if strings.HasSuffix(p, ".byChannel") || strings.HasSuffix(p, ".byInteractionType") {
				for k := range gv {
					if _, ok := wv[k]; !ok {
						diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected %s", p, k, short(gv[k])))
					}
				}
			}
		case []any:
			gv, ok := g.([]any)
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: want list of %d, got %s", p, len(wv), short(g)))
				return
			}
			if len(wv) != len(gv) {
				diffs = append(diffs, fmt.Sprintf("%s: want %d elements, got %d", p, len(wv), len(gv)))
			}
			for i := 0; i < len(wv) && i < len(gv); i++ {
				walk(fmt.Sprintf("%s[%d]", p, i), wv[i], gv[i])
			}
		default:
			if fmt.Sprintf("%T %v", w, w) != fmt.Sprintf("%T %v", g, g) {
				diffs = append(diffs, fmt.Sprintf("%s: want %s, got %s", p, short(w), short(g)))
			}
		}
	}
	walk(path, want, got)
	return strings.Join(diffs, "\n")
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
