package domain

import "time"

// Alert rules (REPORTS.md, "alerts").
const (
	RuleUnauthorizedAccessThreshold = "unauthorized_access_threshold"
	RuleConsentViolation            = "consent_violation"
	RuleRecordedAfterDecline        = "recorded_after_decline"
	RuleRetentionOverdue            = "retention_overdue"
	RulePurgedEarly                 = "purged_early"
	RulePurgedUnderHold             = "purged_under_hold"
	RuleRedactionOverdue            = "redaction_overdue"
	RuleRedactionFailed             = "redaction_failed"
	RuleTrainingExpiredOpen         = "training_expired_open_interactions"
	RuleInsecureEmailTransport      = "insecure_email_transport"
	RuleAuthorizationDiscrepancy    = "authorization_discrepancy"
)

// AlertRaised is the data of alert.raised: a finding that needs a person. The event id is
// derived deterministically from what caused the alert, so a redelivery or a rebuild
// never raises it twice.
type AlertRaised struct {
	Rule           string    `json:"rule"`
	AgentID        string    `json:"agentId,omitempty"`
	InteractionIDs []string  `json:"interactionIds"`
	RecordingID    string    `json:"recordingId,omitempty"`
	TriggeredAt    time.Time `json:"triggeredAt"`
	// Count is the value that crossed the rule, where the rule counts (e.g. 4).
	Count int `json:"count,omitzero"`
}

// ReportExecuted is the data of report.executed: who ran which report, with which
// parameters, as of which log position, and the SHA-256 of the output.
type ReportExecuted struct {
	Report       string            `json:"report"`
	Actor        string            `json:"actor"`
	Role         string            `json:"role,omitempty"`
	Via          string            `json:"via"`
	Parameters   map[string]string `json:"parameters"`
	AsOf         time.Time         `json:"asOf"`
	LogPosition  uint64            `json:"logPosition"`
	OutputSHA256 string            `json:"outputSha256"`
}

func (*AlertRaised) EventType() Type    { return AlertRaisedType }
func (*ReportExecuted) EventType() Type { return ReportExecutedType }
