package domain

import (
	"sort"
	"time"
)

// Window is the sliding window of the unauthorized-access counter.
const Window = 24 * time.Hour

// Threshold is the count at which an agent's unauthorized ePHI interactions raise an
// alert ("more than three").
const Threshold = 4

// DefaultRedactionBuffer is how long a requested redaction may stay pending.
const DefaultRedactionBuffer = 4 * time.Hour

// TrainingCourse is the only course that counts for authorization.
const TrainingCourse = "hipaa_annual"

// Ledger indexes a set of events so that the compliance rules of EVENTS.md can be
// evaluated as of any instant. It is a pure function of the set: adding the same events
// in any order, or an event twice (by id), gives the same answers. Every query takes the
// as-of instant and ignores events whose time lies after it.
//
// The zero value is not usable; call NewLedger.
type Ledger struct {
	ids          map[string]struct{}
	interactions map[string]*Interaction
	agents       map[string]*agentFacts
	recordings   map[string]*recordingFacts
	training     []*Event // every training.* event: the discrepancy rule is active once one exists
	// RedactionBuffer is how long a redaction may stay pending. Default 4 h.
	RedactionBuffer time.Duration
}

// Interaction holds one interaction's events by kind.
type Interaction struct {
	ID         string
	started    []*Event
	classified []*Event
	captured   []*Event
	declined   []*Event
	assigned   map[string][]*Event // by agent
	accessed   []*Event
	stored     []*Event
	ended      []*Event
	touchers   map[string]struct{}
}

type agentFacts struct {
	interactions map[string]struct{} // touched
	completed    []*Event            // training.completed hipaa_annual
	expired      []*Event            // training.expired hipaa_annual
	assigned     []*Event            // agent.assigned for this agent, any interaction
}

type recordingFacts struct {
	stored    []*Event
	requested []*Event
	completed []*Event
	purged    []*Event
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{
		ids:             map[string]struct{}{},
		interactions:    map[string]*Interaction{},
		agents:          map[string]*agentFacts{},
		recordings:      map[string]*recordingFacts{},
		RedactionBuffer: DefaultRedactionBuffer,
	}
}

// Add indexes an event; an id already added is ignored (a duplicate is the event the
// ledger already has). It reports whether the event was new.
func (l *Ledger) Add(e Event) bool {
	if _, dup := l.ids[e.ID]; dup {
		return false
	}
	l.ids[e.ID] = struct{}{}
	ev := &e
	switch d := e.Data.(type) {
	case *InteractionStarted:
		l.ixn(e.Subject).started = append(l.ixn(e.Subject).started, ev)
	case *InteractionClassified:
		l.ixn(e.Subject).classified = append(l.ixn(e.Subject).classified, ev)
	case *ConsentCaptured:
		l.ixn(e.Subject).captured = append(l.ixn(e.Subject).captured, ev)
	case *ConsentDeclined:
		l.ixn(e.Subject).declined = append(l.ixn(e.Subject).declined, ev)
	case *AgentAssigned:
		ix := l.ixn(e.Subject)
		ix.assigned[d.AgentID] = append(ix.assigned[d.AgentID], ev)
		ix.touchers[d.AgentID] = struct{}{}
		a := l.agent(d.AgentID)
		a.interactions[e.Subject] = struct{}{}
		a.assigned = append(a.assigned, ev)
	case *PHIAccessed:
		ix := l.ixn(e.Subject)
		ix.accessed = append(ix.accessed, ev)
		ix.touchers[d.AgentID] = struct{}{}
		l.agent(d.AgentID).interactions[e.Subject] = struct{}{}
	case *InteractionEnded:
		l.ixn(e.Subject).ended = append(l.ixn(e.Subject).ended, ev)
	case *InteractionTransferred:
		l.ixn(e.Subject)
	case *RecordingStored:
		l.ixn(e.Subject).stored = append(l.ixn(e.Subject).stored, ev)
		r := l.rec(d.RecordingID)
		r.stored = append(r.stored, ev)
	case *RedactionRequested:
		r := l.rec(d.RecordingID)
		r.requested = append(r.requested, ev)
	case *RedactionCompleted:
		r := l.rec(d.RecordingID)
		r.completed = append(r.completed, ev)
	case *RecordPurged:
		r := l.rec(d.RecordingID)
		r.purged = append(r.purged, ev)
	case *TrainingCompleted:
		l.training = append(l.training, ev)
		if d.Course == TrainingCourse {
			a := l.agent(e.Subject)
			a.completed = append(a.completed, ev)
		}
	case *TrainingExpired:
		l.training = append(l.training, ev)
		if d.Course == TrainingCourse {
			a := l.agent(e.Subject)
			a.expired = append(a.expired, ev)
		}
	}
	return true
}

