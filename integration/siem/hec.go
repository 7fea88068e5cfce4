package siem

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/custody/custody/domain"
)

// HECFields are the metadata of a Splunk HTTP Event Collector event.
type HECFields struct {
	// Host is the HEC "host". Optional; omitted when empty (HEC then uses the
	// collector's default).
	Host string `json:"host,omitempty"`
	// Source is the HEC "source". Optional; default the CloudEvent's source, e.g.
	// "custody/unauthorized-24h".
	Source string `json:"source,omitempty"`
	// SourceType is the HEC "sourcetype". Optional; default "custody:alert" for alerts,
	// "custody:report" for report.executed, "custody:checkpoint" for checkpoint.signed
	// and "custody:event" for compliance events.
	SourceType string `json:"sourcetype,omitempty"`
	// Index is the HEC "index". Optional; omitted when empty (the token's default index).
	Index string `json:"index,omitempty"`
}

type hecEnvelope struct {
	Time       json.Number     `json:"time"`
	Host       string          `json:"host,omitempty"`
	Source     string          `json:"source"`
	SourceType string          `json:"sourcetype"`
	Index      string          `json:"index,omitempty"`
	Event      json.RawMessage `json:"event"`
}

// HECPayload renders an event as one Splunk HEC event (for /services/collector/event):
// "time" is the event time in epoch seconds with milliseconds, "event" the CloudEvent as
// stored in the log.
func HECPayload(e domain.Event, f HECFields) ([]byte, error) {
	ce, err := e.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("hec payload %s: %w", e.ID, err)
	}
	if f.Source == "" {
		f.Source = e.Source
	}
	if f.SourceType == "" {
		switch e.Type {
		case domain.AlertRaisedType:
			f.SourceType = "custody:alert"
		case domain.ReportExecutedType:
			f.SourceType = "custody:report"
		case domain.CheckpointSignedType:
			f.SourceType = "custody:checkpoint"
		default:
			f.SourceType = "custody:event"
		}
	}
	ms := e.Time.UnixMilli()
	sec := strconv.FormatInt(ms/1000, 10) + "." + fmt.Sprintf("%03d", ms%1000)
	return marshal(hecEnvelope{Time: json.Number(sec), Host: f.Host, Source: f.Source, SourceType: f.SourceType, Index: f.Index, Event: ce})
}
