package genesys_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/genesys"
)

func TestConversationMapping(t *testing.T) {
	m := newMapper(t, false)
	start := t0.Add(11*time.Hour + 50*time.Minute)
	evs, err := m.Conversation(mustJSON(t, voiceConversation(1, start)))
	if err != nil {
		t.Fatal(err)
	}
	checkContract(t, evs)
	conv := convID(1)
	want := []struct {
		typ  domain.Type
		at   time.Time
		data domain.Data
	}{
		{domain.InteractionStartedType, start, &domain.InteractionStarted{Channel: "voice", Direction: "inbound", DivisionID: divisionID}},
		// Analytics keeps no attribute time: classification at the end of the IVR,
		// consent at the time of the consent time attribute.
		{domain.InteractionClassifiedType, start.Add(80 * time.Second), &domain.InteractionClassified{InteractionType: "claims_inquiry", DataClassification: "protected_health_information"}},
		{domain.ConsentCapturedType, start.Add(70 * time.Second), &domain.ConsentCaptured{Method: "ivr_verbal"}},
		{domain.AgentAssignedType, start.Add(104 * time.Second), &domain.AgentAssigned{AgentID: agentA, Authorized: true, QueueID: queueClaims}},
		{domain.InteractionEndedType, start.Add(7 * time.Minute), &domain.InteractionEnded{Disposition: "endpoint"}},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %v", len(evs), len(want), evs)
	}
	for i, w := range want {
		e := evs[i]
		if e.Type != w.typ || e.Subject != conv || !e.Time.Equal(w.at) || e.Source != "genesys-cloud/org-3f1c" {
			t.Errorf("event %d: got %s %s %s, want %s %s", i, e.Type, e.Subject, e.Time, w.typ, w.at)
		}
		if got, want := mustJSON(t, e.Data), mustJSON(t, w.data); string(got) != string(want) {
			t.Errorf("event %d %s data: got %s, want %s", i, e.Type, got, want)
		}
	}

	t.Run("deterministic ids", func(t *testing.T) {
		again, err := m.Conversation(mustJSON(t, voiceConversation(1, start)))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ids(again), ",") != strings.Join(ids(evs), ",") {
			t.Fatal("mapping the same record twice gave other ids")
		}
		if id := genesys.EventID(domain.InteractionEndedType, conv); id != evs[4].ID {
			t.Fatalf("EventID = %s, event id %s", id, evs[4].ID)
		}
	})

	cases := []struct {
		name   string
		edit   func(c map[string]any)
		mapper *genesys.Mapper
		check  func(t *testing.T, evs []domain.Event)
	}{
		{"agent outside the role table is not authorized", func(c map[string]any) {
			participant(c, 3)["userId"] = agentB
		}, nil, func(t *testing.T, evs []domain.Event) {
			a := find(t, evs, domain.AgentAssignedType).Data.(*domain.AgentAssigned)
			if a.Authorized || a.AgentID != agentB {
				t.Fatalf("got %+v", a)
			}
		}},
		{"consent declined with a method", func(c map[string]any) {
			attrs := participant(c, 0)["attributes"].(map[string]string)
			attrs["hipaa_consent_captured"] = "NO"
			attrs["hipaa_consent_method"] = "ivr_menu"
			delete(attrs, "hipaa_consent_ts")
		}, nil, func(t *testing.T, evs []domain.Event) {
			e := find(t, evs, domain.ConsentDeclinedType)
			if e.Data.(*domain.ConsentDeclined).Method != "ivr_menu" || !e.Time.Equal(t0.Add(11*time.Hour+50*time.Minute+80*time.Second)) {
				t.Fatalf("got %+v at %s (want the IVR's end)", e.Data, e.Time)
			}
		}},
		{"queue classification when no attribute", func(c map[string]any) {
			attrs := participant(c, 0)["attributes"].(map[string]string)
			delete(attrs, "hipaa_phi_class")
			delete(attrs, "hipaa_interaction_type")
			seg(participant(c, 2), 0)["queueId"] = queuePharma
		}, nil, func(t *testing.T, evs []domain.Event) {
			d := find(t, evs, domain.InteractionClassifiedType).Data.(*domain.InteractionClassified)
			if d.InteractionType != "prescription_refill" || d.DataClassification != "protected_health_information" {
				t.Fatalf("got %+v", d)
			}
		}},
		{"transfer between queues", func(c map[string]any) {
			acd := participant(c, 2)
			sess := acd["sessions"].([]any)[0].(map[string]any)
			sess["segments"] = append(sess["segments"].([]any), map[string]any{
				"segmentStart": ts(t0.Add(12 * time.Hour)), "segmentType": "interact", "queueId": queuePharma})
		}, nil, func(t *testing.T, evs []domain.Event) {
			d := find(t, evs, domain.InteractionTransferredType).Data.(*domain.InteractionTransferred)
			if d.FromQueueID != queueClaims || d.ToQueueID != queuePharma {
				t.Fatalf("got %+v", d)
			}
		}},
		{"ignored media gives no events", func(c map[string]any) {
			sess(participant(c, 0))["mediaType"] = "video"
		}, nil, func(t *testing.T, evs []domain.Event) {
			if len(evs) != 0 {
				t.Fatalf("got %d events", len(evs))
			}
		}},
		{"unknown field accepted when allowed", func(c map[string]any) {
			sess(participant(c, 0))["fieldFromANewerRelease"] = "x"
		}, newMapper(t, true), func(t *testing.T, evs []domain.Event) {
			if len(evs) != 5 {
				t.Fatalf("got %d events", len(evs))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := voiceConversation(1, start)
			tc.edit(c)
			mm := m
			if tc.mapper != nil {
				mm = tc.mapper
			}
			evs, err := mm.Conversation(mustJSON(t, c))
			if err != nil {
				t.Fatal(err)
			}
			checkContract(t, evs)
			tc.check(t, evs)
		})
	}

	t.Run("email", func(t *testing.T) {
		evs, err := m.Conversation(mustJSON(t, emailConversation(2, start)))
		if err != nil {
			t.Fatal(err)
		}
		checkContract(t, evs)
		d := find(t, evs, domain.InteractionStartedType).Data.(*domain.InteractionStarted)
		if d.Channel != "email" || d.Email == nil || *d.Email != (domain.Email{To: "claims@payer.example", FromMasked: "m***@example.org", TLS: "TLSv1.2"}) {
			t.Fatalf("got %+v %+v", d, d.Email)
		}
	})
}

