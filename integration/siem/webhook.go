package siem

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/custody/custody/domain"
)

// webhookPayload is the body of the generic HTTPS webhook. Every key is always present;
// a fact that does not apply to the event is null (see doc.go, "Webhook payload").
type webhookPayload struct {
	EventID           string          `json:"eventId"`
	Type              string          `json:"type"`
	Source            string          `json:"source"`
	Subject           string          `json:"subject"`
	Timestamp         string          `json:"timestamp"`
	Rule              *string         `json:"rule"`
	InteractionID     *string         `json:"interactionId"`
	InteractionIDs    []string        `json:"interactionIds"`
	AgentID           *string         `json:"agentId"`
	Consent           *string         `json:"consent"`
	Authorization     *string         `json:"authorization"`
	RecordingID       *string         `json:"recordingId"`
	RecordingStatus   *string         `json:"recordingStatus"`
	ReportExecutionID *string         `json:"reportExecutionId"`
	TreeSize          *int64          `json:"treeSize"`
	RootHash          *string         `json:"rootHash"`
	Origin            *string         `json:"origin"`
	Note              *string         `json:"note"`
	Data              json.RawMessage `json:"data"`
}

// WebhookPayload renders an event as the generic webhook's JSON body. The same event
// always gives the same bytes.
func WebhookPayload(e domain.Event) ([]byte, error) {
	f := factsOf(e)
	data, err := rawData(e)
	if err != nil {
		return nil, fmt.Errorf("webhook payload %s: %w", e.ID, err)
	}
	ids := f.InteractionIDs
	if ids == nil {
		ids = []string{}
	}
	p := webhookPayload{
		EventID:           e.ID,
		Type:              string(e.Type),
		Source:            e.Source,
		Subject:           e.Subject,
		Timestamp:         e.Time.UTC().Format(time.RFC3339Nano),
		Rule:              nullable(f.Rule),
		InteractionIDs:    ids,
		AgentID:           nullable(f.AgentID),
		Consent:           nullable(f.Consent),
		Authorization:     nullable(f.Authorization),
		RecordingID:       nullable(f.RecordingID),
		RecordingStatus:   nullable(f.RecordingStatus),
		ReportExecutionID: nullable(f.ReportExecution),
		Data:              data,
	}
	if len(ids) == 1 {
		p.InteractionID = &ids[0]
	}
	if c := f.Checkpoint; c != nil {
		p.TreeSize, p.RootHash, p.Origin, p.Note = &c.TreeSize, &c.RootHash, &c.Origin, &c.Note
	}
	return marshal(p)
}
