package domain

// Type is a CloudEvents type of the contract.
type Type string

// The fourteen types a platform, an LMS or a user may write (EVENTS.md, "Types").
const (
	InteractionStartedType     Type = "interaction.started"
	InteractionClassifiedType  Type = "interaction.classified"
	ConsentCapturedType        Type = "consent.captured"
	ConsentDeclinedType        Type = "consent.declined"
	AgentAssignedType          Type = "agent.assigned"
	PHIAccessedType            Type = "phi.accessed"
	InteractionTransferredType Type = "interaction.transferred"
	InteractionEndedType       Type = "interaction.ended"
	RecordingStoredType        Type = "recording.stored"
	RedactionRequestedType     Type = "redaction.requested"
	RedactionCompletedType     Type = "redaction.completed"
	RecordPurgedType           Type = "record.purged"
	TrainingCompletedType      Type = "training.completed"
	TrainingExpiredType        Type = "training.expired"
)

// The types custody emits itself, on subjects of their own; never accepted from outside.
const (
	AlertRaisedType    Type = "alert.raised"
	ReportExecutedType Type = "report.executed"
	// CheckpointSignedType carries a signed checkpoint of the log's Merkle tree.
	CheckpointSignedType Type = "checkpoint.signed"
)

// Types lists the fourteen accepted types in contract order.
var Types = []Type{
	InteractionStartedType, InteractionClassifiedType, ConsentCapturedType, ConsentDeclinedType,
	AgentAssignedType, PHIAccessedType, InteractionTransferredType, InteractionEndedType,
	RecordingStoredType, RedactionRequestedType, RedactionCompletedType, RecordPurgedType,
	TrainingCompletedType, TrainingExpiredType,
}

// Accepted reports whether t is one of the fourteen types accepted from outside.
func (t Type) Accepted() bool {
	for _, a := range Types {
		if a == t {
			return true
		}
	}
	return false
}

// Internal reports whether t is a type custody emits itself.
func (t Type) Internal() bool {
	return t == AlertRaisedType || t == ReportExecutedType || t == CheckpointSignedType
}

// AgentSubject reports whether the event's subject is an agent id (training.*) rather
// than an interaction id.
func (t Type) AgentSubject() bool { return t == TrainingCompletedType || t == TrainingExpiredType }

// Enumerations of the contract. The order of each list is the order used in messages.
var (
	Channels        = []string{"voice", "email", "chat", "message"}
	Directions      = []string{"inbound", "outbound"}
	EmailTLS        = []string{"TLSv1.2", "TLSv1.3", "none"}
	InteractionKind = []string{"claims_inquiry", "prescription_refill", "provider_verification", "billing_dispute", "clinical_correspondence", "other"}
	// Classifications, from least to most restrictive.
	Classifications = []string{"public", "internal", "protected_health_information", "restricted"}
	ConsentMethods  = []string{"ivr_verbal", "ivr_menu", "written", "email"}
	AccessActions   = []string{"handled", "body_viewed", "transcript_viewed", "recording_accessed", "attachment_viewed", "attachment_downloaded", "forwarded"}
	RecordingKinds  = []string{"audio", "screen", "email", "transcript", "attachment"}
	RedactionStatus = []string{"complete", "failed"}
	PurgeReasons    = []string{"retention_expired", "patient_request", "legal_order", "error_correction"}
)

// Classification levels for ties ("the more restrictive class wins").
const (
	ClassPublic     = "public"
	ClassInternal   = "internal"
	ClassPHI        = "protected_health_information"
	ClassRestricted = "restricted"
)

// ClassificationRank orders classifications by restrictiveness: public 0 … restricted 3,
// -1 for anything else.
func ClassificationRank(c string) int {
	for i, v := range Classifications {
		if v == c {
			return i
		}
	}
	return -1
}

// IsEPHI reports whether a classification makes an interaction ePHI.
func IsEPHI(c string) bool { return c == ClassPHI || c == ClassRestricted }