// TestConversationRejected: a record with a missing or unexpected field is rejected,
// naming the field and the rule, never the value.
func TestConversationRejected(t *testing.T) {
	m := newMapper(t, false)
	cases := []struct {
		name  string
		edit  func(c map[string]any)
		field string
		rule  string
	}{
		{"missing conversationId", func(c map[string]any) { delete(c, "conversationId") }, "conversationId", "required"},
		{"missing conversationStart", func(c map[string]any) { delete(c, "conversationStart") }, "conversationStart", "required"},
		{"time without offset", func(c map[string]any) { c["conversationStart"] = "2026-05-01T11:50:49.582" }, "conversationStart", "explicit offset"},
		{"unexpected session field", func(c map[string]any) { sess(participant(c, 0))["fieldFromANewerRelease"] = "x" },
			"participants[0].sessions[0].fieldFromANewerRelease", "is not a field of the Genesys AnalyticsSession model"},
		{"unexpected conversation field", func(c map[string]any) { c["patientName"] = "Member Alpha" },
			"patientName", "is not a field of the Genesys AnalyticsConversation model"},
		{"wrong type", func(c map[string]any) { sess(participant(c, 0))["recording"] = "yes" },
			"participants[0].sessions[0].recording", "must be a JSON boolean"},
		{"media type neither mapped nor ignored", func(c map[string]any) { sess(participant(c, 0))["mediaType"] = "fax" },
			"participants[0].sessions[0].mediaType", "neither maps"},
		{"classification outside the contract", func(c map[string]any) {
			participant(c, 0)["attributes"].(map[string]string)["hipaa_phi_class"] = "SSN 123-45-6789"
		}, "participants[0].attributes.hipaa_phi_class", "must be one of public, internal"},
		{"consent value unknown", func(c map[string]any) {
			participant(c, 0)["attributes"].(map[string]string)["hipaa_consent_captured"] = "maybe"
		}, "participants[0].attributes.hipaa_consent_captured", "consentValues"},
		{"missing segmentStart", func(c map[string]any) { delete(seg(participant(c, 3), 1), "segmentStart") },
			"participants[3].sessions[0].segments[1].segmentStart", "required"},
		{"user id that is no identifier", func(c map[string]any) { participant(c, 3)["userId"] = "Agent Bravo" },
			"participants[3].userId", "must be an id"},
		{"no direction", func(c map[string]any) {
			delete(c, "originatingDirection")
			delete(sess(participant(c, 0)), "direction")
		},
			"originatingDirection", "must be inbound or outbound"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := voiceConversation(1, t0.Add(time.Hour))
			tc.edit(c)
			_, err := m.Conversation(mustJSON(t, c))
			if !errors.Is(err, genesys.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var hit bool
			for _, fe := range genesys.FieldErrors(err) {
				if fe.Field == tc.field && strings.Contains(fe.Rule, tc.rule) {
					hit = true
				}
			}
			if !hit {
				t.Fatalf("no problem %s: %s in %v", tc.field, tc.rule, err)
			}
			for _, p := range planted {
				if strings.Contains(err.Error(), p) {
					t.Fatalf("error repeats planted value %q: %v", p, err)
				}
			}
		})
	}

	t.Run("email without a TLS entry", func(t *testing.T) {
		mm, err := genesys.NewMapper(genesys.MapperConfig{Source: "genesys-cloud/x"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = mm.Conversation(mustJSON(t, emailConversation(2, t0)))
		if err == nil || !strings.Contains(err.Error(), "participants[0].sessions[0].addressTo: has no emailTls entry") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "member.alpha") || strings.Contains(err.Error(), "claims@") {
			t.Fatalf("error repeats an address: %v", err)
		}
	})
}

func TestAuditPageMapping(t *testing.T) {
	m := newMapper(t, false)
	page := map[string]any{"id": "tx-1", "pageSize": 4, "entities": []any{
		auditEntry("a-read", "Recording", "Read", "USER", "SUCCESS", t0.Add(time.Hour)),
		auditEntry("a-del", "Recording", "Delete", "SYSTEM", "SUCCESS", t0.Add(2*time.Hour)),
		auditEntry("a-fail", "Recording", "Read", "USER", "FAILURE", t0.Add(3*time.Hour)),
		auditEntry("a-user", "User", "Update", "USER", "SUCCESS", t0.Add(4*time.Hour)),
	}}
	delete(page["entities"].([]any)[1].(map[string]any), "user")
	delete(page["entities"].([]any)[1].(map[string]any), "client")
	evs, err := m.ReadFile(strings.NewReader(string(mustJSON(t, page))))
	if err != nil {
		t.Fatal(err)
	}
	checkContract(t, evs)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want a read and a purge", len(evs))
	}
	r := evs[0].Data.(*domain.PHIAccessed)
	if *r != (domain.PHIAccessed{AgentID: agentA, Action: "recording_accessed", RecordingID: "rec-1", RemoteIP: "203.0.113.7"}) || evs[0].Subject != convID(1) {
		t.Fatalf("read: %+v", r)
	}
	if p := evs[1].Data.(*domain.RecordPurged); *p != (domain.RecordPurged{RecordingID: "rec-1", OperatorID: "system", RecordCount: 1, Reason: "retention_expired"}) {
		t.Fatalf("purge: %+v", p)
	}
	if evs[0].ID != genesys.EventID(domain.PHIAccessedType, convID(1), "a-read") {
		t.Fatal("the id of a recording read is not derived from the audit id")
	}

	t.Run("no conversation", func(t *testing.T) {
		a := auditEntry("a-x", "Recording", "Read", "USER", "SUCCESS", t0)
		delete(a, "context")
		_, err := m.ReadFile(strings.NewReader(string(mustJSON(t, map[string]any{"id": "tx", "entities": []any{a}}))))
		if err == nil || !strings.Contains(err.Error(), "line 1: audit message a-x: entities[0].context.conversationId: required") {
			t.Fatalf("err = %v", err)
		}
	})
}

