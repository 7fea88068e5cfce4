package domain_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/custody/custody/domain"
)

// checkRoundTrip marshals e, decodes the output with both Decode and Parse, and checks
// that the event comes back equal and that re-marshaling gives identical bytes.
func checkRoundTrip(t *testing.T, e domain.Event) []byte {
	t.Helper()
	b1, err := e.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	for _, d := range []struct {
		name   string
		decode func([]byte) (domain.Event, error)
	}{{"Decode", dec.Decode}, {"Parse", domain.Parse}} {
		e2, err := d.decode(b1)
		if err != nil {
			t.Fatalf("%s of canonical form %s: %v", d.name, b1, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("%s of canonical form gives another event:\n first %#v\nsecond %#v", d.name, e, e2)
		}
		b2, err := e2.MarshalJSON()
		if err != nil {
			t.Fatalf("second MarshalJSON: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("marshaling twice gives different bytes:\n%s\n%s", b1, b2)
		}
	}
	return b1
}

func TestDecodeRoundTrip(t *testing.T) {
	// Every case gives the time with a non-UTC offset and the id in upper-case hex.
	const (
		upperID   = "0193F1A2-7C4E-7B3A-9D2E-5F6A7B8C9D0E"
		offset    = "2026-03-08T12:29:59.123+05:30" // = testTime
		negOffset = "2026-03-08T01:59:59.123-05:00" // = testTime
	)
	tests := []struct {
		name string
		typ  domain.Type
		data string
		mods []mod
		want domain.Event // ID, Time and Subject are filled in by the test
	}{
		{
			name: "interaction.started voice",
			typ:  domain.InteractionStartedType,
			data: `{"channel":"voice","direction":"inbound","queueId":"q-claims","divisionId":"div:east"}`,
			want: domain.Event{Data: &domain.InteractionStarted{Channel: "voice", Direction: "inbound", QueueID: "q-claims", DivisionID: "div:east"}},
		},
		{
			name: "interaction.started email",
			typ:  domain.InteractionStartedType,
			data: `{"channel":"email","direction":"outbound","email":{"to":"claims@payer.example","fromMasked":"j***@example.org","tls":"TLSv1.2"}}`,
			want: domain.Event{Data: &domain.InteractionStarted{Channel: "email", Direction: "outbound",
				Email: &domain.Email{To: "claims@payer.example", FromMasked: "j***@example.org", TLS: "TLSv1.2"}}},
		},
		{
			name: "interaction.classified",
			typ:  domain.InteractionClassifiedType,
			data: `{"interactionType":"prescription_refill","dataClassification":"restricted","part2":true}`,
			want: domain.Event{Data: &domain.InteractionClassified{InteractionType: "prescription_refill", DataClassification: "restricted", Part2: true}},
		},
		{
			name: "interaction.classified part2 false",
			typ:  domain.InteractionClassifiedType,
			data: `{"interactionType":"other","dataClassification":"public","part2":false}`,
			want: domain.Event{Data: &domain.InteractionClassified{InteractionType: "other", DataClassification: "public"}},
		},
		{
			name: "consent.captured",
			typ:  domain.ConsentCapturedType,
			data: `{"method":"ivr_verbal"}`,
			mods: []mod{set("datacontenttype", `"application/json"`)},
			want: domain.Event{DataContentType: "application/json", Data: &domain.ConsentCaptured{Method: "ivr_verbal"}},
		},
		{
			name: "consent.declined",
			typ:  domain.ConsentDeclinedType,
			data: `{"method":"written"}`,
			want: domain.Event{Data: &domain.ConsentDeclined{Method: "written"}},
		},
		{
			name: "agent.assigned",
			typ:  domain.AgentAssignedType,
			data: `{"agentId":"agent-007","authorized":false,"queueId":"q-claims"}`,
			want: domain.Event{Data: &domain.AgentAssigned{AgentID: "agent-007", Authorized: false, QueueID: "q-claims"}},
		},
		{
			name: "phi.accessed forwarded",
			typ:  domain.PHIAccessedType,
			data: `{"agentId":"sup-3","action":"forwarded","recipientMasked":"k***@partner.example","remoteIp":"2001:db8::1"}`,
			want: domain.Event{Data: &domain.PHIAccessed{AgentID: "sup-3", Action: "forwarded", RecipientMasked: "k***@partner.example", RemoteIP: "2001:db8::1"}},
		},
		{
			name: "interaction.transferred",
			typ:  domain.InteractionTransferredType,
			data: `{"fromQueueId":"q-claims","toQueueId":"q-billing","fromDivisionId":"div-a","toDivisionId":"div-b"}`,
			want: domain.Event{Data: &domain.InteractionTransferred{FromQueueID: "q-claims", ToQueueID: "q-billing", FromDivisionID: "div-a", ToDivisionID: "div-b"}},
		},
		{
			name: "interaction.ended",
			typ:  domain.InteractionEndedType,
			data: `{"disposition":"résolu – callback"}`,
			want: domain.Event{Data: &domain.InteractionEnded{Disposition: "résolu – callback"}},
		},
		{
			name: "interaction.ended empty data",
			typ:  domain.InteractionEndedType,
			data: `{}`,
			want: domain.Event{Data: &domain.InteractionEnded{}},
		},
		{
			name: "recording.stored",
			typ:  domain.RecordingStoredType,
			data: `{"recordingId":"rec-1","kind":"screen","retention":"P1Y6M","legalHold":true}`,
			want: domain.Event{Data: &domain.RecordingStored{RecordingID: "rec-1", Kind: "screen", Retention: domain.Retention{Years: 1, Months: 6}, LegalHold: true}},
		},
		{
			name: "redaction.requested",
			typ:  domain.RedactionRequestedType,
			data: `{"recordingId":"rec-1"}`,
			want: domain.Event{Data: &domain.RedactionRequested{RecordingID: "rec-1"}},
		},
		{
			name: "redaction.completed",
			typ:  domain.RedactionCompletedType,
			data: `{"recordingId":"rec-1","status":"failed"}`,
			want: domain.Event{Data: &domain.RedactionCompleted{RecordingID: "rec-1", Status: "failed"}},
		},
		{
			name: "record.purged",
			typ:  domain.RecordPurgedType,
			data: `{"recordingId":"rec-1","operatorId":"ops-1","recordCount":9007199254740993,"reason":"legal_order"}`,
			want: domain.Event{Data: &domain.RecordPurged{RecordingID: "rec-1", OperatorID: "ops-1", RecordCount: 9007199254740993, Reason: "legal_order"}},
		},
		{
			name: "training.completed",
			typ:  domain.TrainingCompletedType,
			data: `{"course":"hipaa_annual","expiresAt":"2027-03-08T01:59:59.5-05:00"}`,
			want: domain.Event{Data: &domain.TrainingCompleted{Course: "hipaa_annual", ExpiresAt: time.Date(2027, 3, 8, 6, 59, 59, 500000000, time.UTC)}},
		},
		{
			name: "training.expired",
			typ:  domain.TrainingExpiredType,
			data: `{"course":"hipaa_annual"}`,
			want: domain.Event{Data: &domain.TrainingExpired{Course: "hipaa_annual"}},
		},
		{
			name: "extensions and dataschema",
			typ:  domain.ConsentCapturedType,
			data: `{"method":"email"}`,
			mods: []mod{
				set("zeta", `"last \u0041\/x"`), set("alpha", `1.50`), set("flag", `false`), set("n2", `-7`),
				set("dataschema", `"https://schemas.example/custody/consent.captured/v1"`),
			},
			want: domain.Event{
				DataSchema: "https://schemas.example/custody/consent.captured/v1",
				Extensions: map[string]jsontext.Value{"zeta": jsontext.Value(`"last A/x"`), "alpha": jsontext.Value(`1.50`), "flag": jsontext.Value(`false`), "n2": jsontext.Value(`-7`)},
				Data:       &domain.ConsentCaptured{Method: "email"},
			},
		},
	}
	seen := map[domain.Type]bool{}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm := offset
			if i%2 == 1 {
				tm = negOffset
			}
			mods := append([]mod{set("id", q(upperID)), set("time", q(tm))}, tc.mods...)
			in := ev(tc.typ, tc.data, mods...)
			e, err := dec.Decode(in)
			if err != nil {
				t.Fatalf("Decode(%s): %v", in, err)
			}
			want := tc.want
			want.ID = testID
			want.Source = "genesys-cloud/org-3f1c"
			want.Type = tc.typ
			want.Time = testInstant
			want.Subject = testSubject
			if tc.typ.AgentSubject() {
				want.Subject = testAgent
			}
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("Decode(%s)\n got %#v\nwant %#v", in, e, want)
			}
			if e.Time.Location() != time.UTC {
				t.Errorf("time location %v, want UTC", e.Time.Location())
			}
			if e.ID != strings.ToLower(upperID) {
				t.Errorf("id %q, want lower case", e.ID)
			}
			b := checkRoundTrip(t, e)
			for _, frag := range []string{`"id":"` + testID + `"`, `"time":"2026-03-08T06:59:59.123Z"`, `"type":"` + string(tc.typ) + `"`} {
				if !bytes.Contains(b, []byte(frag)) {
					t.Errorf("canonical form %s lacks %s", b, frag)
				}
			}
			if bytes.Contains(b, []byte(upperID)) || bytes.Contains(b, []byte("+05:30")) || bytes.Contains(b, []byte("-05:00")) {
				t.Errorf("canonical form %s keeps the input's id case or offset", b)
			}
		})
		seen[tc.typ] = true
	}
	for _, typ := range domain.Types {
		if !seen[typ] {
			t.Errorf("no round trip for %s", typ)
		}
	}
	if len(domain.Types) != 14 {
		t.Errorf("len(Types) = %d, want 14", len(domain.Types))
	}
}

