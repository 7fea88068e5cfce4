package domain_test

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// now is the receiving clock of every test decoder.
var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

var dec = domain.Decoder{Now: func() time.Time { return now }}

const (
	testID      = "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e"
	testTime    = "2026-03-08T06:59:59.123Z"
	testSubject = "c0a8e1f2-2b1d-4e5f-8a9b-0c1d2e3f4a5b"
	testAgent   = "agent-007"
)

// testInstant is testTime as an instant.
var testInstant = time.Date(2026, 3, 8, 6, 59, 59, 123000000, time.UTC)

// validData holds a realistic valid data object for each accepted type.
var validData = map[domain.Type]string{
	domain.InteractionStartedType:     `{"channel":"voice","direction":"inbound","queueId":"q-claims","divisionId":"div:east"}`,
	domain.InteractionClassifiedType:  `{"interactionType":"claims_inquiry","dataClassification":"protected_health_information"}`,
	domain.ConsentCapturedType:        `{"method":"ivr_verbal"}`,
	domain.ConsentDeclinedType:        `{"method":"ivr_menu"}`,
	domain.AgentAssignedType:          `{"agentId":"agent-007","authorized":true,"queueId":"q-claims"}`,
	domain.PHIAccessedType:            `{"agentId":"agent-007","action":"recording_accessed","recordingId":"rec-1"}`,
	domain.InteractionTransferredType: `{"fromQueueId":"q-claims","toQueueId":"q-billing"}`,
	domain.InteractionEndedType:       `{"disposition":"resolved"}`,
	domain.RecordingStoredType:        `{"recordingId":"rec-1","kind":"audio","retention":"P6Y"}`,
	domain.RedactionRequestedType:     `{"recordingId":"rec-1"}`,
	domain.RedactionCompletedType:     `{"recordingId":"rec-1","status":"complete"}`,
	domain.RecordPurgedType:           `{"recordingId":"rec-1","operatorId":"ops-1","recordCount":3,"reason":"retention_expired"}`,
	domain.TrainingCompletedType:      `{"course":"hipaa_annual","expiresAt":"2027-03-08T06:59:59.123Z"}`,
	domain.TrainingExpiredType:        `{"course":"hipaa_annual"}`,
	domain.AlertRaisedType:            `{"rule":"unauthorized_access_threshold","agentId":"agent-007","interactionIds":["i-1"],"triggeredAt":"2026-03-08T06:59:59Z"}`,
	domain.ReportExecutedType:         `{"report":"alerts","actor":"auditor-1","via":"cli","parameters":{},"asOf":"2026-03-08T06:59:59Z","logPosition":7,"outputSha256":"00"}`,
	domain.CheckpointSignedType:       `{"origin":"custody/CUSTODY_EVENTS","treeSize":25960,"rootHash":"` + testRoot + `","note":` + q(testNote) + `}`,
}

// testNote is a checkpoint signed with a test key (custody-checkpoint+5fa21dfe+AfFEpu0146nuKf+ilJbt8M+til+oyLkGNzBW3yhvikuN)
// by golang.org/x/mod/sumdb/note; testRoot is its root hash.
const (
	testRoot = "ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs="
	testNote = "custody/CUSTODY_EVENTS\n25960\n" + testRoot + "\n\n" +
		"— custody-checkpoint X6Id/qDecofLVfMD/J5M72GLTCJ1JkrTJhy/UjY85zaIBwr8zZ0sjwPoOZlPsvrnnl/WBBSfpKqOct4o4d0Ok8KD5gg=\n"
)

// member is one top-level member of an event under construction; raw is JSON text.
type member struct{ name, raw string }

// mod changes the members of an event under construction.
type mod func([]member) []member

// set replaces the member name, or appends it when absent.
func set(name, raw string) mod {
	return func(ms []member) []member {
		for i := range ms {
			if ms[i].name == name {
				ms[i].raw = raw
				return ms
			}
		}
		return append(ms, member{name, raw})
	}
}

// del removes the member name.
func del(name string) mod {
	return func(ms []member) []member {
		out := ms[:0:0]
		for _, m := range ms {
			if m.name != name {
				out = append(out, m)
			}
		}
		return out
	}
}

// dup appends the member name even when it is already present.
func dup(name, raw string) mod {
	return func(ms []member) []member { return append(ms, member{name, raw}) }
}

// ev builds the JSON text of an event of type typ with the given data (raw JSON text),
// every other attribute valid, then applies mods.
func ev(typ domain.Type, data string, mods ...mod) []byte {
	subject := testSubject
	if typ.AgentSubject() {
		subject = testAgent
	}
	ms := []member{
		{"specversion", `"1.0"`},
		{"id", q(testID)},
		{"source", `"genesys-cloud/org-3f1c"`},
		{"type", q(string(typ))},
		{"time", q(testTime)},
		{"subject", q(subject)},
		{"data", data},
	}
	for _, m := range mods {
		ms = m(ms)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(q(m.name))
		b.WriteByte(':')
		b.WriteString(m.raw)
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// valid builds a valid event of type typ, then applies mods.
func valid(typ domain.Type, mods ...mod) []byte { return ev(typ, validData[typ], mods...) }

// q quotes s as a JSON string.
func q(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
