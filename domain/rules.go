package domain

import (
	"sort"
	"time"
)

// Consent reasons (REPORTS.md, "consent").
const (
	ReasonMissing               = "missing"
	ReasonAccessedBeforeConsent = "accessed_before_consent"
	ReasonRecordedAfterDecline  = "recorded_after_decline"
)

// NeedsConsent reports whether an interaction needs consent: its channel is voice and it
// is ePHI. An interaction with no interaction.started has an unknown channel and needs none.
func (l *Ledger) NeedsConsent(id string, asOf time.Time) bool {
	return l.Channel(id, asOf) == "voice" && l.EPHI(id, asOf)
}

// HasConsent reports whether any consent.captured exists at or before asOf.
func (l *Ledger) HasConsent(id string, asOf time.Time) bool {
	ix := l.interactions[id]
	return ix != nil && earliest(ix.captured, asOf) != nil
}

// ConsentFinding is an interaction's consent violation: its sorted reasons and, per
// reason, the event time of the fact that made it one.
type ConsentFinding struct {
	InteractionID string
	Reasons       []string
	// At is, per reason, when the violation became visible in event time.
	At map[string]time.Time
	// Recordings are the audio/screen recordings stored after a decline, sorted.
	Recordings []string
}

// ConsentViolation evaluates the consent rules for one interaction; ok is false when it
// needs no consent or has no violation.
func (l *Ledger) ConsentViolation(id string, asOf time.Time) (ConsentFinding, bool) {
	f := ConsentFinding{InteractionID: id, At: map[string]time.Time{}}
	ix := l.interactions[id]
	if ix == nil || !l.NeedsConsent(id, asOf) {
		return f, false
	}
	first := earliest(ix.captured, asOf)
	if first == nil {
		if end := earliest(ix.ended, asOf); end != nil {
			f.At[ReasonMissing] = end.Time
		}
	}
	for _, a := range ix.accessed {
		if a.Time.After(asOf) {
			continue
		}
		if first == nil || a.Time.Before(first.Time) {
			if t, ok := f.At[ReasonAccessedBeforeConsent]; !ok || a.Time.Before(t) {
				f.At[ReasonAccessedBeforeConsent] = a.Time
			}
		}
	}
	decisions := make([]*Event, 0, len(ix.captured)+len(ix.declined))
	decisions = append(append(decisions, ix.captured...), ix.declined...)
	for _, rid := range l.recordingsOf(ix, asOf) {
		st := earliest(l.recordings[rid].stored, asOf)
		k := st.Data.(*RecordingStored).Kind
		if k != "audio" && k != "screen" {
			continue
		}
		if d := latest(decisions, st.Time); d != nil && d.Type == ConsentDeclinedType {
			f.Recordings = append(f.Recordings, rid)
			if t, ok := f.At[ReasonRecordedAfterDecline]; !ok || st.Time.Before(t) {
				f.At[ReasonRecordedAfterDecline] = st.Time
			}
		}
	}
	for r := range f.At {
		f.Reasons = append(f.Reasons, r)
	}
	sort.Strings(f.Reasons)
	sort.Strings(f.Recordings)
	return f, len(f.Reasons) > 0
}

// recordingsOf returns the recordings whose deciding recording.stored belongs to the
// interaction, sorted.
func (l *Ledger) recordingsOf(ix *Interaction, asOf time.Time) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range ix.stored {
		rid := e.Data.(*RecordingStored).RecordingID
		if seen[rid] || e.Time.After(asOf) {
			continue
		}
		seen[rid] = true
		if st := earliest(l.recordings[rid].stored, asOf); st != nil && st.Subject == ix.ID {
			out = append(out, rid)
		}
	}
	sort.Strings(out)
	return out
}

// Retention statuses (EVENTS.md, "Retention").
const (
	StatusHeld            = "held"
	StatusActive          = "active"
	StatusOverdue         = "overdue"
	StatusPurged          = "purged"
	StatusPurgedEarly     = "purged_early"
	StatusPurgedUnderHold = "purged_under_hold"
)

// Redaction states.
const (
	RedactionNone     = "none"
	RedactionPending  = "pending"
	RedactionComplete = "complete"
	RedactionOverdue  = "overdue"
	RedactionFailed   = "failed"
)

