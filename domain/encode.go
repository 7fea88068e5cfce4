package domain

import (
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// Hand-written encoders for the canonical form: encoding is on the ingest hot path, and
// these avoid reflection. They write exactly what the json tags of the Data structs say
// (TestCanonicalForm pins the bytes).

type jsonWriter struct {
	b     []byte
	first bool
}

func (w *jsonWriter) open() { w.b = append(w.b, '{'); w.first = true }

func (w *jsonWriter) close() { w.b = append(w.b, '}'); w.first = false }

func (w *jsonWriter) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonWriter) str(k, v string) {
	w.key(k)
	w.b, _ = jsontext.AppendQuote(w.b, v)
}

func (w *jsonWriter) optStr(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jsonWriter) boolean(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jsonWriter) optBool(k string, v bool) {
	if v {
		w.boolean(k, v)
	}
}

func (w *jsonWriter) time(k string, t time.Time) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

// appendData writes the payload of one of the fourteen input types or of a
// checkpoint.signed; ok is false for alert.raised and report.executed, which take the
// reflective path.
func appendData(w *jsonWriter, d Data) bool {
	w.open()
	switch v := d.(type) {
	case *InteractionStarted:
		w.str("channel", v.Channel)
		w.str("direction", v.Direction)
		w.optStr("queueId", v.QueueID)
		w.optStr("divisionId", v.DivisionID)
		if v.Email != nil {
			w.key("email")
			w.open()
			w.str("to", v.Email.To)
			w.str("fromMasked", v.Email.FromMasked)
			w.str("tls", v.Email.TLS)
			w.close()
		}
	case *InteractionClassified:
		w.str("interactionType", v.InteractionType)
		w.str("dataClassification", v.DataClassification)
		w.optBool("part2", v.Part2)
	case *ConsentCaptured:
		w.str("method", v.Method)
	case *ConsentDeclined:
		w.str("method", v.Method)
	case *AgentAssigned:
		w.str("agentId", v.AgentID)
		w.boolean("authorized", v.Authorized)
		w.optStr("queueId", v.QueueID)
	case *PHIAccessed:
		w.str("agentId", v.AgentID)
		w.str("action", v.Action)
		w.optStr("recordingId", v.RecordingID)
		w.optStr("recipientMasked", v.RecipientMasked)
		w.optStr("remoteIp", v.RemoteIP)
	case *InteractionTransferred:
		w.str("fromQueueId", v.FromQueueID)
		w.str("toQueueId", v.ToQueueID)
		w.optStr("fromDivisionId", v.FromDivisionID)
		w.optStr("toDivisionId", v.ToDivisionID)
	case *InteractionEnded:
		w.optStr("disposition", v.Disposition)
	case *RecordingStored:
		w.str("recordingId", v.RecordingID)
		w.str("kind", v.Kind)
		w.str("retention", v.Retention.String())
		w.optBool("legalHold", v.LegalHold)
	case *RedactionRequested:
		w.str("recordingId", v.RecordingID)
	case *RedactionCompleted:
		w.str("recordingId", v.RecordingID)
		w.str("status", v.Status)
	case *RecordPurged:
		w.str("recordingId", v.RecordingID)
		w.str("operatorId", v.OperatorID)
		w.key("recordCount")
		w.b = strconv.AppendInt(w.b, v.RecordCount, 10)
		w.str("reason", v.Reason)
	case *TrainingCompleted:
		w.str("course", v.Course)
		w.time("expiresAt", v.ExpiresAt)
	case *TrainingExpired:
		w.str("course", v.Course)
	case *CheckpointSigned:
		w.str("origin", v.Origin)
		w.key("treeSize")
		w.b = strconv.AppendInt(w.b, v.TreeSize, 10)
		w.str("rootHash", v.RootHash)
		w.str("note", v.Note)
	default:
		return false
	}
	w.close()
	return true
}

// appendEvent writes the canonical envelope; ok is false when the data needs the
// reflective encoder.
func appendEvent(b []byte, e Event) ([]byte, bool) {
	w := &jsonWriter{b: b}
	w.open()
	w.str("specversion", SpecVersion)
	w.str("id", e.ID)
	w.str("source", e.Source)
	w.str("type", string(e.Type))
	w.key("time")
	w.b = append(w.b, '"')
	w.b = e.Time.UTC().AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
	w.str("subject", e.Subject)
	w.optStr("datacontenttype", e.DataContentType)
	w.optStr("dataschema", e.DataSchema)
	w.key("data")
	if !appendData(w, e.Data) {
		return nil, false
	}
	if len(e.Extensions) > 0 {
		names := make([]string, 0, len(e.Extensions))
		for k := range e.Extensions {
			names = append(names, k)
		}
		sortStrings(names)
		for _, k := range names {
			w.key(k)
			w.b = append(w.b, e.Extensions[k]...)
		}
	}
	w.close()
	return w.b, true
}