// TestCanonicalForm pins the exact bytes of the canonical form of one event.
func TestCanonicalForm(t *testing.T) {
	in := ev(domain.InteractionStartedType,
		`{"email":{"tls":"none","fromMasked":"***@example.org","to":"claims@payer.example"},"direction":"inbound","channel":"email"}`,
		set("time", `"2026-03-08T07:59:59.120+01:00"`), set("b", `true`), set("a", `"x"`), set("datacontenttype", `"application/json"`))
	e, err := dec.Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e","source":"genesys-cloud/org-3f1c",` +
		`"type":"interaction.started","time":"2026-03-08T06:59:59.12Z","subject":"c0a8e1f2-2b1d-4e5f-8a9b-0c1d2e3f4a5b",` +
		`"datacontenttype":"application/json","data":{"channel":"email","direction":"inbound",` +
		`"email":{"to":"claims@payer.example","fromMasked":"***@example.org","tls":"none"}},"a":"x","b":true}`
	if string(got) != want {
		t.Errorf("canonical form\n got %s\nwant %s", got, want)
	}
}

func TestMarshalWithoutData(t *testing.T) {
	if _, err := (domain.Event{ID: testID}).MarshalJSON(); err == nil {
		t.Error("MarshalJSON of an event without data succeeded")
	}
}

type badCase struct {
	name     string
	in       []byte
	field    string // the exact Field of one of the problems
	rule     string // when set, the exact Rule of that problem
	internal bool   // the error must also match ErrInternalType
	clock    bool   // broken only against the receiving clock: Parse accepts it
}

