package genesys_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/genesys"
)

// TestReadFile reads an export mixing JSON Lines and a pretty-printed page: notifications,
// an EventBridge event, a detail job's result page, a single conversation and an audit
// page. Events seen twice (real time and reconciled) are kept once.
func TestReadFile(t *testing.T) {
	m := newMapper(t, false)
	start := t0.Add(9 * time.Hour)
	conv := convID(1)
	pretty, _ := json.MarshalIndent(map[string]any{
		"conversations": []any{voiceConversation(1, start), emailConversation(2, start)},
		"cursor":        "eyJvZmYiOjJ9", "dataAvailabilityDate": ts(t0.Add(24 * time.Hour)),
	}, "", "  ")
	lines := []string{
		string(mustJSON(t, detailEvent(conv, "customer.start", start, map[string]any{"mediaType": "VOICE", "direction": "INBOUND", "divisionId": divisionID}))),
		"",
		string(mustJSON(t, eventBridge(detailEvent(conv, "user.start", start.Add(104*time.Second), map[string]any{"userId": agentA, "queueId": queueClaims})))) + "\r",
		string(pretty),
		string(mustJSON(t, voiceConversation(3, start))),
		string(mustJSON(t, map[string]any{"id": "tx-1", "pageSize": 1, "entities": []any{auditEntry("a-read", "Recording", "Read", "USER", "SUCCESS", start)}})),
	}
	evs, err := m.ReadFile(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkContract(t, evs)
	// Conversation 1: 5 events (the two notifications are among them); conversation 2
	// (e-mail): 1; conversation 3: 5; the audit read: 1.
	if len(evs) != 12 {
		t.Fatalf("got %d events, want 12", len(evs))
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.ID] {
			t.Fatalf("duplicate id %s", e.ID)
		}
		seen[e.ID] = true
	}

	t.Run("errors name line, field and rule", func(t *testing.T) {
		bad := func(edit func(map[string]any)) string {
			c := voiceConversation(9, start)
			edit(c)
			return string(mustJSON(t, c))
		}
		input := strings.Join([]string{
			lines[0],
			bad(func(c map[string]any) { delete(c, "conversationStart") }),
			"",
			`{"topicName": "v2.routing.queues.x.members", "eventBody": {}}`,
			`[1, 2]`,
			`{"hello": "world"}`,
			bad(func(c map[string]any) { sess(participant(c, 0))["extraField"] = true }),
			`{"conversations": [], "totalHits": 0}`,
			`{"topicName": "v2.detail.events.conversation.x.user.start", "topicName": "again"}`,
		}, "\n")
		evs, err := m.ReadFile(strings.NewReader(input))
		if len(evs) != 1 {
			t.Errorf("got %d events from the valid lines, want 1", len(evs))
		}
		msg := err.Error()
		for _, want := range []string{
			"line 2: conversation " + convID(9) + ": conversationStart: required",
			"line 4: notification: topicName: is not a topic this adapter maps",
			"line 5: document: (document): must be a JSON object",
			"line 6: document: (document): is not a document this adapter reads",
			"line 7: conversation " + convID(9) + ": participants[0].sessions[0].extraField: is not a field of the Genesys AnalyticsSession model",
			"line 9: notification: topicName: invalid JSON: duplicate object member name",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("missing %q in:\n%s", want, msg)
			}
		}
		var le *genesys.LineError
		if !errors.As(err, &le) || !errors.Is(err, genesys.ErrInvalid) {
			t.Fatalf("err does not unwrap to a LineError and ErrInvalid: %v", err)
		}
		if !errors.Is(err, genesys.ErrUnknownTopic) {
			t.Fatalf("the unknown topic does not match ErrUnknownTopic: %v", err)
		}
	})

	t.Run("syntax error stops the scan at its line", func(t *testing.T) {
		_, err := m.ReadFile(strings.NewReader(lines[0] + "\n\n{\"topicName\": \n"))
		if err == nil || !strings.Contains(err.Error(), "line 3: document: (document): invalid JSON: unexpected EOF") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("retention page needs a default kind", func(t *testing.T) {
		page := string(mustJSON(t, map[string]any{"entities": []any{retentionEntry(1, "rec-1", t0, t0.AddDate(0, 0, 90))}, "selfUri": "/api/v2/recordings/retention/query"}))
		if _, err := m.ReadFile(strings.NewReader(page)); err == nil || !strings.Contains(err.Error(), "entities[0].media: unknown") {
			t.Fatalf("err = %v", err)
		}
		mm, err := genesys.NewMapper(genesys.MapperConfig{Source: "genesys-cloud/x", Mapping: genesys.Mapping{DefaultRecordingKind: "audio"}})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := mm.ReadFile(strings.NewReader(page))
		if err != nil {
			t.Fatal(err)
		}
		checkContract(t, evs)
		if d := evs[0].Data.(*domain.RecordingStored); d.Kind != "audio" || d.Retention.String() != "P90D" {
			t.Fatalf("got %+v", d)
		}
	})
}

func TestMappingFile(t *testing.T) {
	path := tempFile(t, "mapping.json", `{
  "attributes": {"classification": "phi_class", "consent": "consent"},
  "authorization": {"queueRoles": {"*": ["phi"]}, "userRoles": {"`+agentA+`": ["phi"]}},
  "emailTls": {"*": "TLSv1.3"}
}`)
	m, err := genesys.LoadMapping(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Attributes.Classification != "phi_class" || !m.Authorization.Authorized(agentA, queueClaims) || m.Authorization.Authorized(agentB, queueClaims) {
		t.Fatalf("got %+v", m)
	}
	if d := genesys.DefaultMapping(); d.Attributes.Consent != "hipaa_consent_captured" || d.DefaultRetention != "P6Y" {
		t.Fatalf("defaults: %+v", d)
	}
	for _, tc := range []struct{ name, json, want string }{
		{"unknown key", `{"attributes": {"clasification": "x"}}`, `unknown field "clasification"`},
		{"bad classification", `{"queueClassification": {"q1": {"interactionType": "other", "dataClassification": "secret"}}}`, "queueClassification.q1.dataClassification: must be one of"},
		{"bad tls", `{"emailTls": {"*": "SSLv3"}}`, "emailTls.*: must be one of"},
		{"bad retention", `{"defaultRetention": "6 years"}`, "defaultRetention: must be an ISO 8601 duration"},
		{"trailing data", `{} {}`, "trailing data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := genesys.ParseMapping([]byte(tc.json))
			if !errors.Is(err, genesys.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := genesys.LoadMapping(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

// retentionEntry is a RecordingRetention of GET /api/v2/recordings/retention/query.
func retentionEntry(conv int, rec string, created, deleted time.Time) map[string]any {
	return map[string]any{
		"conversationId": convID(conv), "recordingId": rec, "creationTime": ts(created), "deleteDate": ts(deleted),
		"archiveDate": ts(created.AddDate(0, 0, 30)), "archiveMedium": "CLOUDARCHIVE",
	}
}
