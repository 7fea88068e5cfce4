package genesys_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/genesys"
)

// detailEvent is a notification of topic v2.detail.events.conversation.{id}.<suffix>, as
// the WebSocket channel delivers it, with an eventBody built from the SDK's detail event
// model field names.
func detailEvent(conv, suffix string, at time.Time, body map[string]any) map[string]any {
	b := map[string]any{"eventTime": at.UnixMilli(), "conversationId": conv, "participantId": "p-1"}
	for k, v := range body {
		b[k] = v
	}
	return map[string]any{
		"topicName": "v2.detail.events.conversation." + conv + "." + suffix,
		"version":   "2",
		"eventBody": b,
		"metadata":  map[string]any{"CorrelationId": "corr-1"},
	}
}

// eventBridge wraps a notification as Amazon EventBridge delivers it.
func eventBridge(n map[string]any) map[string]any {
	topic := n["topicName"].(string)
	parts := strings.Split(topic, ".")
	if len(parts) > 5 {
		parts[4] = "{id}"
	}
	return map[string]any{
		"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": strings.Join(parts, "."),
		"source": "aws.partner/genesys.com/cloud/org-1/custody", "account": "111122223333",
		"time": "2026-05-01T11:50:50Z", "region": "us-east-1", "resources": []any{}, "detail": n,
	}
}

