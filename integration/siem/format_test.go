package siem_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/siem"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenEvents cover an alert of each shape (agent, interaction, recording), the
// accesses OCSF maps, a report run, events only some formats map, and a signed
// checkpoint.
func goldenEvents() []struct {
	name string
	e    domain.Event
} {
	at := time.Date(2026, 3, 8, 6, 58, 1, 500_000_000, time.UTC)
	return []struct {
		name string
		e    domain.Event
	}{
		{"alert-unauthorized-threshold", alertEvent("0193f1a2-7c4e-8b3a-9d2e-5f6a7b8c9d0e", "agent-007", "i-1", "i-2", "i-3", "i-4")},
		{"alert-consent-violation", domain.Event{ID: "0193f1a2-7c4e-8b3a-9d2e-5f6a7b8c9d0f", Source: "custody/consent", Type: domain.AlertRaisedType,
			Time: raisedAt, Subject: "i-9", DataContentType: domain.ContentType,
			Data: &domain.AlertRaised{Rule: domain.RuleConsentViolation, InteractionIDs: []string{"i-9"}, TriggeredAt: triggeredAt}}},
		{"alert-purged-under-hold", domain.Event{ID: "0193f1a2-7c4e-8b3a-9d2e-5f6a7b8c9d10", Source: `custody/retention?a=b|c\d`, Type: domain.AlertRaisedType,
			Time: raisedAt, Subject: "rec-7", DataContentType: domain.ContentType,
			Data: &domain.AlertRaised{Rule: domain.RulePurgedUnderHold, InteractionIDs: []string{"i-10"}, RecordingID: "rec-7", TriggeredAt: triggeredAt}}},
		{"phi-accessed", domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d11", Source: "genesys-cloud/org-3f1c", Type: domain.PHIAccessedType,
			Time: at, Subject: "i-1", Data: &domain.PHIAccessed{AgentID: "agent-007", Action: "transcript_viewed", RecordingID: "r-1", RemoteIP: "198.51.100.7"}}},
		{"phi-forwarded", domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d12", Source: "nice-cxone/tenant-42", Type: domain.PHIAccessedType,
			Time: at, Subject: "i-2", Data: &domain.PHIAccessed{AgentID: "agent-008", Action: "forwarded", RecipientMasked: "j***@example.org"}}},
		{"agent-assigned-unauthorized", domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d13", Source: "genesys-cloud/org-3f1c", Type: domain.AgentAssignedType,
			Time: at, Subject: "i-3", Data: &domain.AgentAssigned{AgentID: "agent-007", Authorized: false, QueueID: "q-1"}}},
		{"report-executed", domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d14", Source: "custody/report", Type: domain.ReportExecutedType,
			Time: raisedAt, Subject: "alerts", DataContentType: domain.ContentType,
			Data: &domain.ReportExecuted{Report: "alerts", Actor: "auditor-1", Via: "http", Parameters: map[string]string{"format": "json"},
				AsOf: raisedAt, LogPosition: 1234, OutputSHA256: strings.Repeat("ab", 32)}}},
		{"recording-stored", domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d15", Source: "genesys-cloud/org-3f1c", Type: domain.RecordingStoredType,
			Time: at, Subject: "i-1", Data: &domain.RecordingStored{RecordingID: "r-1", Kind: "transcript", Retention: mustRetention("P6Y"), LegalHold: true}}},
		{"consent-declined", domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d16", Source: "genesys-cloud/org-3f1c", Type: domain.ConsentDeclinedType,
			Time: at, Subject: "i-4", Data: &domain.ConsentDeclined{Method: "ivr_menu"}}},
		{"training-expired", domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d17", Source: "lms/workday", Type: domain.TrainingExpiredType,
			Time: at, Subject: "agent-007", Data: &domain.TrainingExpired{Course: "hipaa_annual"}}},
		{"checkpoint-signed", checkpointEvent(testNote)},
	}
}

func mustRetention(s string) domain.Retention {
	r, ok := domain.ParseRetention(s)
	if !ok {
		panic("bad retention " + s)
	}
	return r
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update and review the diff):\n%s", path, got)
	}
}

