package siem

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/custody/custody/domain"
)

// ErrNotForwarded is returned by a format (and by Sink.Deliver) for an event the format
// has no mapping for, e.g. a consent.captured for the OCSF sink. The router
// acknowledges such an event and counts it as skipped.
var ErrNotForwarded = errors.New("event type not forwarded by this format")

// facts are what the formats say about one event, derived from its type and data.
// Empty strings are facts that do not apply.
type facts struct {
	Rule            string
	AgentID         string
	InteractionIDs  []string
	RecordingID     string
	Consent         string
	Authorization   string
	RecordingStatus string
	ReportExecution string
	Action          string
	RemoteIP        string
	Count           int
	TriggeredAt     time.Time
	// Checkpoint is the data of a checkpoint.signed.
	Checkpoint *domain.CheckpointSigned
}

// Recording statuses of the webhook payload and the CEF record: the retention and
// redaction vocabulary of REPORTS.md for alerts, the life cycle for events.
const (
	statusStored          = "stored"
	statusRedactionPend   = "redaction_pending"
	statusRedactionDone   = "redaction_complete"
	statusRedactionFailed = "redaction_failed"
	statusPurged          = "purged"
)

func factsOf(e domain.Event) facts {
	var f facts
	if !e.Type.AgentSubject() && !e.Type.Internal() {
		f.InteractionIDs = []string{e.Subject}
	}
	switch d := e.Data.(type) {
	case *domain.AlertRaised:
		f.Rule = d.Rule
		f.AgentID = d.AgentID
		f.InteractionIDs = d.InteractionIDs
		f.RecordingID = d.RecordingID
		f.Count = d.Count
		f.TriggeredAt = d.TriggeredAt
		switch d.Rule {
		case domain.RuleUnauthorizedAccessThreshold:
			f.Authorization = "unauthorized"
		case domain.RuleAuthorizationDiscrepancy:
			f.Authorization = "training_not_current"
		case domain.RuleConsentViolation:
			f.Consent = "violation"
		case domain.RuleRecordedAfterDecline:
			f.Consent = "declined"
			f.RecordingStatus = "recorded_after_decline"
		case domain.RuleRetentionOverdue:
			f.RecordingStatus = "overdue"
		case domain.RulePurgedEarly:
			f.RecordingStatus = "purged_early"
		case domain.RulePurgedUnderHold:
			f.RecordingStatus = "purged_under_hold"
		case domain.RuleRedactionOverdue:
			f.RecordingStatus = "redaction_overdue"
		case domain.RuleRedactionFailed:
			f.RecordingStatus = statusRedactionFailed
		}
	case *domain.ConsentCaptured:
		f.Consent = "captured"
	case *domain.ConsentDeclined:
		f.Consent = "declined"
	case *domain.AgentAssigned:
		f.AgentID = d.AgentID
		f.Authorization = "unauthorized"
		if d.Authorized {
			f.Authorization = "authorized"
		}
		f.Action = "assigned"
	case *domain.PHIAccessed:
		f.AgentID = d.AgentID
		f.Action = d.Action
		f.RecordingID = d.RecordingID
		f.RemoteIP = d.RemoteIP
	case *domain.RecordingStored:
		f.RecordingID = d.RecordingID
		f.RecordingStatus = statusStored
	case *domain.RedactionRequested:
		f.RecordingID = d.RecordingID
		f.RecordingStatus = statusRedactionPend
	case *domain.RedactionCompleted:
		f.RecordingID = d.RecordingID
		f.RecordingStatus = statusRedactionDone
		if d.Status == "failed" {
			f.RecordingStatus = statusRedactionFailed
		}
	case *domain.RecordPurged:
		f.RecordingID = d.RecordingID
		f.RecordingStatus = statusPurged
	case *domain.TrainingCompleted, *domain.TrainingExpired:
		f.AgentID = e.Subject
	case *domain.ReportExecuted:
		f.ReportExecution = e.ID
	case *domain.CheckpointSigned:
		f.Checkpoint = d
	}
	return f
}

// Severity of a finding, on OCSF's scale (severity_id).
const (
	sevInformational = 1
	sevLow           = 2
	sevMedium        = 3
	sevHigh          = 4
	sevCritical      = 5
)

var severityNames = map[int]string{sevInformational: "Informational", sevLow: "Low", sevMedium: "Medium", sevHigh: "High", sevCritical: "Critical"}

// ruleInfo is the title and severity of each alert rule.
var ruleInfo = map[string]struct {
	title    string
	severity int
}{
	domain.RuleUnauthorizedAccessThreshold: {"Unauthorized ePHI access threshold reached", sevHigh},
	domain.RuleConsentViolation:            {"Consent violation", sevMedium},
	domain.RuleRecordedAfterDecline:        {"Recorded after consent was declined", sevHigh},
	domain.RuleRetentionOverdue:            {"Recording retention overdue", sevMedium},
	domain.RulePurgedEarly:                 {"Recording purged before its retention due date", sevHigh},
	domain.RulePurgedUnderHold:             {"Recording purged under legal hold", sevCritical},
	domain.RuleRedactionOverdue:            {"Redaction overdue", sevMedium},
	domain.RuleRedactionFailed:             {"Redaction failed", sevHigh},
	domain.RuleTrainingExpiredOpen:         {"HIPAA training expired with open interactions", sevMedium},
	domain.RuleInsecureEmailTransport:      {"E-mail interaction without TLS", sevHigh},
	domain.RuleAuthorizationDiscrepancy:    {"Authorized assignment without current HIPAA training", sevMedium},
}

// eventTitles name the event types in CEF and OCSF messages.
var eventTitles = map[domain.Type]string{
	domain.InteractionStartedType:     "Interaction started",
	domain.InteractionClassifiedType:  "Interaction classified",
	domain.ConsentCapturedType:        "Consent captured",
	domain.ConsentDeclinedType:        "Consent declined",
	domain.AgentAssignedType:          "Agent assigned",
	domain.PHIAccessedType:            "ePHI accessed",
	domain.InteractionTransferredType: "Interaction transferred",
	domain.InteractionEndedType:       "Interaction ended",
	domain.RecordingStoredType:        "Recording stored",
	domain.RedactionRequestedType:     "Redaction requested",
	domain.RedactionCompletedType:     "Redaction completed",
	domain.RecordPurgedType:           "Record purged",
	domain.TrainingCompletedType:      "Training completed",
	domain.TrainingExpiredType:        "Training expired",
	domain.ReportExecutedType:         "Compliance report executed",
	domain.CheckpointSignedType:       "Log checkpoint signed",
}

// titleAndSeverity returns a human title and the OCSF severity of an event: the rule's
// for an alert (Medium for a rule this version does not know), Informational otherwise.
func titleAndSeverity(e domain.Event, f facts) (string, int) {
	if e.Type == domain.AlertRaisedType {
		if ri, ok := ruleInfo[f.Rule]; ok {
			return ri.title, ri.severity
		}
		return f.Rule, sevMedium
	}
	if t, ok := eventTitles[e.Type]; ok {
		return t, sevInformational
	}
	return string(e.Type), sevInformational
}

// rawData returns the canonical JSON of the event's data object.
func rawData(e domain.Event) (json.RawMessage, error) {
	b, err := e.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, err
	}
	return env.Data, nil
}

// marshal encodes v as compact JSON without HTML escaping, so payloads show '<', '>'
// and '&' as they are.
func marshal(v any) ([]byte, error) {
	var buf jsonBuffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.b
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	return b, nil
}

type jsonBuffer struct{ b []byte }

func (w *jsonBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func millis(t time.Time) int64 { return t.UnixMilli() }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
