package cxone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/cxone"
)

func line(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// export writes the dataset the way a customer downloads it: completed-contacts pages
// as the API answers them (every field), custom data per contact and as a bulk page.
func export(t *testing.T) string {
	recs := dataset()
	page := func(rs []contactRec) string {
		var cs []map[string]any
		for _, r := range rs {
			cs = append(cs, r.fields)
		}
		return line(t, map[string]any{"_links": map[string]any{"self": "https://api-na1.niceincontact.com/x", "next": nil, "previous": nil},
			"businessUnitId": 4600000, "lastPollTime": "2026-05-03T12:00:00.000Z", "totalRecords": len(cs), "completedContacts": cs})
	}
	var lines []string
	// Custom data first for some contacts (it may come before its contact) ...
	lines = append(lines, line(t, map[string]any{"contactId": 100001, "contactCustomData": recs[0].custom}))
	lines = append(lines, "", page(recs[:5]), page(recs[5:])+"\r")
	// ... and after, as a bulk page, for the others.
	var bulk []map[string]any
	for _, r := range recs[1:] {
		for _, it := range r.custom {
			bulk = append(bulk, map[string]any{"contactId": r.fields["contactId"], "name": it["name"], "value": it["value"]})
		}
	}
	lines = append(lines, line(t, map[string]any{"_links": map[string]any{"self": "https://api-na1.niceincontact.com/y"},
		"businessUnitId": 4600000, "lastPollTime": "2026-05-03T12:00:00.000Z", "totalRecords": len(bulk), "ContactCustomData": bulk}))
	return strings.Join(lines, "\n") + "\n"
}

// A file gives the same events, byte for byte and with the same ids, as the API: a
// backfill from a download and one from the API deduplicate against each other.
func TestReadFileMatchesTheAPI(t *testing.T) {
	f := newFake(t)
	c := &collector{}
	if _, err := newAdapter(t, f.config(t, c, &sleeper{})).Backfill(context.Background(), base, base.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	evs, err := cxone.ReadFile(strings.NewReader(export(t)), cxone.FileOptions{Mapping: testMapping()})
	if err != nil {
		t.Fatal(err)
	}
	checkContract(t, evs)
	canon := func(evs []domain.Event) string {
		var ls []string
		for _, e := range evs {
			b, _ := e.MarshalJSON()
			ls = append(ls, string(b))
		}
		sort.Strings(ls)
		return strings.Join(ls, "\n")
	}
	if got, want := canon(evs), canon(c.all()); got != want {
		t.Errorf("file events differ from API events:\n%s\n---\n%s", got, want)
	}
	// The same file twice: no duplicates.
	twice, err := cxone.ReadFile(strings.NewReader(export(t)+export(t)), cxone.FileOptions{Mapping: testMapping()})
	if err != nil || len(twice) != len(evs) {
		t.Errorf("twice: %d events, %v", len(twice), err)
	}
}

func TestReadFileRejects(t *testing.T) {
	good := line(t, map[string]any{"businessUnitId": 4600000, "completedContacts": []any{dataset()[0].fields}})
	for _, tc := range []struct {
		name string
		file string
		want []string
	}{
		{"not JSON", "{\"completedContacts\": [\n", []string{"line 1: line: must be one JSON object: it is cut short"}},
		{"syntax error", "{\"completedContacts\": ]}\n", []string{"line 1: line: must be one JSON object: syntax error at byte 23"}},
		{"not an object", "[1,2]\n", []string{"line 1: line: must be one JSON object"}},
		{"unknown shape", good + "\n\n{\"contacts\": []}\n", []string{"line 3: line: must be a completed-contacts page (completedContacts), a custom-data page (ContactCustomData) or one contact's custom data"}},
		{"page without businessUnitId", `{"completedContacts": []}`, []string{"line 1: businessUnitId: required"}},
		{"unexpected page field", `{"businessUnitId": 1, "completedContacts": [], "nextPageUri": "x"}`,
			[]string{"line 1: nextPageUri: unexpected: not a field of a completed-contacts response in API v34.0"}},
		{"contact without contactId", `{"businessUnitId": 1, "completedContacts": [{"masterContactId": 5, "contactStartDate": "2026-05-01T00:00:00Z", "mediaTypeName": "Call", "isOutbound": false, "totalDurationSeconds": 3}]}`,
			[]string{"line 1: completedContacts[0].contactId: required"}},
		{"custom data without contactId", `{"ContactCustomData": [{"name": "hipaa_phi_class", "value": "internal"}]}`,
			[]string{"line 1: ContactCustomData[0].contactId: required"}},
		{"custom data contradicting an earlier line", good + "\n" +
			`{"contactId": 100001, "contactCustomData": [{"name": "hipaa_phi_class", "value": "internal"}]}` + "\n" +
			`{"ContactCustomData": [{"contactId": 100001, "name": "hipaa_phi_class", "value": "restricted"}]}`,
			[]string{"line 3: ContactCustomData[0].value: hipaa_phi_class of this contact is given again with a different value"}},
		{"mapping rule broken at a later line", good + "\n" + `{"contactId": 100001, "contactCustomData": [{"name": "hipaa_part2", "value": "1"}]}`,
			[]string{"line 1: completedContacts[0].customData.hipaa_part2: must be one of true, false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := cxone.ReadFile(strings.NewReader(tc.file), cxone.FileOptions{Mapping: testMapping()})
			if !errors.Is(err, cxone.ErrPayload) || evs != nil {
				t.Fatalf("err %v, %d events: want ErrPayload and none", err, len(evs))
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
		})
	}

	t.Run("every problem at once", func(t *testing.T) {
		var b bytes.Buffer
		for range 3 {
			b.WriteString(`{"completedContacts": []}` + "\n")
		}
		_, err := cxone.ReadFile(&b, cxone.FileOptions{})
		for _, w := range []string{"line 1: businessUnitId", "line 2: businessUnitId", "line 3: businessUnitId"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("err %v: want %q", err, w)
			}
		}
	})
}