// RecordingState is a stored recording's retention and redaction as of an instant.
type RecordingState struct {
	RecordingID   string
	InteractionID string
	Kind          string
	StoredAt      time.Time
	DueAt         time.Time
	LegalHold     bool
	Status        string
	Redaction     string
	// Purge is the first record.purged, when purged.
	Purge *Event
	// RedactionAt is when the redaction state became a violation (overdue or failed).
	RedactionAt time.Time
}

// Recording evaluates one recording as of asOf; ok is false when it was never stored.
// A recording stored more than once keeps its first recording.stored (ties by id),
// legal hold included; only its first record.purged sets its status.
func (l *Ledger) Recording(rid string, asOf time.Time) (RecordingState, bool) {
	r := l.recordings[rid]
	if r == nil {
		return RecordingState{}, false
	}
	st := earliest(r.stored, asOf)
	if st == nil {
		return RecordingState{}, false
	}
	d := st.Data.(*RecordingStored)
	s := RecordingState{RecordingID: rid, InteractionID: st.Subject, Kind: d.Kind, StoredAt: st.Time,
		DueAt: d.Retention.Due(st.Time), LegalHold: d.LegalHold}
	if p := earliest(r.purged, asOf); p != nil {
		s.Purge = p
		pd := p.Data.(*RecordPurged)
		switch {
		case s.LegalHold:
			s.Status = StatusPurgedUnderHold
		case p.Time.Before(s.DueAt) && pd.Reason == "retention_expired":
			s.Status = StatusPurgedEarly
		default:
			s.Status = StatusPurged
		}
	} else {
		switch {
		case s.LegalHold:
			s.Status = StatusHeld
		case asOf.Before(s.DueAt):
			s.Status = StatusActive
		default:
			s.Status = StatusOverdue
		}
	}
	s.Redaction, s.RedactionAt = l.Redaction(rid, asOf)
	return s, true
}

// Redaction is a recording's redaction state as of t, and for overdue or failed the
// instant it became so: the latest redaction.completed at or before t decides; else a
// request makes it pending until the earliest request plus the buffer, overdue from
// exactly then; else none.
func (l *Ledger) Redaction(rid string, t time.Time) (string, time.Time) {
	r := l.recordings[rid]
	if r == nil {
		return RedactionNone, time.Time{}
	}
	if c := latest(r.completed, t); c != nil {
		if c.Data.(*RedactionCompleted).Status == "failed" {
			return RedactionFailed, c.Time
		}
		return RedactionComplete, time.Time{}
	}
	if q := earliest(r.requested, t); q != nil {
		due := q.Time.Add(l.RedactionBuffer)
		if t.Before(due) {
			return RedactionPending, time.Time{}
		}
		return RedactionOverdue, due
	}
	return RedactionNone, time.Time{}
}