func badCases() []badCase {
	started := domain.InteractionStartedType
	email := func(e string) string {
		return `{"channel":"email","direction":"inbound","email":` + e + `}`
	}
	goodEmail := `{"to":"claims@payer.example","fromMasked":"j***@example.org","tls":"TLSv1.3"}`
	phi := domain.PHIAccessedType
	stored := domain.RecordingStoredType
	purged := domain.RecordPurgedType
	training := domain.TrainingCompletedType
	ended := domain.InteractionEndedType
	retention := func(r string) []byte {
		return ev(stored, `{"recordingId":"rec-1","kind":"audio","retention":`+r+`}`)
	}
	count := func(n string) []byte {
		return ev(purged, `{"recordingId":"rec-1","operatorId":"ops-1","recordCount":`+n+`,"reason":"patient_request"}`)
	}
	expires := func(x string) []byte {
		return ev(training, `{"course":"hipaa_annual","expiresAt":`+x+`}`)
	}
	disposition := func(s string) []byte { return ev(ended, `{"disposition":`+q(s)+`}`) }
	long := strings.Repeat("a", 129)
	consent := domain.ConsentCapturedType

	return []badCase{
		// Whole-document problems.
		{name: "not JSON", in: []byte(`{"specversion":`), field: "event"},
		{name: "empty input", in: []byte(``), field: "event"},
		{name: "top-level array", in: []byte(`[` + string(valid(consent)) + `]`), field: "event"},
		{name: "top-level null", in: []byte(`null`), field: "event"},
		{name: "top-level string", in: []byte(`"event"`), field: "event"},
		{name: "two objects", in: append(valid(consent), valid(consent)...), field: "event"},
		{name: "duplicate top-level key", in: valid(consent, dup("id", q("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0f"))), field: "event"},
		{name: "duplicate key spelled with an escape", in: bytes.Replace(valid(consent, dup("zzz", `"x"`)), []byte(`"zzz"`), []byte(`"\u0069d"`), 1), field: "event"},
		{name: "duplicate key same value", in: valid(consent, dup("subject", q(testSubject))), field: "event"},
		{name: "duplicate key inside data", in: ev(consent, `{"method":"written","method":"written"}`), field: "event"},
		{name: "duplicate key inside email", in: ev(started, email(`{"to":"a@b.example","to":"a@b.example","fromMasked":"j***@example.org","tls":"none"}`)), field: "event"},
		{name: "invalid UTF-8 in value", in: valid(consent, set("source", "\"genesys\xff/org\"")), field: "event"},
		{name: "invalid UTF-8 in key", in: bytes.Replace(valid(consent, set("abc", `"x"`)), []byte(`"abc"`), []byte("\"ab\xc3\""), 1), field: "event"},
		{name: "invalid UTF-8 in data", in: ev(ended, "{\"disposition\":\"ok\xed\xa0\x80\"}"), field: "event"},
		{name: "lone surrogate escape", in: ev(ended, `{"disposition":"\ud800"}`), field: "event"},

		// specversion
		{name: "specversion 0.3", in: valid(consent, set("specversion", `"0.3"`)), field: "specversion"},
		{name: "specversion 1", in: valid(consent, set("specversion", `"1"`)), field: "specversion"},
		{name: "specversion number", in: valid(consent, set("specversion", `1.0`)), field: "specversion"},
		{name: "specversion missing", in: valid(consent, del("specversion")), field: "specversion"},
		{name: "specversion null", in: valid(consent, set("specversion", `null`)), field: "specversion"},

		// id
		{name: "id missing", in: valid(consent, del("id")), field: "id"},
		{name: "id empty", in: valid(consent, set("id", `""`)), field: "id"},
		{name: "id number", in: valid(consent, set("id", `42`)), field: "id"},
		{name: "id not a UUID", in: valid(consent, set("id", `"evt-1"`)), field: "id"},
		{name: "id without hyphens", in: valid(consent, set("id", `"0193f1a27c4e7b3a9d2e5f6a7b8c9d0e"`)), field: "id"},
		{name: "id in braces", in: valid(consent, set("id", `"{0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e}"`)), field: "id"},
		{name: "id urn form", in: valid(consent, set("id", `"urn:uuid:0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e"`)), field: "id"},
		{name: "id hyphen misplaced", in: valid(consent, set("id", `"0193f1a27-c4e-7b3a-9d2e-5f6a7b8c9d0e"`)), field: "id"},
		{name: "id non-hex digit", in: valid(consent, set("id", `"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0g"`)), field: "id"},
		{name: "id too long", in: valid(consent, set("id", `"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e0"`)), field: "id"},
		{name: "id version 0", in: valid(consent, set("id", `"0193f1a2-7c4e-0b3a-9d2e-5f6a7b8c9d0e"`)), field: "id"},
		{name: "id version 9", in: valid(consent, set("id", `"0193f1a2-7c4e-9b3a-9d2e-5f6a7b8c9d0e"`)), field: "id"},
		{name: "id version f", in: valid(consent, set("id", `"0193f1a2-7c4e-fb3a-9d2e-5f6a7b8c9d0e"`)), field: "id"},
		{name: "id NCS variant", in: valid(consent, set("id", `"0193f1a2-7c4e-7b3a-7d2e-5f6a7b8c9d0e"`)), field: "id"},
		{name: "id Microsoft variant", in: valid(consent, set("id", `"0193f1a2-7c4e-7b3a-cd2e-5f6a7b8c9d0e"`)), field: "id"},
		{name: "id reserved variant", in: valid(consent, set("id", `"0193f1a2-7c4e-7b3a-ED2E-5f6a7b8c9d0e"`)), field: "id"},
		{name: "id nil UUID", in: valid(consent, set("id", `"00000000-0000-0000-0000-000000000000"`)), field: "id"},
		{name: "id max UUID", in: valid(consent, set("id", `"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"`)), field: "id"},
		{name: "id max UUID lower", in: valid(consent, set("id", `"ffffffff-ffff-ffff-ffff-ffffffffffff"`)), field: "id"},

		// source
		{name: "source missing", in: valid(consent, del("source")), field: "source"},
		{name: "source empty", in: valid(consent, set("source", `""`)), field: "source"},
		{name: "source number", in: valid(consent, set("source", `3`)), field: "source"},
		{name: "source object", in: valid(consent, set("source", `{"platform":"genesys"}`)), field: "source"},
		{name: "source with space", in: valid(consent, set("source", `"genesys cloud/org"`)), field: "source"},
		{name: "source with newline", in: valid(consent, set("source", `"genesys\n/org"`)), field: "source"},
		{name: "source colon first", in: valid(consent, set("source", `":org-3f1c"`)), field: "source"},
		{name: "source bad escape", in: valid(consent, set("source", `"genesys/%zz"`)), field: "source"},
		{name: "source with SSN", in: valid(consent, set("source", `"genesys-cloud/org-123-45-6789"`)), field: "source", rule: domain.RuleSSN},
		{name: "source with date of birth", in: valid(consent, set("source", `"lms/01/02/1990"`)), field: "source", rule: domain.RuleDOB},
		{name: "source with MRN", in: valid(consent, set("source", `"emr/MRN-0012345"`)), field: "source", rule: domain.RuleMRN},

		// type
		{name: "type missing", in: valid(consent, del("type")), field: "type"},
		{name: "type null", in: valid(consent, set("type", `null`)), field: "type"},
		{name: "type unknown", in: valid(consent, set("type", `"interaction.deleted"`)), field: "type"},
		{name: "type wrong case", in: valid(consent, set("type", `"Consent.Captured"`)), field: "type"},
		{name: "type CloudEvents reverse-DNS", in: valid(consent, set("type", `"com.genesys.consent.captured"`)), field: "type"},
		{name: "type array", in: valid(consent, set("type", `["consent.captured"]`)), field: "type"},
		{name: "type alert.raised", in: valid(domain.AlertRaisedType), field: "type", internal: true},
		{name: "type report.executed", in: valid(domain.ReportExecutedType), field: "type", internal: true},
		{name: "type checkpoint.signed", in: valid(domain.CheckpointSignedType), field: "type", internal: true},
		{name: "type alert.raised with consent data", in: ev(domain.AlertRaisedType, validData[consent]), field: "type", internal: true},

		// time
		{name: "time missing", in: valid(consent, del("time")), field: "time"},
		{name: "time empty", in: valid(consent, set("time", `""`)), field: "time"},
		{name: "time number", in: valid(consent, set("time", `1772953199`)), field: "time"},
		{name: "time without offset", in: valid(consent, set("time", `"2026-03-08T06:59:59.123"`)), field: "time"},
		{name: "time without offset or fraction", in: valid(consent, set("time", `"2026-03-08T06:59:59"`)), field: "time"},
		{name: "time date only", in: valid(consent, set("time", `"2026-03-08"`)), field: "time"},
		{name: "time space separator", in: valid(consent, set("time", `"2026-03-08 06:59:59Z"`)), field: "time"},
		{name: "time offset without colon", in: valid(consent, set("time", `"2026-03-08T06:59:59+0100"`)), field: "time"},
		{name: "time ten fraction digits", in: valid(consent, set("time", `"2026-03-08T06:59:59.1234567890Z"`)), field: "time"},
		{name: "time ten fraction digits after comma", in: valid(consent, set("time", `"2026-03-08T06:59:59,1234567890Z"`)), field: "time"},
		{name: "time leap second", in: valid(consent, set("time", `"2016-12-31T23:59:60Z"`)), field: "time"},
		{name: "time hour 24", in: valid(consent, set("time", `"2026-03-08T24:00:00Z"`)), field: "time"},
		{name: "time 30 February", in: valid(consent, set("time", `"2024-02-30T06:59:59Z"`)), field: "time"},
		{name: "time offset +24:00", in: valid(consent, set("time", `"2026-03-08T06:59:59+24:00"`)), field: "time"},
		{name: "time offset -24:00", in: valid(consent, set("time", `"2026-03-08T06:59:59-24:00"`)), field: "time"},
		{name: "time offset +23:60", in: valid(consent, set("time", `"2026-03-08T06:59:59+23:60"`)), field: "time"},
		{name: "time offset +00:60", in: valid(consent, set("time", `"2026-03-08T06:59:59+00:60"`)), field: "time"},
		{name: "time year 1999", in: valid(consent, set("time", `"1999-12-31T23:59:59.999999999Z"`)), field: "time"},
		{name: "time year 2000 by offset only", in: valid(consent, set("time", `"2000-01-01T00:30:00+01:00"`)), field: "time"},
		{name: "time year 1970", in: valid(consent, set("time", `"1970-01-01T00:00:00Z"`)), field: "time"},
		{name: "time 1 ns beyond 24 h ahead", in: valid(consent, set("time", `"2026-03-11T12:00:00.000000001Z"`)), field: "time", clock: true},
		{name: "time beyond 24 h ahead in offset", in: valid(consent, set("time", `"2026-03-11T13:00:01+01:00"`)), field: "time", clock: true},
		{name: "time a year ahead", in: valid(consent, set("time", `"2027-03-08T06:59:59Z"`)), field: "time", clock: true},

		// subject
		{name: "subject missing", in: valid(consent, del("subject")), field: "subject"},
		{name: "subject null", in: valid(consent, set("subject", `null`)), field: "subject"},
		{name: "subject empty", in: valid(consent, set("subject", `""`)), field: "subject"},
		{name: "subject number", in: valid(consent, set("subject", `12345`)), field: "subject"},
		{name: "subject 129 characters", in: valid(consent, set("subject", q(long))), field: "subject"},
		{name: "subject with dot", in: valid(consent, set("subject", `"conv.1"`)), field: "subject"},
		{name: "subject with slash", in: valid(consent, set("subject", `"org/conv-1"`)), field: "subject"},
		{name: "subject with space", in: valid(consent, set("subject", `"conv 1"`)), field: "subject"},
		{name: "subject non-ASCII letter", in: valid(consent, set("subject", `"convé"`)), field: "subject"},
		{name: "subject with at sign", in: valid(domain.TrainingExpiredType, set("subject", `"member@example.org"`)), field: "subject"},
		{name: "subject SSN word", in: valid(consent, set("subject", `"SSN123456789"`)), field: "subject", rule: domain.RuleSSN},
		{name: "subject MRN", in: valid(consent, set("subject", `"mrn:00123456"`)), field: "subject", rule: domain.RuleMRN},
		{name: "subject NPI", in: valid(domain.TrainingExpiredType, set("subject", `"npi_1234567893"`)), field: "subject", rule: domain.RuleNPI},
		{name: "subject SSN shape", in: valid(consent, set("subject", `"caller-123-45-6789"`)), field: "subject", rule: domain.RuleSSN},

		// datacontenttype, dataschema
		{name: "datacontenttype text/plain", in: valid(consent, set("datacontenttype", `"text/plain"`)), field: "datacontenttype"},
		{name: "datacontenttype with charset", in: valid(consent, set("datacontenttype", `"application/json; charset=utf-8"`)), field: "datacontenttype"},
		{name: "datacontenttype upper case", in: valid(consent, set("datacontenttype", `"Application/JSON"`)), field: "datacontenttype"},
		{name: "datacontenttype empty", in: valid(consent, set("datacontenttype", `""`)), field: "datacontenttype"},
		{name: "datacontenttype bool", in: valid(consent, set("datacontenttype", `true`)), field: "datacontenttype"},
		{name: "dataschema empty", in: valid(consent, set("dataschema", `""`)), field: "dataschema"},
		{name: "dataschema with space", in: valid(consent, set("dataschema", `"https://schemas.example/a b"`)), field: "dataschema"},
		{name: "dataschema with SSN", in: valid(consent, set("dataschema", `"https://schemas.example/123-45-6789"`)), field: "dataschema", rule: domain.RuleSSN},

		// data
		{name: "data missing", in: valid(consent, del("data")), field: "data"},
		{name: "data null", in: valid(consent, set("data", `null`)), field: "data"},
		{name: "data array", in: valid(consent, set("data", `[{"method":"written"}]`)), field: "data"},
		{name: "data string", in: valid(consent, set("data", q(validData[consent]))), field: "data"},
		{name: "data number", in: valid(consent, set("data", `0`)), field: "data"},
		{name: "data_base64 beside data", in: valid(consent, set("data_base64", `"eyJtZXRob2QiOiJ3cml0dGVuIn0="`)), field: "data_base64"},
		{name: "data_base64 instead of data", in: valid(consent, del("data"), set("data_base64", `"eyJtZXRob2QiOiJ3cml0dGVuIn0="`)), field: "data_base64"},
		{name: "data_base64 instead of data names data", in: valid(consent, del("data"), set("data_base64", `"eyJtZXRob2QiOiJ3cml0dGVuIn0="`)), field: "data"},

		// keys are case-sensitive; extensions
		{name: "key Subject", in: valid(consent, del("subject"), set("Subject", q(testSubject))), field: "Subject"},
		{name: "key Subject names subject", in: valid(consent, del("subject"), set("Subject", q(testSubject))), field: "subject"},
		{name: "key Data beside data", in: valid(consent, set("Data", `{}`)), field: "Data"},
		{name: "extension upper case", in: valid(consent, set("Traceparent", `"00-abc"`)), field: "Traceparent"},
		{name: "extension 21 characters", in: valid(consent, set("abcdefghijklmnopqrstu", `"x"`)), field: "abcdefghijklmnopqrstu"},
		{name: "extension underscore", in: valid(consent, set("trace_id", `"x"`)), field: "trace_id"},
		{name: "extension hyphen", in: valid(consent, set("trace-id", `"x"`)), field: "trace-id"},
		{name: "extension empty name", in: valid(consent, set("", `"x"`)), field: ""},
		{name: "extension object", in: valid(consent, set("trace", `{"id":"x"}`)), field: "trace"},
		{name: "extension array", in: valid(consent, set("tags", `["a"]`)), field: "tags"},
		{name: "extension empty string", in: valid(consent, set("note", `""`)), field: "note"},
		{name: "extension SSN", in: valid(consent, set("note", `"caller 123-45-6789"`)), field: "note", rule: domain.RuleSSN},
		{name: "extension MRN", in: valid(consent, set("note", `"MRN 1234567"`)), field: "note", rule: domain.RuleMRN},
		{name: "extension date of birth escaped", in: valid(consent, set("note", `"dob 01\/31\/1980"`)), field: "note", rule: domain.RuleDOB},
		{name: "extension NPI", in: valid(consent, set("provider", `"NPI: 1234567893"`)), field: "provider", rule: domain.RuleNPI},

		// interaction.started
		{name: "started channel missing", in: ev(started, `{"direction":"inbound"}`), field: "data.channel"},
		{name: "started channel fax", in: ev(started, `{"channel":"fax","direction":"inbound"}`), field: "data.channel"},
		{name: "started channel upper case", in: ev(started, `{"channel":"Voice","direction":"inbound"}`), field: "data.channel"},
		{name: "started channel empty", in: ev(started, `{"channel":"","direction":"inbound"}`), field: "data.channel"},
		{name: "started channel number", in: ev(started, `{"channel":1,"direction":"inbound"}`), field: "data.channel"},
		{name: "started direction missing", in: ev(started, `{"channel":"chat"}`), field: "data.direction"},
		{name: "started direction sideways", in: ev(started, `{"channel":"chat","direction":"sideways"}`), field: "data.direction"},
		{name: "started queueId empty", in: ev(started, `{"channel":"chat","direction":"inbound","queueId":""}`), field: "data.queueId"},
		{name: "started queueId with space", in: ev(started, `{"channel":"chat","direction":"inbound","queueId":"claims queue"}`), field: "data.queueId"},
		{name: "started divisionId number", in: ev(started, `{"channel":"chat","direction":"inbound","divisionId":7}`), field: "data.divisionId"},
		{name: "started divisionId 129", in: ev(started, `{"channel":"chat","direction":"inbound","divisionId":`+q(long)+`}`), field: "data.divisionId"},
		{name: "started unknown field", in: ev(started, `{"channel":"chat","direction":"inbound","agentId":"agent-007"}`), field: "data.agentId"},
		{name: "started field wrong case", in: ev(started, `{"channel":"chat","direction":"inbound","QueueId":"q"}`), field: "data.QueueId"},
		{name: "started email missing", in: ev(started, `{"channel":"email","direction":"inbound"}`), field: "data.email"},
		{name: "started email null", in: ev(started, email(`null`)), field: "data.email"},
		{name: "started email string", in: ev(started, email(`"claims@payer.example"`)), field: "data.email"},
		{name: "started email.to missing", in: ev(started, email(`{"fromMasked":"j***@example.org","tls":"none"}`)), field: "data.email.to"},
		{name: "started email.to empty", in: ev(started, email(`{"to":"","fromMasked":"j***@example.org","tls":"none"}`)), field: "data.email.to"},
		{name: "started email.to MRN", in: ev(started, email(`{"to":"mrn-1234567@payer.example","fromMasked":"j***@example.org","tls":"none"}`)), field: "data.email.to", rule: domain.RuleMRN},
		{name: "started email.fromMasked missing", in: ev(started, email(`{"to":"claims@payer.example","tls":"none"}`)), field: "data.email.fromMasked"},
		{name: "started email.fromMasked unmasked", in: ev(started, email(`{"to":"claims@payer.example","fromMasked":"member.one@example.org","tls":"none"}`)), field: "data.email.fromMasked", rule: domain.RuleMasked},
		{name: "started email.fromMasked two visible", in: ev(started, email(`{"to":"claims@payer.example","fromMasked":"jo***@example.org","tls":"none"}`)), field: "data.email.fromMasked", rule: domain.RuleMasked},
		{name: "started email.fromMasked NPI domain", in: ev(started, email(`{"to":"claims@payer.example","fromMasked":"***@npi1234567890.example.org","tls":"none"}`)), field: "data.email.fromMasked", rule: domain.RuleNPI},
		{name: "started email.tls missing", in: ev(started, email(`{"to":"claims@payer.example","fromMasked":"j***@example.org"}`)), field: "data.email.tls"},
		{name: "started email.tls TLSv1.1", in: ev(started, email(`{"to":"claims@payer.example","fromMasked":"j***@example.org","tls":"TLSv1.1"}`)), field: "data.email.tls"},
		{name: "started email.tls lower case", in: ev(started, email(`{"to":"claims@payer.example","fromMasked":"j***@example.org","tls":"tlsv1.3"}`)), field: "data.email.tls"},
		{name: "started email.tls bool", in: ev(started, email(`{"to":"claims@payer.example","fromMasked":"j***@example.org","tls":true}`)), field: "data.email.tls"},
		{name: "started email unknown field", in: ev(started, email(`{"to":"claims@payer.example","fromMasked":"j***@example.org","tls":"none","cc":"x***@example.org"}`)), field: "data.email.cc"},
		{name: "started email on voice unmasked", in: ev(started, `{"channel":"voice","direction":"inbound","email":{"to":"claims@payer.example","fromMasked":"member@example.org","tls":"none"}}`), field: "data.email.fromMasked"},
		{name: "started email on chat with SSN", in: ev(started, `{"channel":"chat","direction":"inbound","email":`+strings.Replace(goodEmail, "claims@", "123-45-6789@", 1)+`}`), field: "data.email.to", rule: domain.RuleSSN},

		// interaction.classified
		{name: "classified interactionType missing", in: ev(domain.InteractionClassifiedType, `{"dataClassification":"public"}`), field: "data.interactionType"},
		{name: "classified interactionType unknown", in: ev(domain.InteractionClassifiedType, `{"interactionType":"appointment","dataClassification":"public"}`), field: "data.interactionType"},
		{name: "classified dataClassification PHI", in: ev(domain.InteractionClassifiedType, `{"interactionType":"other","dataClassification":"PHI"}`), field: "data.dataClassification"},
		{name: "classified dataClassification missing", in: ev(domain.InteractionClassifiedType, `{"interactionType":"other"}`), field: "data.dataClassification"},
		{name: "classified part2 string", in: ev(domain.InteractionClassifiedType, `{"interactionType":"other","dataClassification":"public","part2":"true"}`), field: "data.part2"},
		{name: "classified part2 number", in: ev(domain.InteractionClassifiedType, `{"interactionType":"other","dataClassification":"public","part2":1}`), field: "data.part2"},

		// consent
		{name: "consent.captured method missing", in: ev(consent, `{}`), field: "data.method"},
		{name: "consent.captured method verbal", in: ev(consent, `{"method":"verbal"}`), field: "data.method"},
		{name: "consent.captured method array", in: ev(consent, `{"method":["written"]}`), field: "data.method"},
		{name: "consent.declined method upper case", in: ev(domain.ConsentDeclinedType, `{"method":"IVR_VERBAL"}`), field: "data.method"},
		{name: "consent.declined unknown field", in: ev(domain.ConsentDeclinedType, `{"method":"written","reason":"no"}`), field: "data.reason"},

		// agent.assigned
		{name: "assigned agentId missing", in: ev(domain.AgentAssignedType, `{"authorized":true}`), field: "data.agentId"},
		{name: "assigned agentId 129", in: ev(domain.AgentAssignedType, `{"agentId":`+q(long)+`,"authorized":true}`), field: "data.agentId"},
		{name: "assigned agentId e-mail", in: ev(domain.AgentAssignedType, `{"agentId":"member@example.org","authorized":true}`), field: "data.agentId"},
		{name: "assigned agentId number", in: ev(domain.AgentAssignedType, `{"agentId":7,"authorized":true}`), field: "data.agentId"},
		{name: "assigned authorized missing", in: ev(domain.AgentAssignedType, `{"agentId":"agent-007"}`), field: "data.authorized"},
		{name: "assigned authorized null", in: ev(domain.AgentAssignedType, `{"agentId":"agent-007","authorized":null}`), field: "data.authorized"},
		{name: "assigned authorized string", in: ev(domain.AgentAssignedType, `{"agentId":"agent-007","authorized":"true"}`), field: "data.authorized"},
		{name: "assigned authorized number", in: ev(domain.AgentAssignedType, `{"agentId":"agent-007","authorized":1}`), field: "data.authorized"},
		{name: "assigned queueId empty", in: ev(domain.AgentAssignedType, `{"agentId":"agent-007","authorized":true,"queueId":""}`), field: "data.queueId"},

		// phi.accessed
		{name: "accessed agentId missing", in: ev(phi, `{"action":"handled"}`), field: "data.agentId"},
		{name: "accessed agentId NPI", in: ev(phi, `{"agentId":"NPI-1234567893","action":"handled"}`), field: "data.agentId", rule: domain.RuleNPI},
		{name: "accessed action missing", in: ev(phi, `{"agentId":"agent-007"}`), field: "data.action"},
		{name: "accessed action viewed", in: ev(phi, `{"agentId":"agent-007","action":"viewed"}`), field: "data.action"},
		{name: "accessed recording_accessed without recordingId", in: ev(phi, `{"agentId":"agent-007","action":"recording_accessed"}`), field: "data.recordingId"},
		{name: "accessed transcript_viewed recordingId null", in: ev(phi, `{"agentId":"agent-007","action":"transcript_viewed","recordingId":null}`), field: "data.recordingId"},
		{name: "accessed transcript_viewed recordingId empty", in: ev(phi, `{"agentId":"agent-007","action":"transcript_viewed","recordingId":""}`), field: "data.recordingId"},
		{name: "accessed recordingId with slash", in: ev(phi, `{"agentId":"agent-007","action":"recording_accessed","recordingId":"s3/rec-1"}`), field: "data.recordingId"},
		{name: "accessed forwarded without recipientMasked", in: ev(phi, `{"agentId":"agent-007","action":"forwarded"}`), field: "data.recipientMasked"},
		{name: "accessed forwarded recipientMasked unmasked", in: ev(phi, `{"agentId":"agent-007","action":"forwarded","recipientMasked":"kim@partner.example"}`), field: "data.recipientMasked", rule: domain.RuleMasked},
		{name: "accessed forwarded recipientMasked empty", in: ev(phi, `{"agentId":"agent-007","action":"forwarded","recipientMasked":""}`), field: "data.recipientMasked"},
		{name: "accessed handled recipientMasked unmasked", in: ev(phi, `{"agentId":"agent-007","action":"handled","recipientMasked":"kim@partner.example"}`), field: "data.recipientMasked", rule: domain.RuleMasked},
		{name: "accessed remoteIp out of range", in: ev(phi, `{"agentId":"agent-007","action":"handled","remoteIp":"999.1.1.1"}`), field: "data.remoteIp"},
		{name: "accessed remoteIp host name", in: ev(phi, `{"agentId":"agent-007","action":"handled","remoteIp":"localhost"}`), field: "data.remoteIp"},
		{name: "accessed remoteIp with port", in: ev(phi, `{"agentId":"agent-007","action":"handled","remoteIp":"10.0.0.1:443"}`), field: "data.remoteIp"},
		{name: "accessed remoteIp CIDR", in: ev(phi, `{"agentId":"agent-007","action":"handled","remoteIp":"10.0.0.0/8"}`), field: "data.remoteIp"},
		{name: "accessed remoteIp empty", in: ev(phi, `{"agentId":"agent-007","action":"handled","remoteIp":""}`), field: "data.remoteIp"},
		{name: "accessed remoteIp number", in: ev(phi, `{"agentId":"agent-007","action":"handled","remoteIp":167772161}`), field: "data.remoteIp"},

		// interaction.transferred
		{name: "transferred fromQueueId missing", in: ev(domain.InteractionTransferredType, `{"toQueueId":"q-b"}`), field: "data.fromQueueId"},
		{name: "transferred toQueueId empty", in: ev(domain.InteractionTransferredType, `{"fromQueueId":"q-a","toQueueId":""}`), field: "data.toQueueId"},
		{name: "transferred toDivisionId bad", in: ev(domain.InteractionTransferredType, `{"fromQueueId":"q-a","toQueueId":"q-b","toDivisionId":"div#2"}`), field: "data.toDivisionId"},
		{name: "transferred fromDivisionId bool", in: ev(domain.InteractionTransferredType, `{"fromQueueId":"q-a","toQueueId":"q-b","fromDivisionId":false}`), field: "data.fromDivisionId"},

		// interaction.ended, minimum necessary in free text
		{name: "ended disposition empty", in: disposition(""), field: "data.disposition"},
		{name: "ended disposition number", in: ev(ended, `{"disposition":3}`), field: "data.disposition"},
		{name: "ended unknown field", in: ev(ended, `{"reason":"done"}`), field: "data.reason"},
		{name: "ended SSN shape", in: disposition("caller gave 123-45-6789"), field: "data.disposition", rule: domain.RuleSSN},
		{name: "ended SSN word", in: disposition("verified ssn#123456789"), field: "data.disposition", rule: domain.RuleSSN},
		{name: "ended SSN word three separators", in: disposition("SSN : 123456789"), field: "data.disposition", rule: domain.RuleSSN},
		{name: "ended MRN", in: disposition("looked up MRN:0012345"), field: "data.disposition", rule: domain.RuleMRN},
		{name: "ended MRN lower case", in: disposition("mrn 123456"), field: "data.disposition", rule: domain.RuleMRN},
		{name: "ended NPI", in: disposition("referred to Npi-1234567893"), field: "data.disposition", rule: domain.RuleNPI},
		{name: "ended date of birth", in: disposition("dob 01/31/1980"), field: "data.disposition", rule: domain.RuleDOB},

		// recording.stored
		{name: "stored recordingId missing", in: ev(stored, `{"kind":"audio","retention":"P6Y"}`), field: "data.recordingId"},
		{name: "stored kind video", in: ev(stored, `{"recordingId":"rec-1","kind":"video","retention":"P6Y"}`), field: "data.kind"},
		{name: "stored kind missing", in: ev(stored, `{"recordingId":"rec-1","retention":"P6Y"}`), field: "data.kind"},
		{name: "stored retention missing", in: ev(stored, `{"recordingId":"rec-1","kind":"audio"}`), field: "data.retention"},
		{name: "stored retention P0D", in: retention(`"P0D"`), field: "data.retention"},
		{name: "stored retention P0Y0M0D", in: retention(`"P0Y0M0D"`), field: "data.retention"},
		{name: "stored retention lower case", in: retention(`"p6y"`), field: "data.retention"},
		{name: "stored retention lower unit", in: retention(`"P6y"`), field: "data.retention"},
		{name: "stored retention wrong order", in: retention(`"P6M1Y"`), field: "data.retention"},
		{name: "stored retention days before months", in: retention(`"P1D1M"`), field: "data.retention"},
		{name: "stored retention hours", in: retention(`"PT1H"`), field: "data.retention"},
		{name: "stored retention with time part", in: retention(`"P1DT1H"`), field: "data.retention"},
		{name: "stored retention weeks", in: retention(`"P1W"`), field: "data.retention"},
		{name: "stored retention bare P", in: retention(`"P"`), field: "data.retention"},
		{name: "stored retention no P", in: retention(`"6Y"`), field: "data.retention"},
		{name: "stored retention fraction", in: retention(`"P1.5Y"`), field: "data.retention"},
		{name: "stored retention negative", in: retention(`"P-1Y"`), field: "data.retention"},
		{name: "stored retention repeated unit", in: retention(`"P1Y1Y"`), field: "data.retention"},
		{name: "stored retention empty", in: retention(`""`), field: "data.retention"},
		{name: "stored retention number", in: retention(`6`), field: "data.retention"},
		{name: "stored legalHold string", in: ev(stored, `{"recordingId":"rec-1","kind":"audio","retention":"P6Y","legalHold":"yes"}`), field: "data.legalHold"},

		// redaction
		{name: "redaction.requested recordingId missing", in: ev(domain.RedactionRequestedType, `{}`), field: "data.recordingId"},
		{name: "redaction.requested unknown field", in: ev(domain.RedactionRequestedType, `{"recordingId":"rec-1","status":"complete"}`), field: "data.status"},
		{name: "redaction.completed status partial", in: ev(domain.RedactionCompletedType, `{"recordingId":"rec-1","status":"partial"}`), field: "data.status"},
		{name: "redaction.completed status missing", in: ev(domain.RedactionCompletedType, `{"recordingId":"rec-1"}`), field: "data.status"},

		// record.purged
		{name: "purged recordCount 0", in: count(`0`), field: "data.recordCount"},
		{name: "purged recordCount -1", in: count(`-1`), field: "data.recordCount"},
		{name: "purged recordCount -0", in: count(`-0`), field: "data.recordCount"},
		{name: "purged recordCount 1.5", in: count(`1.5`), field: "data.recordCount"},
		{name: "purged recordCount 1.0", in: count(`1.0`), field: "data.recordCount"},
		{name: "purged recordCount 1e2", in: count(`1e2`), field: "data.recordCount"},
		{name: "purged recordCount string", in: count(`"1"`), field: "data.recordCount"},
		{name: "purged recordCount beyond 64 bits", in: count(`99999999999999999999`), field: "data.recordCount"},
		{name: "purged recordCount null", in: count(`null`), field: "data.recordCount"},
		{name: "purged operatorId missing", in: ev(purged, `{"recordingId":"rec-1","recordCount":1,"reason":"legal_order"}`), field: "data.operatorId"},
		{name: "purged reason unknown", in: ev(purged, `{"recordingId":"rec-1","operatorId":"ops-1","recordCount":1,"reason":"cleanup"}`), field: "data.reason"},
		{name: "purged reason missing", in: ev(purged, `{"recordingId":"rec-1","operatorId":"ops-1","recordCount":1}`), field: "data.reason"},

		// training
		{name: "training.completed course missing", in: ev(training, `{"expiresAt":"2027-03-08T06:59:59Z"}`), field: "data.course"},
		{name: "training.completed course empty", in: ev(training, `{"course":"","expiresAt":"2027-03-08T06:59:59Z"}`), field: "data.course"},
		{name: "training.completed course with date", in: ev(training, `{"course":"hipaa 12/31/2026","expiresAt":"2027-03-08T06:59:59Z"}`), field: "data.course", rule: domain.RuleDOB},
		{name: "training.completed expiresAt missing", in: ev(training, `{"course":"hipaa_annual"}`), field: "data.expiresAt"},
		{name: "training.completed expiresAt equal to time", in: expires(q(testTime)), field: "data.expiresAt"},
		{name: "training.completed expiresAt equal in offset", in: expires(`"2026-03-08T12:29:59.123+05:30"`), field: "data.expiresAt"},
		{name: "training.completed expiresAt before time", in: expires(`"2025-03-08T06:59:59Z"`), field: "data.expiresAt"},
		{name: "training.completed expiresAt without offset", in: expires(`"2027-03-08T06:59:59"`), field: "data.expiresAt"},
		{name: "training.completed expiresAt date only", in: expires(`"2027-03-08"`), field: "data.expiresAt"},
		{name: "training.completed expiresAt number", in: expires(`1804489199`), field: "data.expiresAt"},
		{name: "training.completed expiresAt ten fraction digits", in: expires(`"2027-03-08T06:59:59.0000000001Z"`), field: "data.expiresAt"},
		{name: "training.expired course missing", in: ev(domain.TrainingExpiredType, `{}`), field: "data.course"},
		{name: "training.expired unknown field", in: ev(domain.TrainingExpiredType, `{"course":"hipaa_annual","expiresAt":"2027-03-08T06:59:59Z"}`), field: "data.expiresAt"},
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := badCases()
	if len(cases) < 50 {
		t.Fatalf("only %d bad inputs", len(cases))
	}
	names := map[string]bool{}
	for _, tc := range cases {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			e, err := dec.Decode(tc.in)
			checkRejected(t, "Decode", tc, e, err)
			if tc.internal {
				if !errors.Is(err, domain.ErrInternalType) {
					t.Errorf("error %v does not match ErrInternalType", err)
				}
			} else if errors.Is(err, domain.ErrInternalType) {
				t.Errorf("error %v matches ErrInternalType", err)
			}
			// Parse checks the same rules, except the receiving clock and internal types.
			e, err = domain.Parse(tc.in)
			switch {
			case tc.clock:
				if err != nil {
					t.Errorf("Parse rejects an event valid but for the receiving clock: %v", err)
				}
			case tc.internal:
			default:
				checkRejected(t, "Parse", tc, e, err)
			}
		})
	}
}

