package domain

import (
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// SpecVersion is the only CloudEvents version accepted.
const SpecVersion = "1.0"

// ContentType is the only datacontenttype accepted.
const ContentType = "application/json"

// Event is one validated CloudEvent of the contract. Build it with Decoder.Decode (input
// from outside) or Parse (events read back from the log); both enforce every rule of
// EVENTS.md. Time is always UTC. ID is the canonical lower-case form of the UUID.
type Event struct {
	ID              string
	Source          string
	Type            Type
	Time            time.Time
	Subject         string
	DataContentType string // "" or "application/json"
	DataSchema      string // optional CloudEvents dataschema
	// Extensions holds CloudEvents extension attributes by name, as raw JSON scalars.
	Extensions map[string]jsontext.Value
	// Data is one of the *Data structs of this package, matching Type.
	Data Data
}

// Data is the payload of one event type.
type Data interface {
	// EventType names the type the payload belongs to.
	EventType() Type
}

// Email is the e-mail part of interaction.started.
type Email struct {
	To         string `json:"to"`
	FromMasked string `json:"fromMasked"`
	TLS        string `json:"tls"`
}

// InteractionStarted is the data of interaction.started.
type InteractionStarted struct {
	Channel    string `json:"channel"`
	Direction  string `json:"direction"`
	QueueID    string `json:"queueId,omitempty"`
	DivisionID string `json:"divisionId,omitempty"`
	Email      *Email `json:"email,omitempty"`
}

// InteractionClassified is the data of interaction.classified.
type InteractionClassified struct {
	InteractionType    string `json:"interactionType"`
	DataClassification string `json:"dataClassification"`
	Part2              bool   `json:"part2,omitzero"`
}

// ConsentCaptured is the data of consent.captured.
type ConsentCaptured struct {
	Method string `json:"method"`
}

// ConsentDeclined is the data of consent.declined.
type ConsentDeclined struct {
	Method string `json:"method"`
}

// AgentAssigned is the data of agent.assigned.
type AgentAssigned struct {
	AgentID    string `json:"agentId"`
	Authorized bool   `json:"authorized"`
	QueueID    string `json:"queueId,omitempty"`
}

// PHIAccessed is the data of phi.accessed.
type PHIAccessed struct {
	AgentID         string `json:"agentId"`
	Action          string `json:"action"`
	RecordingID     string `json:"recordingId,omitempty"`
	RecipientMasked string `json:"recipientMasked,omitempty"`
	RemoteIP        string `json:"remoteIp,omitempty"`
}

// InteractionTransferred is the data of interaction.transferred.
type InteractionTransferred struct {
	FromQueueID    string `json:"fromQueueId"`
	ToQueueID      string `json:"toQueueId"`
	FromDivisionID string `json:"fromDivisionId,omitempty"`
	ToDivisionID   string `json:"toDivisionId,omitempty"`
}

// InteractionEnded is the data of interaction.ended.
type InteractionEnded struct {
	Disposition string `json:"disposition,omitempty"`
}

// RecordingStored is the data of recording.stored.
type RecordingStored struct {
	RecordingID string    `json:"recordingId"`
	Kind        string    `json:"kind"`
	Retention   Retention `json:"retention"`
	LegalHold   bool      `json:"legalHold,omitzero"`
}

// RedactionRequested is the data of redaction.requested.
type RedactionRequested struct {
	RecordingID string `json:"recordingId"`
}

// RedactionCompleted is the data of redaction.completed.
type RedactionCompleted struct {
	RecordingID string `json:"recordingId"`
	Status      string `json:"status"`
}

// RecordPurged is the data of record.purged.
type RecordPurged struct {
	RecordingID string `json:"recordingId"`
	OperatorID  string `json:"operatorId"`
	RecordCount int64  `json:"recordCount"`
	Reason      string `json:"reason"`
}

// TrainingCompleted is the data of training.completed.
type TrainingCompleted struct {
	Course    string    `json:"course"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// TrainingExpired is the data of training.expired.
type TrainingExpired struct {
	Course string `json:"course"`
}

func (*InteractionStarted) EventType() Type     { return InteractionStartedType }
func (*InteractionClassified) EventType() Type  { return InteractionClassifiedType }
func (*ConsentCaptured) EventType() Type        { return ConsentCapturedType }
func (*ConsentDeclined) EventType() Type        { return ConsentDeclinedType }
func (*AgentAssigned) EventType() Type          { return AgentAssignedType }
func (*PHIAccessed) EventType() Type            { return PHIAccessedType }
func (*InteractionTransferred) EventType() Type { return InteractionTransferredType }
func (*InteractionEnded) EventType() Type       { return InteractionEndedType }
func (*RecordingStored) EventType() Type        { return RecordingStoredType }
func (*RedactionRequested) EventType() Type     { return RedactionRequestedType }
func (*RedactionCompleted) EventType() Type     { return RedactionCompletedType }
func (*RecordPurged) EventType() Type           { return RecordPurgedType }
func (*TrainingCompleted) EventType() Type      { return TrainingCompletedType }
func (*TrainingExpired) EventType() Type        { return TrainingExpiredType }

// envelope is the wire form: CloudEvents 1.0 structured JSON.
type envelope struct {
	SpecVersion     string                    `json:"specversion"`
	ID              string                    `json:"id"`
	Source          string                    `json:"source"`
	Type            Type                      `json:"type"`
	Time            string                    `json:"time"`
	Subject         string                    `json:"subject"`
	DataContentType string                    `json:"datacontenttype,omitempty"`
	DataSchema      string                    `json:"dataschema,omitempty"`
	Extensions      map[string]jsontext.Value `json:",embed"`
	Data            Data                      `json:"data"`
}

// FormatTime prints an instant the way the log stores it: RFC 3339 in UTC with as many
// fraction digits as needed.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// MarshalJSON encodes the event in canonical form: CloudEvents attributes in a fixed
// order, time in UTC, extensions sorted by name. Decoding the output gives the same Event.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Data == nil {
		return nil, fmt.Errorf("marshal event %s: no data", e.ID)
	}
	if b, ok := appendEvent(make([]byte, 0, 384), e); ok {
		return b, nil
	}
	return json.Marshal(envelope{
		SpecVersion:     SpecVersion,
		ID:              e.ID,
		Source:          e.Source,
		Type:            e.Type,
		Time:            FormatTime(e.Time),
		Subject:         e.Subject,
		DataContentType: e.DataContentType,
		DataSchema:      e.DataSchema,
		Extensions:      e.Extensions,
		Data:            e.Data,
	}, json.Deterministic(true), json.FormatNilMapAsNull(false))
}

// Stored is an event as the log holds it: its stream sequence, the subject it was stored
// under, when the log received it, the exact bytes stored and the decoded event.
type Stored struct {
	Seq      uint64
	Subject  string
	Received time.Time
	Raw      []byte
	Event    Event
}