// auditEntry is an AuditLogMessage as POST /api/v2/audits/query results carry it.
func auditEntry(id, entityType, action, level, status string, at time.Time) map[string]any {
	return map[string]any{
		"id": id, "userHomeOrgId": "org-1",
		"user":     map[string]any{"id": agentA, "name": "Agent Bravo", "selfUri": "/api/v2/users/" + agentA},
		"client":   map[string]any{"id": clientID, "selfUri": "/api/v2/oauth/clients/" + clientID},
		"remoteIp": []string{"203.0.113.7", "10.0.0.1"}, "serviceName": "Quality", "level": level,
		"eventDate": ts(at),
		"message":   map[string]any{"localizableMessageCode": "x", "message": "Member Alpha", "messageParams": map[string]any{}},
		"action":    action, "entity": map[string]any{"id": "rec-1", "name": "Member Alpha call"}, "entityType": entityType,
		"status": status, "application": "", "propertyChanges": []any{},
		"context": map[string]string{"conversationId": convID(1)},
	}
}

func participant(c map[string]any, i int) map[string]any {
	return c["participants"].([]any)[i].(map[string]any)
}

func sess(p map[string]any) map[string]any { return p["sessions"].([]any)[0].(map[string]any) }

func seg(p map[string]any, i int) map[string]any {
	return sess(p)["segments"].([]any)[i].(map[string]any)
}

func find(t *testing.T, evs []domain.Event, typ domain.Type) domain.Event {
	t.Helper()
	for _, e := range evs {
		if e.Type == typ {
			return e
		}
	}
	t.Fatalf("no %s event in %d events", typ, len(evs))
	return domain.Event{}
}