func checkRejected(t *testing.T, fn string, tc badCase, e domain.Event, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s(%s) accepted: %#v", fn, tc.in, e)
	}
	if !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("%s: error %v does not match ErrInvalid", fn, err)
	}
	if !reflect.DeepEqual(e, domain.Event{}) {
		t.Errorf("%s: rejected event is not the zero Event: %#v", fn, e)
	}
	probs := domain.Problems(err)
	if len(probs) == 0 {
		t.Fatalf("%s: Problems(%v) is empty", fn, err)
	}
	var found *domain.FieldError
	for _, p := range probs {
		if p.Rule == "" {
			t.Errorf("%s: problem of %q has no rule", fn, p.Field)
		}
		if !errors.Is(p, domain.ErrInvalid) {
			t.Errorf("%s: problem %v does not match ErrInvalid", fn, p)
		}
		if p.Field == tc.field && found == nil {
			found = p
		}
	}
	if found == nil {
		t.Fatalf("%s(%s): no problem of field %q in %q", fn, tc.in, tc.field, err)
	}
	if tc.rule != "" && found.Rule != tc.rule {
		t.Errorf("%s: rule of %q is %q, want %q", fn, tc.field, found.Rule, tc.rule)
	}
	var fe *domain.FieldError
	if !errors.As(err, &fe) {
		t.Errorf("%s: errors.As finds no *FieldError in %v", fn, err)
	}
	if !strings.Contains(err.Error(), found.Error()) {
		t.Errorf("%s: message %q lacks %q", fn, err, found.Error())
	}
}