func TestGoldenPayloads(t *testing.T) {
	const version = "1.4.0"
	var webhook, hec, ocsf, cef bytes.Buffer
	for _, g := range goldenEvents() {
		// The events are what the log stores: they must pass the contract's checks.
		raw, err := g.e.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if _, err := domain.Parse(raw); err != nil {
			t.Fatalf("%s: fixture is not a valid stored event: %v", g.name, err)
		}

		b, err := siem.WebhookPayload(g.e)
		if err != nil {
			t.Fatalf("%s: webhook: %v", g.name, err)
		}
		fmt.Fprintf(&webhook, "# %s\n%s\n", g.name, b)

		b, err = siem.HECPayload(g.e, siem.HECFields{Host: "custody-1", Index: "compliance"})
		if err != nil {
			t.Fatalf("%s: hec: %v", g.name, err)
		}
		fmt.Fprintf(&hec, "# %s\n%s\n", g.name, b)

		b, err = siem.OCSFPayload(g.e, version)
		switch {
		case errors.Is(err, siem.ErrNotForwarded):
			fmt.Fprintf(&ocsf, "# %s: not forwarded\n", g.name)
		case err != nil:
			t.Fatalf("%s: ocsf: %v", g.name, err)
		default:
			checkOCSF(t, g.name, b)
			fmt.Fprintf(&ocsf, "# %s\n%s\n", g.name, b)
		}

		msg := siem.SyslogMessage(g.e, 13, "custody-1", "custody", version)
		if strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("%s: syslog message spans lines", g.name)
		}
		rec, err := siem.ParseCEF(msg[strings.Index(msg, "CEF:"):])
		if err != nil || !reflect.DeepEqual(rec, siem.CEFRecord(g.e, version)) {
			t.Fatalf("%s: CEF does not read back: %v", g.name, err)
		}
		fmt.Fprintf(&cef, "# %s\n%s\n", g.name, msg)
	}
	golden(t, "webhook.golden", webhook.Bytes())
	golden(t, "hec.golden", hec.Bytes())
	golden(t, "ocsf.golden", ocsf.Bytes())
	golden(t, "cef-syslog.golden", cef.Bytes())
}

// checkOCSF checks the invariants of every OCSF event: type_uid = class_uid*100 +
// activity_id, the base attributes are present, the class's required objects exist.
func checkOCSF(t *testing.T, name string, b []byte) {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	num := func(k string) int { v, _ := ev[k].(float64); return int(v) }
	if num("type_uid") != num("class_uid")*100+num("activity_id") {
		t.Errorf("%s: type_uid %d != class_uid*100+activity_id", name, num("type_uid"))
	}
	for _, k := range []string{"category_uid", "class_uid", "activity_id", "severity_id", "time", "metadata"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("%s: %s missing", name, k)
		}
	}
	md, _ := ev["metadata"].(map[string]any)
	if md["version"] != siem.OCSFVersion || md["uid"] == nil || md["product"] == nil {
		t.Errorf("%s: metadata %v", name, md)
	}
	required := map[int][]string{2004: {"finding_info"}, 6003: {"actor", "api", "src_endpoint"}}[num("class_uid")]
	for _, k := range required {
		if _, ok := ev[k]; !ok {
			t.Errorf("%s: class %d without %s", name, num("class_uid"), k)
		}
	}
}

