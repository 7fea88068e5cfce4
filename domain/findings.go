package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"
)

// Finding is a condition the rules show as of an instant, that needs a person: the
// content of an alert.raised. Its Key identifies the condition, so the alert id derived
// from it is the same however often, and in whatever order, the condition is found.
type Finding struct {
	Rule           string
	Key            string
	AgentID        string
	InteractionIDs []string
	RecordingID    string
	// TriggeredAt is the event time of the fact that crossed the rule.
	TriggeredAt time.Time
	// Count is the value that crossed the rule, where the rule counts.
	Count int
}

// AlertID is the deterministic alert id: a version 8 UUID from the SHA-256 of the rule
// and key.
func (f Finding) AlertID() string { return DeterministicID("alert", f.Rule, f.Key) }

// DeterministicID derives a version 8 RFC 9562 UUID from the SHA-256 of its parts.
func DeterministicID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // RFC variant
	s := hex.EncodeToString(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// Alert turns a finding into the data of an alert.raised.
func (f Finding) Alert() *AlertRaised {
	ids := f.InteractionIDs
	if ids == nil {
		ids = []string{}
	}
	return &AlertRaised{Rule: f.Rule, AgentID: f.AgentID, InteractionIDs: ids, RecordingID: f.RecordingID, TriggeredAt: f.TriggeredAt, Count: f.Count}
}

// ThresholdFindings are the agent's unauthorized-access episodes as of asOf, one
// finding per episode, keyed by agent and episode start.
func (l *Ledger) ThresholdFindings(agent string, asOf time.Time) []Finding {
	var out []Finding
	for _, ep := range l.Episodes(agent, asOf) {
		out = append(out, Finding{Rule: RuleUnauthorizedAccessThreshold, Key: agent + "|" + FormatTime(ep.Start),
			AgentID: agent, InteractionIDs: ep.Interactions, TriggeredAt: ep.Start, Count: len(ep.Interactions)})
	}
	return out
}

// AgentFindings are the training findings of an agent: authorization discrepancies and
// expiries while interactions were open.
func (l *Ledger) AgentFindings(agent string, asOf time.Time) []Finding {
	var out []Finding
	for _, e := range l.Discrepancies(agent, asOf) {
		out = append(out, Finding{Rule: RuleAuthorizationDiscrepancy, Key: e.ID, AgentID: agent,
			InteractionIDs: []string{e.Subject}, TriggeredAt: e.Time})
	}
	for _, x := range l.ExpiredWithOpenInteractions(agent, asOf) {
		out = append(out, Finding{Rule: RuleTrainingExpiredOpen, Key: x.Expired.ID, AgentID: agent,
			InteractionIDs: x.Interactions, TriggeredAt: x.Expired.Time})
	}
	return out
}

// ConsentFindings are an interaction's consent findings: one consent_violation for
// missing consent or access before it, one recorded_after_decline per recording.
func (l *Ledger) ConsentFindings(id string, asOf time.Time) []Finding {
	f, ok := l.ConsentViolation(id, asOf)
	if !ok {
		return nil
	}
	var out []Finding
	var at time.Time
	for _, r := range []string{ReasonMissing, ReasonAccessedBeforeConsent} {
		if t, ok := f.At[r]; ok && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if !at.IsZero() {
		out = append(out, Finding{Rule: RuleConsentViolation, Key: id, InteractionIDs: []string{id}, TriggeredAt: at})
	}
	for _, rid := range f.Recordings {
		st, _ := l.Recording(rid, asOf)
		out = append(out, Finding{Rule: RuleRecordedAfterDecline, Key: rid, InteractionIDs: []string{id}, RecordingID: rid, TriggeredAt: st.StoredAt})
	}
	return out
}

// TransportFindings is the insecure e-mail transport finding of an interaction.
func (l *Ledger) TransportFindings(id string, asOf time.Time) []Finding {
	if t, ok := l.InsecureTransport(id, asOf); ok {
		return []Finding{{Rule: RuleInsecureEmailTransport, Key: id, InteractionIDs: []string{id}, TriggeredAt: t}}
	}
	return nil
}

// RecordingFindings are a recording's retention and redaction findings.
func (l *Ledger) RecordingFindings(rid string, asOf time.Time) []Finding {
	s, ok := l.Recording(rid, asOf)
	if !ok {
		return nil
	}
	var out []Finding
	base := Finding{Key: rid, InteractionIDs: []string{s.InteractionID}, RecordingID: rid}
	add := func(rule string, at time.Time) {
		f := base
		f.Rule, f.TriggeredAt = rule, at
		out = append(out, f)
	}
	switch s.Status {
	case StatusOverdue:
		add(RuleRetentionOverdue, s.DueAt)
	case StatusPurgedEarly:
		add(RulePurgedEarly, s.Purge.Time)
	case StatusPurgedUnderHold:
		add(RulePurgedUnderHold, s.Purge.Time)
	}
	switch s.Redaction {
	case RedactionOverdue:
		add(RuleRedactionOverdue, s.RedactionAt)
	case RedactionFailed:
		add(RuleRedactionFailed, s.RedactionAt)
	}
	return out
}

// SortFindings orders findings by triggeredAt, then alert id.
func SortFindings(fs []Finding) {
	sort.Slice(fs, func(i, j int) bool {
		if !fs[i].TriggeredAt.Equal(fs[j].TriggeredAt) {
			return fs[i].TriggeredAt.Before(fs[j].TriggeredAt)
		}
		return fs[i].AlertID() < fs[j].AlertID()
	})
}

// Scope names what a batch of events can have changed: the interactions, agents and
// recordings whose findings must be evaluated again.
type Scope struct {
	Interactions map[string]struct{}
	Agents       map[string]struct{}
	Recordings   map[string]struct{}
}

// NewScope returns an empty scope.
func NewScope() Scope {
	return Scope{Interactions: map[string]struct{}{}, Agents: map[string]struct{}{}, Recordings: map[string]struct{}{}}
}

// Touch widens the scope with what an event (already added to the ledger) can change:
// its interaction, every user who touched that interaction (a reclassification or an
// assignment changes their counts), the recordings of the interaction, the agent of a
// training event and the recording an event names.
func (l *Ledger) Touch(s Scope, e Event) {
	if e.Type.AgentSubject() {
		s.Agents[e.Subject] = struct{}{}
		return
	}
	s.Interactions[e.Subject] = struct{}{}
	if ix := l.interactions[e.Subject]; ix != nil {
		for a := range ix.touchers {
			s.Agents[a] = struct{}{}
		}
		for _, st := range ix.stored {
			s.Recordings[st.Data.(*RecordingStored).RecordingID] = struct{}{}
		}
	}
	switch d := e.Data.(type) {
	case *AgentAssigned:
		s.Agents[d.AgentID] = struct{}{}
	case *PHIAccessed:
		s.Agents[d.AgentID] = struct{}{}
		if d.RecordingID != "" {
			s.Recordings[d.RecordingID] = struct{}{}
		}
	case *RecordingStored:
		s.Recordings[d.RecordingID] = struct{}{}
	case *RedactionRequested:
		s.Recordings[d.RecordingID] = struct{}{}
	case *RedactionCompleted:
		s.Recordings[d.RecordingID] = struct{}{}
	case *RecordPurged:
		s.Recordings[d.RecordingID] = struct{}{}
	}
}