func (l *Ledger) ixn(id string) *Interaction {
	ix := l.interactions[id]
	if ix == nil {
		ix = &Interaction{ID: id, assigned: map[string][]*Event{}, touchers: map[string]struct{}{}}
		l.interactions[id] = ix
	}
	return ix
}

func (l *Ledger) agent(id string) *agentFacts {
	a := l.agents[id]
	if a == nil {
		a = &agentFacts{interactions: map[string]struct{}{}}
		l.agents[id] = a
	}
	return a
}

func (l *Ledger) rec(id string) *recordingFacts {
	r := l.recordings[id]
	if r == nil {
		r = &recordingFacts{}
		l.recordings[id] = r
	}
	return r
}

// before orders events by time, ties by smallest id (the contract's tie rule).
func before(a, b *Event) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return a.ID < b.ID
}

// earliest returns the first event at or before asOf by (time, id), or nil.
func earliest(evs []*Event, asOf time.Time) *Event {
	var best *Event
	for _, e := range evs {
		if e.Time.After(asOf) {
			continue
		}
		if best == nil || before(e, best) {
			best = e
		}
	}
	return best
}

// latest returns the last event at or before asOf by time; on a tie the smallest id.
func latest(evs []*Event, asOf time.Time) *Event {
	var best *Event
	for _, e := range evs {
		if e.Time.After(asOf) {
			continue
		}
		if best == nil || e.Time.After(best.Time) || e.Time.Equal(best.Time) && e.ID < best.ID {
			best = e
		}
	}
	return best
}

// Interactions returns the ids of every interaction the ledger knows, sorted.
func (l *Ledger) Interactions() []string { return sortedKeys(l.interactions) }

// Agents returns the ids of every user who touched an interaction or has training, sorted.
func (l *Ledger) Agents() []string { return sortedKeys(l.agents) }

// Recordings returns every recording id named by any event, sorted.
func (l *Ledger) Recordings() []string { return sortedKeys(l.recordings) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Channel is the channel of the interaction's earliest interaction.started, "" when
// there is none (unknown).
func (l *Ledger) Channel(id string, asOf time.Time) string {
	ix := l.interactions[id]
	if ix == nil {
		return ""
	}
	if e := earliest(ix.started, asOf); e != nil {
		return e.Data.(*InteractionStarted).Channel
	}
	return ""
}

// startedEvent is the deciding interaction.started.
func (l *Ledger) startedEvent(id string, asOf time.Time) *Event {
	if ix := l.interactions[id]; ix != nil {
		return earliest(ix.started, asOf)
	}
	return nil
}

// Classification returns the deciding interaction.classified of an interaction: the
// latest by time, on a tie the more restrictive class, then the smallest id. ok is false
// when the interaction was never classified.
func (l *Ledger) Classification(id string, asOf time.Time) (*InteractionClassified, bool) {
	ix := l.interactions[id]
	if ix == nil {
		return nil, false
	}
	var best *Event
	for _, e := range ix.classified {
		if e.Time.After(asOf) {
			continue
		}
		if best == nil || e.Time.After(best.Time) {
			best = e
			continue
		}
		if !e.Time.Equal(best.Time) {
			continue
		}
		re, rb := ClassificationRank(e.Data.(*InteractionClassified).DataClassification), ClassificationRank(best.Data.(*InteractionClassified).DataClassification)
		if re > rb || re == rb && e.ID < best.ID {
			best = e
		}
	}
	if best == nil {
		return nil, false
	}
	return best.Data.(*InteractionClassified), true
}

// EPHI reports ePHI(I): the deciding classification is protected_health_information or
// restricted. An interaction never classified is not ePHI.
func (l *Ledger) EPHI(id string, asOf time.Time) bool {
	c, ok := l.Classification(id, asOf)
	return ok && IsEPHI(c.DataClassification)
}

// Authorized is the authorized flag of the latest agent.assigned for the agent on the
// interaction (on a tie, false wins); false when there is none.
func (l *Ledger) Authorized(agent, id string, asOf time.Time) bool {
	ix := l.interactions[id]
	if ix == nil {
		return false
	}
	var best *Event
	for _, e := range ix.assigned[agent] {
		if e.Time.After(asOf) {
			continue
		}
		if best == nil || e.Time.After(best.Time) {
			best = e
			continue
		}
		if e.Time.Equal(best.Time) && !e.Data.(*AgentAssigned).Authorized {
			best = e
		}
	}
	return best != nil && best.Data.(*AgentAssigned).Authorized
}

// Touch is one touch of an interaction by a user: an agent.assigned or a phi.accessed.
type Touch struct {
	Event         *Event
	AgentID       string
	InteractionID string
	// Action is "assigned" for an agent.assigned, else the phi.accessed action.
	Action string
}

// Touches returns every touch at or before asOf, in no particular order.
func (l *Ledger) Touches(asOf time.Time) []Touch {
	var out []Touch
	for _, ix := range l.interactions {
		out = append(out, l.touchesOf(ix, asOf)...)
	}
	return out
}

func (l *Ledger) touchesOf(ix *Interaction, asOf time.Time) []Touch {
	var out []Touch
	for agent, evs := range ix.assigned {
		for _, e := range evs {
			if !e.Time.After(asOf) {
				out = append(out, Touch{Event: e, AgentID: agent, InteractionID: ix.ID, Action: "assigned"})
			}
		}
	}
	for _, e := range ix.accessed {
		if !e.Time.After(asOf) {
			d := e.Data.(*PHIAccessed)
			out = append(out, Touch{Event: e, AgentID: d.AgentID, InteractionID: ix.ID, Action: d.Action})
		}
	}
	return out
}

// firstTouch is the agent's earliest touch time of the interaction at or before asOf.
func (l *Ledger) firstTouch(agent string, ix *Interaction, asOf time.Time) (time.Time, bool) {
	var t time.Time
	found := false
	for _, e := range ix.assigned[agent] {
		if !e.Time.After(asOf) && (!found || e.Time.Before(t)) {
			t, found = e.Time, true
		}
	}
	for _, e := range ix.accessed {
		if e.Data.(*PHIAccessed).AgentID == agent && !e.Time.After(asOf) && (!found || e.Time.Before(t)) {
			t, found = e.Time, true
		}
	}
	return t, found
}

// Unauthorized is one unauthorized ePHI interaction of an agent, at the agent's earliest
// touch of it.
type Unauthorized struct {
	InteractionID string
	Time          time.Time
}

// UnauthorizedEPHI returns the agent's unauthorized ePHI interactions as of asOf, sorted
// by time, then id.
func (l *Ledger) UnauthorizedEPHI(agent string, asOf time.Time) []Unauthorized {
	a := l.agents[agent]
	if a == nil {
		return nil
	}
	var out []Unauthorized
	for id := range a.interactions {
		ix := l.interactions[id]
		t, ok := l.firstTouch(agent, ix, asOf)
		if !ok || !l.EPHI(id, asOf) || l.Authorized(agent, id, asOf) {
			continue
		}
		out = append(out, Unauthorized{InteractionID: id, Time: t})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].InteractionID < out[j].InteractionID
	})
	return out
}