func FuzzCEFRoundTrip(f *testing.F) {
	for _, s := range [][3]string{
		{"custody", "plain", "value"},
		{`a|b\c`, `x=y\`, "line\nbreak\r"},
		{"", " lead", "trail "},
		{`\|\\`, `k=v k2=v2`, `\=\n`},
		{"|||", "===", `\\\`},
		{"ümlaut", "a  b", "\x00\xff"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, h, v1, v2 string) {
		c := siem.CEF{DeviceVendor: h, DeviceProduct: h + "|", DeviceVersion: `\` + h, SignatureID: h + `\`, Name: v1, Severity: v2,
			Extensions: []siem.CEFField{{Key: "msg", Value: v1}, {Key: "cs1", Value: v2}, {Key: "cs1Label", Value: h}, {Key: "act", Value: v1 + " " + v2 + "="}}}
		s := c.String()
		if strings.ContainsAny(s, "\r\n") {
			t.Fatalf("record spans lines: %q", s)
		}
		got, err := siem.ParseCEF(s)
		if err != nil {
			t.Fatalf("ParseCEF(%q): %v", s, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip of %q:\n got %#v\nwant %#v", s, got, c)
		}
	})
}

func TestParseCEFErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"LEEF:1.0|a|b|c|d|",
		"CEF:0|a|b|c|d|e",
		"CEF:x|a|b|c|d|e|f|",
		"CEF:0|a|b|c|d|e|f|noequals",
		"CEF:0|a|b|c|d|e|f|k=v=w",
		"CEF:0|a|b|c|d|e|f|bad-key=v",
	} {
		if _, err := siem.ParseCEF(s); !errors.Is(err, siem.ErrCEF) {
			t.Errorf("ParseCEF(%q) = %v, want ErrCEF", s, err)
		}
	}
	if err := (siem.CEF{Extensions: []siem.CEFField{{Key: "a b", Value: "x"}}}).Validate(); !errors.Is(err, siem.ErrCEF) {
		t.Errorf("Validate with a bad key = %v", err)
	}
}

// Any text ParseCEF accepts renders to a record that reads back the same.
func FuzzParseCEF(f *testing.F) {
	f.Add(`CEF:0|custody|custody|1|sig|name|5|rt=1 msg=a\=b c cs1=x\\ y`)
	f.Add(`CEF:0|a\|b|c\\|d|e|f|g|`)
	f.Add(`CEF:0|a|b|c|d|e|f|k= k2=v  `)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := siem.ParseCEF(s)
		if err != nil {
			return
		}
		again, err := siem.ParseCEF(c.String())
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("%q parsed to %#v, which renders as %q and reads back as %#v (%v)", s, c, c.String(), again, err)
		}
	})
}

// A checkpoint.signed carries its note to every format whole: the webhook and OCSF as
// a JSON string, HEC inside the stored event, CEF in msg with its line breaks escaped.
func TestCheckpointFormats(t *testing.T) {
	e := checkpointEvent(testNote)

	b, err := siem.WebhookPayload(e)
	if err != nil {
		t.Fatal(err)
	}
	var wh map[string]any
	if err := json.Unmarshal(b, &wh); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"type": "checkpoint.signed", "eventId": e.ID, "subject": "25960", "treeSize": 25960.0,
		"rootHash": testRoot, "origin": "custody/CUSTODY_EVENTS", "note": testNote, "rule": nil, "interactionId": nil,
		"agentId": nil, "reportExecutionId": nil} {
		if got, ok := wh[k]; !ok || got != want {
			t.Errorf("webhook %s = %#v, want %#v", k, got, want)
		}
	}
	if ids, _ := wh["interactionIds"].([]any); ids == nil || len(ids) != 0 {
		t.Errorf("webhook interactionIds = %#v, want []", wh["interactionIds"])
	}
	// Every payload has the checkpoint keys, null when they do not apply.
	b, err = siem.WebhookPayload(alertEvent("0193f1a2-7c4e-8b3a-9d2e-5f6a7b8c9d0e", "agent-007", "i-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"treeSize":null,"rootHash":null,"origin":null,"note":null,"data":`)) {
		t.Errorf("alert payload without null checkpoint keys: %s", b)
	}

	b, err = siem.HECPayload(e, siem.HECFields{})
	if err != nil {
		t.Fatal(err)
	}
	var hec struct {
		SourceType string          `json:"sourcetype"`
		Source     string          `json:"source"`
		Event      json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(b, &hec); err != nil {
		t.Fatal(err)
	}
	if back, err := domain.Parse(hec.Event); hec.SourceType != "custody:checkpoint" || hec.Source != domain.CheckpointSource ||
		err != nil || !reflect.DeepEqual(back, e) {
		t.Errorf("hec sourcetype %q, source %q, event %s (%v)", hec.SourceType, hec.Source, hec.Event, err)
	}
	if b, _ := siem.HECPayload(e, siem.HECFields{SourceType: "custody:alert"}); !bytes.Contains(b, []byte(`"sourcetype":"custody:alert"`)) {
		t.Errorf("a configured sourcetype is not used: %s", b)
	}

	b, err = siem.OCSFPayload(e, "1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	checkOCSF(t, "checkpoint", b)
	var oc struct {
		ClassUID   int `json:"class_uid"`
		ActivityID int `json:"activity_id"`
		TypeUID    int `json:"type_uid"`
		SeverityID int `json:"severity_id"`
		Metadata   struct {
			UID     string `json:"uid"`
			LogName string `json:"log_name"`
		} `json:"metadata"`
		API struct {
			Operation string `json:"operation"`
		} `json:"api"`
		Unmapped map[string]any `json:"unmapped"`
	}
	if err := json.Unmarshal(b, &oc); err != nil {
		t.Fatal(err)
	}
	if oc.ClassUID != 6003 || oc.ActivityID != 1 || oc.TypeUID != 600301 || oc.SeverityID != 1 || oc.Metadata.UID != e.ID ||
		oc.Metadata.LogName != siem.IntegrityStream || oc.API.Operation != "checkpoint.sign" ||
		oc.Unmapped["note"] != testNote || oc.Unmapped["rootHash"] != testRoot || oc.Unmapped["treeSize"] != 25960.0 {
		t.Errorf("ocsf %s", b)
	}

	msg := siem.SyslogMessage(e, 13, "custody-1", "custody", "1.4.0")
	if strings.ContainsAny(msg, "\r\n") || !strings.HasPrefix(msg, "<110>1 ") {
		t.Fatalf("syslog message %q", msg)
	}
	if !strings.Contains(msg, `msg=custody/CUSTODY_EVENTS\n25960\n`+strings.ReplaceAll(testRoot, "=", `\=`)+`\n\n— custody-checkpoint `) {
		t.Errorf("note not escaped as CEF: %q", msg)
	}
	c, err := siem.ParseCEF(msg[strings.Index(msg, "CEF:"):])
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{}
	for _, f := range c.Extensions {
		ext[f.Key] = f.Value
	}
	if c.SignatureID != "checkpoint.signed" || c.Name != "Log checkpoint signed" || c.Severity != "1" ||
		ext["msg"] != testNote || ext["cn2"] != "25960" || ext["cn2Label"] != "treeSize" || ext["flexString1"] != testRoot ||
		ext["flexString1Label"] != "rootHash" || ext["flexString2"] != "custody/CUSTODY_EVENTS" || ext["externalId"] != e.ID {
		t.Errorf("CEF read back: %+v", c)
	}
}
