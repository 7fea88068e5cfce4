package cxone_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/integration/cxone"
)

// Payloads with missing, mistyped or unexpected fields are rejected before anything is
// emitted, with an error naming the field and the rule, and never the value.
func TestPayloadRejected(t *testing.T) {
	first := func(f *fake) map[string]any { return f.contacts[0].fields }
	for _, tc := range []struct {
		name   string
		mutate func(f *fake)
		want   []string
	}{
		{"missing field", func(f *fake) { delete(first(f), "contactStartDate") },
			[]string{"completedContacts[0].contactStartDate: required"}},
		{"wrong type", func(f *fake) { first(f)["agentId"] = "99999" },
			[]string{"completedContacts[0].agentId: must be a JSON integer"}},
		{"fraction in an id", func(f *fake) { first(f)["contactId"] = 100001.5 },
			[]string{"completedContacts[0].contactId: must be a JSON integer"}},
		{"negative duration", func(f *fake) { first(f)["totalDurationSeconds"] = -5 },
			[]string{"completedContacts[0].totalDurationSeconds: must be a number of seconds from 0 to 2592000"}},
		{"time without offset", func(f *fake) { first(f)["contactStartDate"] = "2026-05-01T09:00:00" },
			[]string{"completedContacts[0].contactStartDate: must have an explicit offset"}},
		{"field of an older API version", func(f *fake) {
			f.ignoreFields = true
			first(f)["contactStart"] = first(f)["contactStartDate"]
			delete(first(f), "contactStartDate")
		}, []string{"completedContacts[0].contactStart: is a field of API versions before v34.0 (v34.0 there: contactStartDate)",
			"completedContacts[0].contactStartDate: required"}},
		{"unexpected field", func(f *fake) { f.ignoreFields = true; first(f)["patientName"] = "Patient PLANTED" },
			[]string{"completedContacts[0].patientName: unexpected: not a field of a completed contact in API v34.0"}},
		{"unknown media type", func(f *fake) { first(f)["mediaTypeName"] = "Fax" },
			[]string{"completedContacts[0].mediaTypeName: must be a media type of the mapping's channels (Call, Chat, Email, SMS, Work Item)"}},
		{"misspelled custom data field", func(f *fake) { f.contacts[0].custom = cd("hipaa_consent_capture", "true") },
			[]string{`completedContacts[0].customData.contactCustomData[0].name: "hipaa_consent_capture" has the prefix "hipaa_" but is not a custom data field of the mapping`}},
		{"custom data value outside the rule", func(f *fake) { f.contacts[0].custom = cd("hipaa_consent_captured", "yes") },
			[]string{"completedContacts[0].customData.hipaa_consent_captured: must be one of true, false"}},
		{"custom data value of the wrong type", func(f *fake) {
			f.contacts[0].custom = []map[string]any{{"name": "hipaa_phi_class", "value": 3}}
		}, []string{"completedContacts[0].customData.contactCustomData[0].value: must be a JSON string"}},
		{"custom data given twice", func(f *fake) {
			f.contacts[0].custom = cd("hipaa_phi_class", "internal", "hipaa_phi_class", "restricted")
		}, []string{"completedContacts[0].customData.contactCustomData[1].value: hipaa_phi_class is given twice for the contact, with different values"}},
		{"consent time without offset", func(f *fake) {
			f.contacts[0].custom = cd("hipaa_consent_captured", "true", "hipaa_consent_ts", "2026-05-01 09:01")
		}, []string{"completedContacts[0].customData.hipaa_consent_ts: must be an RFC 3339 time"}},
		{"e-mail without transport", func(f *fake) { f.contacts[2].custom = cd("hipaa_phi_class", "restricted") },
			[]string{"completedContacts[2].customData.hipaa_email_tls: required for an Email contact: CXone does not report the transport"}},
		{"e-mail without an address", func(f *fake) { f.contacts[2].fields["fromAddress"] = memberPhone },
			[]string{"completedContacts[2].fromAddress: must be an e-mail address for an Email contact"}},
		{"time before 2000", func(f *fake) {
			f.contacts[0].custom = cd("hipaa_consent_captured", "true", "hipaa_consent_ts", "1999-12-31T23:59:00Z")
		}, []string{"completedContacts[0].customData.hipaa_consent_ts: must not be before the year 2000"}},
		{"event the contract rejects", func(f *fake) { f.contacts[2].fields["toAddress"] = "123-45-6789@bluepayer.example" },
			[]string{"completedContacts[2]: the interaction.started event would break the contract: data.email.to: contains a raw identifier shaped like a Social Security number"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.mutate(f)
			c := &collector{}
			cfg := f.config(t, c, &sleeper{})
			cfg.PageSize = 10 // one page: completedContacts[i] is contact 10000(i+1)
			_, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour))
			if !errors.Is(err, cxone.ErrPayload) {
				t.Fatalf("err %v, want ErrPayload", err)
			}
			var pe *cxone.PayloadError
			if !errors.As(err, &pe) || !strings.HasPrefix(pe.Where, "contacts/completed window 2026-05-01T00:00:00.000Z/2026-05-02T00:00:00.000Z skip 0") {
				t.Errorf("err %v: want a PayloadError locating the page", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q\nwant it to contain %q", err, w)
				}
			}
			for _, v := range planted() {
				if strings.Contains(err.Error(), v) {
					t.Errorf("err %q carries %q", err, v)
				}
			}
			if n := len(c.all()); n != 0 {
				t.Errorf("%d events emitted for a rejected page", n)
			}
		})
	}

	t.Run("unknown fields allowed", func(t *testing.T) {
		f := newFake(t)
		f.ignoreFields = true
		f.contacts[0].fields["newFieldOfNextYear"] = 1
		cfg := f.config(t, &collector{}, &sleeper{})
		cfg.AllowUnknownFields = true
		if _, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	})
}

// planted lists every value that must never reach a log line or an error message.
func planted() []string {
	return []string{clientSecretVal, accessSecretVal, accessKeyID, memberPhone, "8005550000", memberEmail, "m.planted",
		agentFirst, agentLast, memberNote, "12345678", memberIDValue, dobValue, "Patient PLANTED", "tok-PLANTED", "ref-PLANTED",
		tenant, "123-45-6789", "100001", "100002", "100003", "200001", "99999", "88888", "77777", "55555", "66666"}
}