func TestDecodeReportsAllProblems(t *testing.T) {
	in := ev(domain.InteractionStartedType,
		`{"channel":"email","direction":"up","queueId":"q 1","email":{"to":"","fromMasked":"member@example.org","tls":"SSLv3","bcc":"x"},"notes":"n"}`,
		set("specversion", `"2.0"`),
		set("id", `"00000000-0000-0000-0000-000000000000"`),
		set("source", `"genesys cloud"`),
		set("time", `"2026-03-08T06:59:59"`),
		set("subject", `"conv/1"`),
		set("datacontenttype", `"text/json"`),
		set("Ext", `"x"`),
		set("note", `"SSN 123456789"`),
		set("data_base64", `"e30="`),
	)
	_, err := dec.Decode(in)
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("Decode: %v, want ErrInvalid", err)
	}
	want := []string{
		"specversion", "id", "source", "time", "subject", "datacontenttype", "Ext", "note", "data_base64",
		"data.direction", "data.queueId", "data.email.to", "data.email.fromMasked", "data.email.tls",
		"data.email.bcc", "data.notes",
	}
	got := map[string]int{}
	for _, p := range domain.Problems(err) {
		got[p.Field]++
	}
	for _, f := range want {
		if got[f] != 1 {
			t.Errorf("field %q reported %d times, want once; problems: %v", f, got[f], err)
		}
	}
	if n := len(domain.Problems(err)); n != len(want) {
		t.Errorf("%d problems, want %d: %v", n, len(want), err)
	}
	// errors.As reaches the problems through ValidationError.Unwrap.
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != len(want) {
		t.Errorf("errors.As(*ValidationError) = %v", ve)
	}
}