// Count is count(A, t) evaluated as of asOf: the agent's unauthorized ePHI interactions
// whose time lies in the half-open window (t − 24h, t], and their ids, sorted.
func (l *Ledger) Count(agent string, t, asOf time.Time) []string {
	return window(l.UnauthorizedEPHI(agent, asOf), t)
}

func window(un []Unauthorized, t time.Time) []string {
	var ids []string
	lo := t.Add(-Window)
	for _, u := range un {
		if u.Time.After(lo) && !u.Time.After(t) {
			ids = append(ids, u.InteractionID)
		}
	}
	sort.Strings(ids)
	return ids
}

// Episode is a stretch of time in which an agent's count is at or above the threshold.
type Episode struct {
	AgentID string
	// Start is the instant the count first reached the threshold.
	Start time.Time
	// Interactions are the window's interactions at Start, sorted.
	Interactions []string
	// Peak is the highest count during the episode.
	Peak int
}

// Episodes evaluates count(A, t) wherever it can change (every entry u.Time and every
// exit u.Time + 24h) as of asOf, and returns the episodes in time order. An interaction
// leaving the window at the same instant another enters is no dip.
func (l *Ledger) Episodes(agent string, asOf time.Time) []Episode {
	un := l.UnauthorizedEPHI(agent, asOf)
	if len(un) < Threshold {
		return nil
	}
	points := make([]time.Time, 0, 2*len(un))
	for _, u := range un {
		points = append(points, u.Time, u.Time.Add(Window))
	}
	sort.Slice(points, func(i, j int) bool { return points[i].Before(points[j]) })
	var out []Episode
	in := false
	for i, t := range points {
		if i > 0 && t.Equal(points[i-1]) {
			continue
		}
		ids := window(un, t)
		switch {
		case len(ids) >= Threshold && !in:
			in = true
			out = append(out, Episode{AgentID: agent, Start: t, Interactions: ids, Peak: len(ids)})
		case len(ids) >= Threshold:
			out[len(out)-1].Peak = max(out[len(out)-1].Peak, len(ids))
		default:
			in = false
		}
	}
	return out
}