// Purges returns every record.purged at or before asOf, sorted by time, then recording
// id, then event id.
func (l *Ledger) Purges(asOf time.Time) []*Event {
	var out []*Event
	for _, r := range l.recordings {
		for _, p := range r.purged {
			if !p.Time.After(asOf) {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		ra, rb := a.Data.(*RecordPurged).RecordingID, b.Data.(*RecordPurged).RecordingID
		if ra != rb {
			return ra < rb
		}
		return a.ID < b.ID
	})
	return out
}

// Exposure is one agent's ePHI exposure as of an instant.
type Exposure struct {
	AgentID                  string
	EPHIInteractions         int
	UnauthorizedInteractions int
	PendingRedactionViews    int
	ByInteractionType        map[string]int
	ByChannel                map[string]int
}

// ChannelUnknown is the byChannel key of interactions with no interaction.started.
const ChannelUnknown = "unknown"

// Exposure evaluates an agent's exposure; ok is false when the agent touched no ePHI
// interaction.
func (l *Ledger) Exposure(agent string, asOf time.Time) (Exposure, bool) {
	a := l.agents[agent]
	x := Exposure{AgentID: agent, ByInteractionType: map[string]int{}, ByChannel: map[string]int{}}
	if a == nil {
		return x, false
	}
	for id := range a.interactions {
		ix := l.interactions[id]
		if _, ok := l.firstTouch(agent, ix, asOf); !ok {
			continue
		}
		c, ok := l.Classification(id, asOf)
		if !ok || !IsEPHI(c.DataClassification) {
			continue
		}
		x.EPHIInteractions++
		if !l.Authorized(agent, id, asOf) {
			x.UnauthorizedInteractions++
		}
		x.ByInteractionType[c.InteractionType]++
		ch := l.Channel(id, asOf)
		if ch == "" {
			ch = ChannelUnknown
		}
		x.ByChannel[ch]++
		for _, e := range ix.accessed {
			d := e.Data.(*PHIAccessed)
			if d.AgentID != agent || e.Time.After(asOf) || d.RecordingID == "" {
				continue
			}
			if st, _ := l.Redaction(d.RecordingID, e.Time); st == RedactionPending || st == RedactionOverdue {
				x.PendingRedactionViews++
			}
		}
	}
	return x, x.EPHIInteractions > 0
}

// TrainingCurrent reports whether the agent's hipaa_annual training is current at t: the
// latest training.completed at or before t has expiresAt after t, and no
// training.expired lies between that completion and t (one at t revokes at t).
func (l *Ledger) TrainingCurrent(agent string, t time.Time) bool {
	a := l.agents[agent]
	if a == nil {
		return false
	}
	c := latest(a.completed, t)
	if c == nil || !c.Data.(*TrainingCompleted).ExpiresAt.After(t) {
		return false
	}
	for _, x := range a.expired {
		if !x.Time.Before(c.Time) && !x.Time.After(t) {
			return false
		}
	}
	return true
}

// TrainingFeed reports whether any training.* event exists at or before asOf: the
// authorization-discrepancy rule is active only then.
func (l *Ledger) TrainingFeed(asOf time.Time) bool { return earliest(l.training, asOf) != nil }

// Discrepancies returns the agent's agent.assigned events with authorized:true at whose
// time the agent's training was not current (only while a training feed exists), sorted.
func (l *Ledger) Discrepancies(agent string, asOf time.Time) []*Event {
	a := l.agents[agent]
	if a == nil || !l.TrainingFeed(asOf) {
		return nil
	}
	var out []*Event
	for _, e := range a.assigned {
		if e.Time.After(asOf) || !e.Data.(*AgentAssigned).Authorized {
			continue
		}
		if !l.TrainingCurrent(agent, e.Time) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return before(out[i], out[j]) })
	return out
}

// ExpiredWithOpen is a training.expired while the agent held open interactions.
type ExpiredWithOpen struct {
	Expired      *Event
	Interactions []string
}

// ExpiredWithOpenInteractions returns the agent's hipaa_annual expiries at or before
// asOf with the interactions the agent was assigned at or before the expiry and that had
// no interaction.ended by then.
func (l *Ledger) ExpiredWithOpenInteractions(agent string, asOf time.Time) []ExpiredWithOpen {
	a := l.agents[agent]
	if a == nil {
		return nil
	}
	var out []ExpiredWithOpen
	for _, x := range a.expired {
		if x.Time.After(asOf) {
			continue
		}
		var open []string
		for id := range a.interactions {
			ix := l.interactions[id]
			if earliest(ix.assigned[agent], x.Time) == nil {
				continue
			}
			if earliest(ix.ended, x.Time) != nil {
				continue
			}
			open = append(open, id)
		}
		if len(open) > 0 {
			sort.Strings(open)
			out = append(out, ExpiredWithOpen{Expired: x, Interactions: open})
		}
	}
	sort.Slice(out, func(i, j int) bool { return before(out[i].Expired, out[j].Expired) })
	return out
}

// InsecureTransport reports whether the interaction is an e-mail started with tls none,
// judged on its deciding interaction.started, and when.
func (l *Ledger) InsecureTransport(id string, asOf time.Time) (time.Time, bool) {
	st := l.startedEvent(id, asOf)
	if st == nil {
		return time.Time{}, false
	}
	d := st.Data.(*InteractionStarted)
	if d.Channel == "email" && d.Email != nil && d.Email.TLS == "none" {
		return st.Time, true
	}
	return time.Time{}, false
}

// TouchersOf returns the users who touched an interaction, sorted.
func (l *Ledger) TouchersOf(id string) []string {
	if ix := l.interactions[id]; ix != nil {
		return sortedKeys(ix.touchers)
	}
	return nil
}