func TestProblems(t *testing.T) {
	fe := &domain.FieldError{Field: "data.kind", Rule: "must be one of"}
	tests := []struct {
		name string
		err  error
		want []*domain.FieldError
	}{
		{"nil", nil, nil},
		{"other error", errors.New("boom"), nil},
		{"field error", fe, []*domain.FieldError{fe}},
		{"wrapped field error", errors.Join(errors.New("x"), fe), []*domain.FieldError{fe}},
		{"validation error", &domain.ValidationError{Problems: []*domain.FieldError{fe, fe}}, []*domain.FieldError{fe, fe}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := domain.Problems(tc.err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Problems = %v, want %v", got, tc.want)
			}
		})
	}
	if fe.Error() != "data.kind: must be one of" {
		t.Errorf("FieldError.Error() = %q", fe.Error())
	}
	if errors.Is(errors.New("x"), domain.ErrInvalid) || errors.Is(fe, domain.ErrInternalType) {
		t.Error("unrelated errors match")
	}
}

func TestDecodeAccepts(t *testing.T) {
	started := domain.InteractionStartedType
	phi := domain.PHIAccessedType
	long := strings.Repeat("Z", 128)
	tests := []struct {
		name  string
		in    []byte
		check func(t *testing.T, e domain.Event)
	}{
		{
			name: "optional fields null",
			in: ev(started, `{"channel":"voice","direction":"outbound","queueId":null,"divisionId":null,"email":null}`,
				set("datacontenttype", `null`), set("dataschema", `null`), set("traceparent", `null`)),
			check: func(t *testing.T, e domain.Event) {
				want := &domain.InteractionStarted{Channel: "voice", Direction: "outbound"}
				if !reflect.DeepEqual(e.Data, want) || e.DataContentType != "" || e.DataSchema != "" || e.Extensions != nil {
					t.Errorf("got %#v / %#v", e, e.Data)
				}
			},
		},
		{
			name: "optional data fields null in every type",
			in:   ev(phi, `{"agentId":"a","action":"handled","recordingId":null,"recipientMasked":null,"remoteIp":null}`),
			check: func(t *testing.T, e domain.Event) {
				if want := (&domain.PHIAccessed{AgentID: "a", Action: "handled"}); !reflect.DeepEqual(e.Data, want) {
					t.Errorf("got %#v", e.Data)
				}
			},
		},
		{
			name: "part2 and legalHold null",
			in:   ev(domain.RecordingStoredType, `{"recordingId":"r","kind":"email","retention":"P90D","legalHold":null}`),
			check: func(t *testing.T, e domain.Event) {
				if want := (&domain.RecordingStored{RecordingID: "r", Kind: "email", Retention: domain.Retention{Days: 90}}); !reflect.DeepEqual(e.Data, want) {
					t.Errorf("got %#v", e.Data)
				}
			},
		},
		{
			name: "disposition null",
			in:   ev(domain.InteractionEndedType, `{"disposition":null}`),
			check: func(t *testing.T, e domain.Event) {
				if !reflect.DeepEqual(e.Data, &domain.InteractionEnded{}) {
					t.Errorf("got %#v", e.Data)
				}
			},
		},
		{
			name: "lower-case t separator",
			in:   valid(domain.ConsentCapturedType, set("time", `"2026-03-08t06:59:59.123Z"`)),
			check: func(t *testing.T, e domain.Event) {
				if !e.Time.Equal(testInstant) {
					t.Errorf("time %v", e.Time)
				}
			},
		},
		{
			name: "email on voice accepted and ignored",
			in:   ev(started, `{"channel":"voice","direction":"inbound","email":{"to":"claims@payer.example","fromMasked":"j***@example.org","tls":"none"}}`),
			check: func(t *testing.T, e domain.Event) {
				if d := e.Data.(*domain.InteractionStarted); d.Email != nil {
					t.Errorf("email kept on a voice channel: %#v", d.Email)
				}
			},
		},
		{
			name: "email on chat accepted and ignored",
			in:   ev(started, `{"channel":"chat","direction":"inbound","email":{"to":"claims@payer.example","fromMasked":"***@example.org","tls":"TLSv1.3"}}`),
			check: func(t *testing.T, e domain.Event) {
				if d := e.Data.(*domain.InteractionStarted); d.Email != nil {
					t.Errorf("email kept on a chat channel: %#v", d.Email)
				}
			},
		},
		{
			name: "email with tls none",
			in:   ev(started, `{"channel":"email","direction":"inbound","email":{"to":"claims@payer.example","fromMasked":"***@example.org","tls":"none"}}`),
			check: func(t *testing.T, e domain.Event) {
				if d := e.Data.(*domain.InteractionStarted); d.Email == nil || d.Email.TLS != "none" {
					t.Errorf("got %#v", d.Email)
				}
			},
		},
		{
			name: "recordingId on handled",
			in:   ev(phi, `{"agentId":"a","action":"handled","recordingId":"rec-9"}`),
			check: func(t *testing.T, e domain.Event) {
				if d := e.Data.(*domain.PHIAccessed); d.RecordingID != "rec-9" {
					t.Errorf("got %#v", d)
				}
			},
		},
		{
			name: "recordingId and masked recipient on attachment_downloaded",
			in:   ev(phi, `{"agentId":"a","action":"attachment_downloaded","recordingId":"att-1","recipientMasked":"q***@example.org","remoteIp":"192.0.2.7"}`),
			check: func(t *testing.T, e domain.Event) {
				want := &domain.PHIAccessed{AgentID: "a", Action: "attachment_downloaded", RecordingID: "att-1", RecipientMasked: "q***@example.org", RemoteIP: "192.0.2.7"}
				if !reflect.DeepEqual(e.Data, want) {
					t.Errorf("got %#v", e.Data)
				}
			},
		},
		{
			name: "masked recipient with zero visible characters",
			in:   ev(phi, `{"agentId":"a","action":"forwarded","recipientMasked":"***@example.org"}`),
			check: func(t *testing.T, e domain.Event) {
				if d := e.Data.(*domain.PHIAccessed); d.RecipientMasked != "***@example.org" {
					t.Errorf("got %#v", d)
				}
			},
		},
		{
			name: "extension number and bool values",
			in:   valid(domain.ConsentCapturedType, set("priority", `5`), set("ratio", `-0.25e-3`), set("replay", `true`), set("sampled", `false`), set("traceparent", `"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`)),
			check: func(t *testing.T, e domain.Event) {
				want := map[string]jsontext.Value{
					"priority": jsontext.Value(`5`), "ratio": jsontext.Value(`-0.25e-3`), "replay": jsontext.Value(`true`), "sampled": jsontext.Value(`false`),
					"traceparent": jsontext.Value(`"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`),
				}
				if !reflect.DeepEqual(e.Extensions, want) {
					t.Errorf("extensions %v", e.Extensions)
				}
			},
		},
		{
			name: "extension name of 20 characters",
			in:   valid(domain.ConsentCapturedType, set("abcdefghijklmnopqrs0", `1`)),
		},
		{
			name: "128-character identifiers",
			in:   ev(domain.AgentAssignedType, `{"agentId":`+q(long)+`,"authorized":true,"queueId":`+q(long)+`}`, set("subject", q(long))),
			check: func(t *testing.T, e domain.Event) {
				if e.Subject != long || e.Data.(*domain.AgentAssigned).AgentID != long {
					t.Errorf("got %#v", e)
				}
			},
		},
		{
			name: "identifier of every allowed character",
			in:   valid(domain.ConsentCapturedType, set("subject", `"AZaz09_-:"`)),
		},
		{
			name: "time exactly 24 h ahead of Now",
			in:   valid(domain.ConsentCapturedType, set("time", `"2026-03-11T12:00:00Z"`)),
			check: func(t *testing.T, e domain.Event) {
				if !e.Time.Equal(now.Add(24 * time.Hour)) {
					t.Errorf("time %v", e.Time)
				}
			},
		},
		{
			name: "time exactly 24 h ahead in another offset",
			in:   valid(domain.ConsentCapturedType, set("time", `"2026-03-11T07:00:00.000000000-05:00"`)),
		},
		{
			name: "time in the year 2000",
			in:   valid(domain.ConsentCapturedType, set("time", `"2000-01-01T00:00:00Z"`)),
		},
		{
			name: "time 1999 locally but 2000 in UTC",
			in:   valid(domain.ConsentCapturedType, set("time", `"1999-12-31T23:30:00-01:00"`)),
			check: func(t *testing.T, e domain.Event) {
				if want := time.Date(2000, 1, 1, 0, 30, 0, 0, time.UTC); !e.Time.Equal(want) {
					t.Errorf("time %v", e.Time)
				}
			},
		},
		{
			name: "time with offset +23:59 and nine fraction digits",
			in:   valid(domain.ConsentCapturedType, set("time", `"2026-03-09T06:59:59.123456789+23:59"`)),
			check: func(t *testing.T, e domain.Event) {
				if want := time.Date(2026, 3, 8, 7, 0, 59, 123456789, time.UTC); !e.Time.Equal(want) || e.Time.Location() != time.UTC {
					t.Errorf("time %v", e.Time)
				}
			},
		},
		{
			name: "time with offset -23:59",
			in:   valid(domain.ConsentCapturedType, set("time", `"2026-03-08T06:59:59-23:59"`)),
		},
		{
			name: "time with offset -00:00",
			in:   valid(domain.ConsentCapturedType, set("time", `"2026-03-08T06:59:59-00:00"`)),
		},
		{
			name: "expiresAt one nanosecond after time",
			in:   ev(domain.TrainingCompletedType, `{"course":"hipaa_annual","expiresAt":"2026-03-08T06:59:59.123000001Z"}`),
		},
		{
			name: "retention forms",
			in:   ev(domain.RecordingStoredType, `{"recordingId":"r","kind":"transcript","retention":"P1Y2M3D"}`),
			check: func(t *testing.T, e domain.Event) {
				if r := e.Data.(*domain.RecordingStored).Retention; r != (domain.Retention{Years: 1, Months: 2, Days: 3}) {
					t.Errorf("retention %v", r)
				}
			},
		},
		{
			name: "retention with a zero part",
			in:   ev(domain.RecordingStoredType, `{"recordingId":"r","kind":"attachment","retention":"P0Y6M"}`),
		},
		{
			name: "recordCount one",
			in:   ev(domain.RecordPurgedType, `{"recordingId":"r","operatorId":"o","recordCount":1,"reason":"error_correction"}`),
		},
		{
			name: "free text without identifiers",
			in:   ev(domain.InteractionEndedType, `{"disposition":"callback 555-1234 re claim 2026/03; SSN on file; MRN 12345; NPI 123456789"}`),
		},
		{
			name: "whitespace around and inside the object",
			in:   []byte(" \n\t" + strings.ReplaceAll(string(valid(domain.ConsentCapturedType)), ",", " ,\n ") + "\r\n "),
		},
		{
			name: "members in any order",
			in: []byte(`{"data":{"method":"written"},"subject":"s-1","time":"2026-03-08T06:59:59Z","type":"consent.captured",` +
				`"source":"nice-cxone/tenant-42","id":"0193f1a2-7c4e-1b3a-8d2e-5f6a7b8c9d0e","specversion":"1.0"}`),
		},
		{
			name: "UUID version 8 variant b",
			in:   valid(domain.ConsentCapturedType, set("id", `"0193f1a2-7c4e-8b3a-bd2e-5f6a7b8c9d0e"`)),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := dec.Decode(tc.in)
			if err != nil {
				t.Fatalf("Decode(%s): %v", tc.in, err)
			}
			if tc.check != nil {
				tc.check(t, e)
			}
			checkRoundTrip(t, e)
		})
	}
}