func TestNotification(t *testing.T) {
	m := newMapper(t, false)
	conv := convID(1)
	start := t0.Add(11*time.Hour + 50*time.Minute)

	// The same conversation as the detail job fixture, seen in real time.
	backfill, err := m.Conversation(mustJSON(t, voiceConversation(1, start)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		n     map[string]any
		types []domain.Type
	}{
		{"customer.start", detailEvent(conv, "customer.start", start, map[string]any{
			"sessionId": "s-1", "mediaType": "VOICE", "direction": "INBOUND", "ani": "tel:+15558675309",
			"dnis": "tel:+18005550000", "provider": "Edge", "divisionId": divisionID}),
			[]domain.Type{domain.InteractionStartedType}},
		{"attributes", detailEvent(conv, "attributes", start.Add(75*time.Second), map[string]any{
			"attributes": map[string]string{"hipaa_phi_class": "protected_health_information", "hipaa_interaction_type": "claims_inquiry",
				"hipaa_consent_captured": "true", "hipaa_consent_ts": ts(start.Add(70 * time.Second)), "member_ssn": "123-45-6789"}}),
			[]domain.Type{domain.InteractionClassifiedType, domain.ConsentCapturedType}},
		{"acd.start (no fact)", detailEvent(conv, "acd.start", start.Add(80*time.Second), map[string]any{
			"queueId": queueClaims, "mediaType": "VOICE", "direction": "INBOUND", "routingPriority": 5}), nil},
		{"acd.end answered", detailEvent(conv, "acd.end", start.Add(104*time.Second), map[string]any{
			"queueId": queueClaims, "acdOutcome": "ANSWERED", "answeredUserId": agentA, "connectedDurationMs": 24000,
			"disconnectType": "TRANSFER", "mediaType": "VOICE"}),
			[]domain.Type{domain.AgentAssignedType}},
		{"user.start", detailEvent(conv, "user.start", start.Add(104*time.Second), map[string]any{
			"userId": agentA, "queueId": queueClaims, "mediaType": "VOICE", "direction": "INBOUND"}),
			[]domain.Type{domain.AgentAssignedType}},
		{"customer.end", detailEvent(conv, "customer.end", start.Add(7*time.Minute), map[string]any{
			"disconnectType": "ENDPOINT", "interactingDurationMs": 420000, "mediaType": "VOICE", "direction": "INBOUND"}),
			[]domain.Type{domain.InteractionEndedType}},
		{"flow.end (no fact)", detailEvent(conv, "flow.end", start, map[string]any{"flowId": "f-1"}), nil},
		{"heartbeat", map[string]any{"topicName": "channel.metadata", "eventBody": map[string]any{"message": "WebSocket Heartbeat"}}, nil},
	}
	for _, tc := range cases {
		for _, wrap := range []struct {
			name string
			f    func(map[string]any) map[string]any
		}{{"websocket", func(n map[string]any) map[string]any { return n }}, {"eventbridge", eventBridge}} {
			t.Run(tc.name+"/"+wrap.name, func(t *testing.T) {
				evs, err := m.Notification(mustJSON(t, wrap.f(tc.n)))
				if err != nil {
					t.Fatal(err)
				}
				checkContract(t, evs)
				if len(evs) != len(tc.types) {
					t.Fatalf("got %d events, want %v", len(evs), tc.types)
				}
				for i, e := range evs {
					if e.Type != tc.types[i] || e.Subject != conv {
						t.Fatalf("event %d: %s %s", i, e.Type, e.Subject)
					}
					// The real-time event and the reconciled one are the same fact:
					// same id, so the log keeps one.
					if !contains(ids(backfill), e.ID) {
						t.Errorf("%s from %s has an id the detail job does not give", e.Type, tc.name)
					}
				}
			})
		}
	}

	t.Run("audit topic", func(t *testing.T) {
		n := map[string]any{
			"topicName": "v2.audits.entitytype.Recording.entityid.rec-1",
			"eventBody": map[string]any{
				"id": "a-read", "userId": agentA, "userHomeOrgId": "org-1", "username": map[string]any{"id": agentA, "name": "Agent Bravo"},
				"userDisplay": "Agent Bravo", "clientId": map[string]any{"id": clientID}, "remoteIp": []string{"203.0.113.7"},
				"serviceName": "Quality", "level": "USER", "eventTime": ts(t0.Add(time.Hour)), "action": "Read",
				"entityType": "Recording", "entity": map[string]any{"id": "rec-1", "name": "Member Alpha call"},
				"propertyChanges": []any{}, "context": map[string]string{"conversationId": conv},
			},
		}
		evs, err := m.Notification(mustJSON(t, n))
		if err != nil {
			t.Fatal(err)
		}
		checkContract(t, evs)
		// The same audit record from the audit query gives the same id.
		if len(evs) != 1 || evs[0].ID != genesys.EventID(domain.PHIAccessedType, conv, "a-read") {
			t.Fatalf("got %v", evs)
		}
	})
}

func TestNotificationRejected(t *testing.T) {
	m := newMapper(t, false)
	conv := convID(1)
	cases := []struct {
		name    string
		n       map[string]any
		field   string
		rule    string
		unknown bool
	}{
		{"unknown topic", map[string]any{"topicName": "v2.users.abc.presence", "eventBody": map[string]any{}},
			"topicName", "is not a topic this adapter maps", true},
		{"unknown detail suffix", detailEvent(conv, "customer.middle", t0, nil), "topicName", "is not a topic this adapter maps", true},
		{"missing topicName", map[string]any{"eventBody": map[string]any{}}, "topicName", "required", false},
		{"missing eventTime", func() map[string]any {
			n := detailEvent(conv, "user.start", t0, map[string]any{"userId": agentA})
			delete(n["eventBody"].(map[string]any), "eventTime")
			return n
		}(), "eventBody.eventTime", "required", false},
		{"eventTime as a string", func() map[string]any {
			n := detailEvent(conv, "user.start", t0, map[string]any{"userId": agentA})
			n["eventBody"].(map[string]any)["eventTime"] = "2026-05-01T00:00:00Z"
			return n
		}(), "eventBody.eventTime", "must be a JSON integer", false},
		{"unexpected field in the body", detailEvent(conv, "user.start", t0, map[string]any{"userId": agentA, "memberDob": "01/02/1960"}),
			"eventBody.memberDob", "is not a field of the Genesys detail event user.start model", false},
		{"field of another topic's model", detailEvent(conv, "customer.start", t0, map[string]any{"mediaType": "VOICE", "direction": "INBOUND", "answeredUserId": agentA}),
			"eventBody.answeredUserId", "is not a field", false},
		{"unexpected envelope field", func() map[string]any {
			n := detailEvent(conv, "user.start", t0, map[string]any{"userId": agentA})
			n["payload"] = "x"
			return n
		}(), "payload", "is not a field of the Genesys notification model", false},
		{"conversation id differs from the topic", detailEvent(conv, "user.start", t0, map[string]any{"userId": agentA, "conversationId": convID(2)}),
			"eventBody.conversationId", "must be the conversation id of the topic name", false},
		{"user.start without userId", detailEvent(conv, "user.start", t0, map[string]any{"queueId": queueClaims}),
			"eventBody.userId", "required", false},
		{"customer.start direction", detailEvent(conv, "customer.start", t0, map[string]any{"mediaType": "VOICE", "direction": "SIDEWAYS"}),
			"eventBody.direction", "must be INBOUND or OUTBOUND", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Notification(mustJSON(t, tc.n))
			if !errors.Is(err, genesys.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if tc.unknown != errors.Is(err, genesys.ErrUnknownTopic) {
				t.Fatalf("ErrUnknownTopic = %v, want %v: %v", !tc.unknown, tc.unknown, err)
			}
			if !strings.Contains(err.Error(), tc.field+": ") || !strings.Contains(err.Error(), tc.rule) {
				t.Fatalf("err = %v, want %s: …%s", err, tc.field, tc.rule)
			}
			for _, p := range planted {
				if strings.Contains(err.Error(), p) {
					t.Fatalf("error repeats planted value %q: %v", p, err)
				}
			}
		})
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