func TestDecoderZeroValueUsesWallClock(t *testing.T) {
	var d domain.Decoder
	soon := domain.FormatTime(time.Now().Add(23 * time.Hour))
	if _, err := d.Decode(valid(domain.ConsentCapturedType, set("time", q(soon)))); err != nil {
		t.Errorf("time 23 h ahead of the wall clock: %v", err)
	}
	late := domain.FormatTime(time.Now().Add(25 * time.Hour))
	_, err := d.Decode(valid(domain.ConsentCapturedType, set("time", q(late))))
	if p := domain.Problems(err); len(p) != 1 || p[0].Field != "time" {
		t.Errorf("time 25 h ahead of the wall clock: %v", err)
	}
}

func TestParseAcceptsInternalTypes(t *testing.T) {
	for _, typ := range []domain.Type{domain.AlertRaisedType, domain.ReportExecutedType, domain.CheckpointSignedType} {
		t.Run(string(typ), func(t *testing.T) {
			in := valid(typ, set("time", `"2099-01-01T00:00:00Z"`))
			e, err := domain.Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if e.Type != typ || e.Data.EventType() != typ {
				t.Errorf("type %s, data %T", e.Type, e.Data)
			}
			checkRoundTripParse(t, e)
			if _, err := domain.Parse(ev(typ, `{"rule":"x","surprise":1}`)); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("Parse of unknown member: %v", err)
			}
		})
	}
}

func checkRoundTripParse(t *testing.T, e domain.Event) {
	t.Helper()
	b1, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	e2, err := domain.Parse(b1)
	if err != nil {
		t.Fatalf("Parse(%s): %v", b1, err)
	}
	if !reflect.DeepEqual(e, e2) {
		t.Fatalf("round trip\n first %#v\nsecond %#v", e, e2)
	}
	b2, _ := e2.MarshalJSON()
	if !bytes.Equal(b1, b2) {
		t.Fatalf("bytes differ:\n%s\n%s", b1, b2)
	}
}

func TestTypes(t *testing.T) {
	for _, typ := range domain.Types {
		if !typ.Accepted() || typ.Internal() {
			t.Errorf("%s: Accepted %v Internal %v", typ, typ.Accepted(), typ.Internal())
		}
		if got := typ.AgentSubject(); got != strings.HasPrefix(string(typ), "training.") {
			t.Errorf("%s: AgentSubject %v", typ, got)
		}
		e, err := dec.Decode(valid(typ))
		if err != nil {
			t.Errorf("%s: valid event rejected: %v", typ, err)
			continue
		}
		if e.Data.EventType() != typ {
			t.Errorf("%s: data %T names %s", typ, e.Data, e.Data.EventType())
		}
	}
	for _, typ := range []domain.Type{domain.AlertRaisedType, domain.ReportExecutedType, domain.CheckpointSignedType} {
		if typ.Accepted() || !typ.Internal() {
			t.Errorf("%s: Accepted %v Internal %v", typ, typ.Accepted(), typ.Internal())
		}
	}
	for c, want := range map[string]int{"public": 0, "internal": 1, "protected_health_information": 2, "restricted": 3, "PHI": -1} {
		if got := domain.ClassificationRank(c); got != want {
			t.Errorf("ClassificationRank(%q) = %d, want %d", c, got, want)
		}
		if got := domain.IsEPHI(c); got != (want >= 2) {
			t.Errorf("IsEPHI(%q) = %v", c, got)
		}
	}
}
