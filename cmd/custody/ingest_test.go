package main

// End-to-end tests of `custody ingest genesys|cxone` and of POST /v1/ingest/genesys on
// `custody serve`: platform payloads (files in testdata/ingest, a local CXone tenant
// speaking the documented shapes of API v34.0, notifications posted as Genesys
// EventBridge or a relay would) mapped by the adapters and stored in a real embedded
// JetStream log on a temporary directory, with SQLite projections. What reaches the log
// is read back with `custody replay`, parsed with domain.Parse and checked against the
// adapters' documented id schemes, so that the same fact ingested by two paths is one
// event.
//
//	go test -race -short ./cmd/custody -run 'Ingest'

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/genesys"
	"github.com/custody/custody/streams"
)

// The fixtures' Genesys ids (UUIDs, as Genesys issues them). Conversations A and B are
// in the detail job's results page of genesys-export.jsonl, C only in its two
// notifications; D is posted in real time only.
const (
	gcConvA       = "5773eca4-0874-4617-a6e8-000000000001"
	gcConvB       = "5773eca4-0874-4617-a6e8-000000000002"
	gcConvC       = "5773eca4-0874-4617-a6e8-000000000003"
	gcConvD       = "5773eca4-0874-4617-a6e8-000000000004"
	gcConvE       = "5773eca4-0874-4617-a6e8-000000000005"
	gcQueue       = "8f1b2c3d-0000-4000-8000-00000000c1a1"
	gcDivision    = "b1d9e0f1-0000-4000-8000-0000000000d1"
	gcAgentA      = "7a2c0000-0000-4000-8000-00000000a9e1" // authorized on gcQueue by genesys-mapping.json
	gcAgentB      = "7a2c0000-0000-4000-8000-00000000a9e2" // not authorized
	gcAuditRead   = "ad170000-0000-4000-8000-000000000001"
	gcAuditDelete = "ad170000-0000-4000-8000-000000000002"
	gcRecordingA  = "4ec00000-0000-4000-8000-0000000000a1"

	ingestToken  = "ingest-eventbridge-token-0123456789abcdef012345"
	ingestSource = "genesys-cloud/org-test"
)

var (
	gcExport  = filepath.Join("testdata", "ingest", "genesys-export.jsonl")
	gcMapping = filepath.Join("testdata", "ingest", "genesys-mapping.json")
	cxExport  = filepath.Join("testdata", "ingest", "cxone-export.jsonl")

	// ingestPlanted are raw identifiers the fixtures carry in fields the adapters must
	// never copy: none may reach the log or an error message.
	ingestPlanted = []string{"123-45-6789", "+15558675309", "01/02/1960", "MRN 12345678", "Mobile +1 555",
		"M-PLANTED-9911", "FirstPLANTED", "LastPLANTED", "m.planted@example.org", "5555550100"}

	ingestSummaryRe = regexp.MustCompile(`(?m)^stored (\d+), duplicates (\d+), rejected (\d+), failed (\d+)\n\z`)
)

// ingestCounts is the last stderr line of `custody ingest`.
type ingestCounts struct{ stored, duplicates, rejected, failed int }

func ingestSummary(t *testing.T, stderr string) ingestCounts {
	t.Helper()
	m := ingestSummaryRe.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("the last stderr line is not the ingest summary:\n%s", edgeTail(stderr))
	}
	var c ingestCounts
	for i, p := range []*int{&c.stored, &c.duplicates, &c.rejected, &c.failed} {
		*p, _ = strconv.Atoi(m[i+1])
	}
	return c
}

// ingestRun runs custody ingest and checks its exit status and summary.
func ingestRun(t *testing.T, wantCode int, want ingestCounts, args ...string) string {
	t.Helper()
	code, _, errs := runEdge(t, "", append([]string{"ingest"}, args...)...)
	if got := ingestSummary(t, errs); code != wantCode || got != want {
		t.Fatalf("custody ingest %s: exit %d, %+v; want exit %d, %+v\n%s", strings.Join(args, " "), code, got, wantCode, want, edgeTail(errs))
	}
	return errs
}

// ingestReplay returns an interaction's events as replay prints them, each parsed with
// domain.Parse, and the raw output; none may carry a planted identifier.
func ingestReplay(t *testing.T, data, interaction string) ([]domain.Event, string) {
	t.Helper()
	code, out, errs := runEdge(t, "", "replay", "--data", data, "--interaction", interaction, "--format", "jsonl")
	if code == 1 && strings.Contains(errs, "no events for") {
		return nil, ""
	}
	if code != 0 {
		t.Fatalf("replay %s: exit %d: %s", interaction, code, errs)
	}
	var evs []domain.Event
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		e, err := domain.Parse([]byte(line))
		if err != nil {
			t.Fatalf("replay %s: stored event does not pass the contract: %v\n%s", interaction, err, line)
		}
		if e.Subject != interaction {
			t.Fatalf("replay %s printed an event of %s", interaction, e.Subject)
		}
		evs = append(evs, e)
	}
	for _, p := range ingestPlanted {
		if strings.Contains(out, p) {
			t.Fatalf("replay %s: the log holds the raw identifier %q", interaction, p)
		}
	}
	return evs, out
}

// idsByType maps each event's type to its id; an interaction has at most one event of a
// type in these fixtures.
func idsByType(t *testing.T, evs []domain.Event) map[domain.Type]string {
	t.Helper()
	m := map[domain.Type]string{}
	for _, e := range evs {
		if _, dup := m[e.Type]; dup {
			t.Fatalf("two %s events for %s", e.Type, e.Subject)
		}
		m[e.Type] = e.ID
	}
	return m
}

// logSize is the number of events in the log of a data directory no serve holds.
func logSize(t *testing.T, data string) uint64 {
	t.Helper()
	emb, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return streamMsgs(t, js, streams.EventsStream)
}

// gcWant is every event genesys-export.jsonl maps to, by interaction, with the id the
// package documentation derives: "genesys", the type, the subject and the fact's key.
func gcWant() map[string]map[domain.Type]string {
	id := genesys.EventID
	return map[string]map[domain.Type]string{
		gcConvA: {
			domain.InteractionStartedType:    id(domain.InteractionStartedType, gcConvA),
			domain.InteractionClassifiedType: id(domain.InteractionClassifiedType, gcConvA, "protected_health_information", "claims_inquiry", "false"),
			domain.ConsentCapturedType:       id(domain.ConsentCapturedType, gcConvA, "ivr_verbal"),
			domain.AgentAssignedType:         id(domain.AgentAssignedType, gcConvA, gcAgentA, gcQueue, "true"),
			domain.InteractionEndedType:      id(domain.InteractionEndedType, gcConvA),
			domain.PHIAccessedType:           id(domain.PHIAccessedType, gcConvA, gcAuditRead),
			domain.RecordingStoredType:       id(domain.RecordingStoredType, gcConvA, gcRecordingA),
		},
		gcConvB: {
			domain.InteractionStartedType:    id(domain.InteractionStartedType, gcConvB),
			domain.InteractionClassifiedType: id(domain.InteractionClassifiedType, gcConvB, "internal", "claims_inquiry", "false"),
			domain.ConsentDeclinedType:       id(domain.ConsentDeclinedType, gcConvB, "ivr_verbal"),
			domain.AgentAssignedType:         id(domain.AgentAssignedType, gcConvB, gcAgentB, gcQueue, "false"),
			domain.InteractionEndedType:      id(domain.InteractionEndedType, gcConvB),
			domain.RecordPurgedType:          id(domain.RecordPurgedType, gcConvB, gcAuditDelete),
		},
		gcConvC: {
			domain.InteractionStartedType: id(domain.InteractionStartedType, gcConvC),
			domain.InteractionEndedType:   id(domain.InteractionEndedType, gcConvC),
		},
	}
}

func gcWantCount() int {
	n := 0
	for _, m := range gcWant() {
		n += len(m)
	}
	return n
}

// gcDetail is a notification of topic v2.detail.events.conversation.{id}.<suffix> as the
// WebSocket channel delivers it.
func gcDetail(conv, suffix string, at time.Time, body map[string]any) map[string]any {
	b := map[string]any{"eventTime": at.UnixMilli(), "conversationId": conv, "participantId": "p-cust-1"}
	maps.Copy(b, body)
	return map[string]any{
		"topicName": "v2.detail.events.conversation." + conv + "." + suffix,
		"version":   "2",
		"eventBody": b,
		"metadata":  map[string]any{"CorrelationId": "corr-" + suffix},
	}
}

// gcEventBridge wraps a notification as an Amazon EventBridge event of the Genesys
// event source (the topic's ids replaced by {id} in detail-type).
func gcEventBridge(n map[string]any) map[string]any {
	parts := strings.Split(n["topicName"].(string), ".")
	parts[4] = "{id}"
	return map[string]any{
		"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467799", "detail-type": strings.Join(parts, "."),
		"source": "aws.partner/genesys.com/cloud/org-1/custody", "account": "111122223333",
		"time": "2026-05-01T09:01:45Z", "region": "us-east-1", "resources": []any{}, "detail": n,
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var gcDay = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// TestIngestGenesysFile ingests an export mixing a WebSocket notification, an EventBridge
// event, a pretty-printed detail job results page, an audit page and a retention page;
// then the same file again; then a file with one bad document among good ones.
func TestIngestGenesysFile(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"genesys", "--data", data, "--from", gcExport, "--mapping", gcMapping, "--source", ingestSource}
	want := gcWant()
	n := gcWantCount()

	ingestRun(t, 0, ingestCounts{stored: n}, args...)
	replays := map[string]string{}
	for conv, ids := range want {
		evs, out := ingestReplay(t, data, conv)
		if got := idsByType(t, evs); !maps.Equal(got, ids) {
			t.Errorf("%s: ids by type\n got %v\nwant %v", conv, got, ids)
		}
		for _, e := range evs {
			if e.Source != ingestSource {
				t.Errorf("%s: source %q, want %q", e.ID, e.Source, ingestSource)
			}
		}
		replays[conv] = out
	}
	// What the mapping decides, spot-checked: the agent of the queue/role table is
	// authorized, the other is not; the IVR's end dates the classification; the retention
	// page's delete date gives the retention in days; the audit's remote address is kept.
	evsA, _ := ingestReplay(t, data, gcConvA)
	for _, e := range evsA {
		switch d := e.Data.(type) {
		case *domain.AgentAssigned:
			if !d.Authorized || d.AgentID != gcAgentA || d.QueueID != gcQueue {
				t.Errorf("agent.assigned %+v", d)
			}
		case *domain.InteractionClassified:
			if !e.Time.Equal(gcDay.Add(9*time.Hour + 80*time.Second)) {
				t.Errorf("classified at %s, want the IVR's end", e.Time)
			}
		case *domain.RecordingStored:
			if d.Kind != "audio" || d.Retention.String() != "P2190D" {
				t.Errorf("recording.stored %+v", d)
			}
		case *domain.PHIAccessed:
			if d.AgentID != gcAgentA || d.RecordingID != gcRecordingA || d.RemoteIP != "203.0.113.7" {
				t.Errorf("phi.accessed %+v", d)
			}
		}
	}
	size := logSize(t, data)
	if size != uint64(n) {
		t.Fatalf("the log holds %d events, want %d", size, n)
	}

	t.Run("SameFileAgainIsDuplicates", func(t *testing.T) {
		ingestRun(t, 0, ingestCounts{duplicates: n}, args...)
		if got := logSize(t, data); got != size {
			t.Fatalf("the log grew from %d to %d", size, got)
		}
		for conv, before := range replays {
			if _, after := ingestReplay(t, data, conv); after != before {
				t.Errorf("%s changed:\n%s\n---\n%s", conv, before, after)
			}
		}
	})

	t.Run("BadDocumentAmongGoodOnes", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		start := gcDetail(gcConvE, "customer.start", gcDay.Add(13*time.Hour), map[string]any{"mediaType": "VOICE", "direction": "INBOUND"})
		bad := gcDetail(gcConvE, "user.start", gcDay.Add(13*time.Hour+time.Minute), map[string]any{"userId": gcAgentA, "queueId": gcQueue, "memberDob": "01/02/1960"})
		end := gcEventBridge(gcDetail(gcConvE, "customer.end", gcDay.Add(13*time.Hour+5*time.Minute), map[string]any{"disconnectType": "ENDPOINT"}))
		file := writeEdgeFile(t, t.TempDir(), "bad.jsonl", strings.Join([]string{
			string(mustMarshal(t, start)), "", string(mustMarshal(t, bad)), string(mustMarshal(t, end)),
		}, "\n")+"\n")
		errs := ingestRun(t, 1, ingestCounts{stored: 2, rejected: 1}, "genesys", "--data", data, "--from", file, "--mapping", gcMapping)
		wantErr := "line 3: notification user.start of conversation " + gcConvE + ": eventBody.memberDob: is not a field of the Genesys detail event user.start model"
		if !strings.Contains(errs, wantErr) {
			t.Errorf("stderr lacks %q:\n%s", wantErr, errs)
		}
		if strings.Contains(errs, "01/02/1960") {
			t.Error("the rejection echoed the value")
		}
		evs, _ := ingestReplay(t, data, gcConvE)
		got := idsByType(t, evs)
		if len(got) != 2 || got[domain.InteractionStartedType] != genesys.EventID(domain.InteractionStartedType, gcConvE) ||
			got[domain.InteractionEndedType] != genesys.EventID(domain.InteractionEndedType, gcConvE) {
			t.Fatalf("the log holds %v, want the two valid documents' events", got)
		}
	})
}

// TestIngestCXoneFile ingests an export of API answers (custom data before and after
// its contacts, a bulk custom-data page), again, and a file with one bad line, which
// stores nothing since cxone.ReadFile checks a file as a whole.
func TestIngestCXoneFile(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	ingestRun(t, 0, ingestCounts{stored: cxWantCount}, "cxone", "--data", data, "--from", cxExport)
	checkCXoneLog(t, data)
	size := logSize(t, data)

	t.Run("SameFileAgainIsDuplicates", func(t *testing.T) {
		ingestRun(t, 0, ingestCounts{duplicates: cxWantCount}, "cxone", "--data", data, "--from", cxExport)
		if got := logSize(t, data); got != size {
			t.Fatalf("the log grew from %d to %d", size, got)
		}
	})

	t.Run("BadLineStoresNothing", func(t *testing.T) {
		good, err := os.ReadFile(cxExport)
		if err != nil {
			t.Fatal(err)
		}
		// Line 5: a custom data field with the mapping's prefix that the mapping does
		// not name (a misspelled Studio variable) must fail loudly, not lose consent.
		bad := string(good) + `{"contactId":100003,"contactCustomData":[{"name":"hipaa_consent_capture","value":"true"}]}` + "\n"
		file := writeEdgeFile(t, t.TempDir(), "bad.jsonl", bad)
		data := filepath.Join(t.TempDir(), "data")
		errs := ingestRun(t, 1, ingestCounts{rejected: 1}, "cxone", "--data", data, "--from", file)
		wantErr := `line 5: contactCustomData[0].name: "hipaa_consent_capture" has the prefix "hipaa_" but is not a custom data field of the mapping`
		if !strings.Contains(errs, wantErr) {
			t.Errorf("stderr lacks %q:\n%s", wantErr, errs)
		}
		for _, subj := range []string{"cx-100001", "cx-100002", "cx-100003"} {
			if evs, _ := ingestReplay(t, data, subj); len(evs) != 0 {
				t.Errorf("%s: %d events stored from a rejected file", subj, len(evs))
			}
		}
		if got := logSize(t, data); got != 0 {
			t.Errorf("the log holds %d events", got)
		}
	})
}

// cxWant counts the events of cxone-export.jsonl by interaction: 100001 and its
// transfer leg 100004 (one interaction, cx-100001), the e-mail 100002 (no consent data),
// the abandoned call 100003 (no agent, unclassified).
var cxWant = map[string]map[domain.Type]int{
	"cx-100001": {domain.InteractionStartedType: 1, domain.InteractionClassifiedType: 1, domain.ConsentCapturedType: 1,
		domain.AgentAssignedType: 2, domain.InteractionEndedType: 1},
	"cx-100002": {domain.InteractionStartedType: 1, domain.InteractionClassifiedType: 1, domain.AgentAssignedType: 1,
		domain.InteractionEndedType: 1},
	"cx-100003": {domain.InteractionStartedType: 1, domain.InteractionEndedType: 1},
}

const cxWantCount = 12

// checkCXoneLog checks the events of cxone-export.jsonl in the log: their types, the
// documented source and subject, the masked address, and the id of interaction.started
// as the package documentation derives it ("cxone", business unit, contact id, kind,
// time).
func checkCXoneLog(t *testing.T, data string) {
	t.Helper()
	for subj, types := range cxWant {
		evs, _ := ingestReplay(t, data, subj)
		got := map[domain.Type]int{}
		for _, e := range evs {
			got[e.Type]++
			if e.Source != "nice-cxone/bu-4600000" {
				t.Errorf("%s: source %q", e.ID, e.Source)
			}
			if d, ok := e.Data.(*domain.InteractionStarted); ok && subj == "cx-100002" &&
				(d.Email == nil || d.Email.FromMasked != "m***@example.org" || d.Email.TLS != "TLSv1.3") {
				t.Errorf("e-mail start %+v", d.Email)
			}
			if e.Type == domain.InteractionStartedType && subj == "cx-100001" {
				want := domain.DeterministicID("cxone", "4600000", "100001", "started", domain.FormatTime(gcDay.Add(9*time.Hour)))
				if e.ID != want {
					t.Errorf("interaction.started of cx-100001: id %s, want %s", e.ID, want)
				}
			}
		}
		if !maps.Equal(got, types) {
			t.Errorf("%s: types %v, want %v", subj, got, types)
		}
	}
}

// cxFake is a CXone tenant on a local HTTP server: discovery, the access-key token
// grant and the Reporting API v34.0 (completed contacts, per-contact custom data),
// serving the contacts and custom data of an export file.
type cxFake struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	bu        int64
	contacts  []map[string]any
	custom    map[string][]map[string]any // by contact id
	tokens    map[string]bool
	requests  []string     // every request: method and path
	completed []url.Values // the completed-contacts queries
}

const (
	cxClientID     = "custody-app"
	cxClientSecret = "client-secret-0123456789"
	cxAccessKeyID  = "AKID-0123"
	cxAccessSecret = "akey+secret=with&chars/="
	cxTenant       = "11eb0b9d-7d3e-4a2a-9c3d-000000000001"
	cxPath         = "/inContactAPI/services/v34.0/contacts/"
)

func newCXFake(t *testing.T, export string) *cxFake {
	f := &cxFake{t: t, custom: map[string][]map[string]any{}, tokens: map[string]bool{}}
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var line struct {
			BU        json.Number      `json:"businessUnitId"`
			Contacts  []map[string]any `json:"completedContacts"`
			ContactID json.Number      `json:"contactId"`
			One       []map[string]any `json:"contactCustomData"`
			Bulk      []map[string]any `json:"ContactCustomData"`
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("%s: %v", export, err)
		}
		if line.BU != "" {
			f.bu, _ = line.BU.Int64()
		}
		f.contacts = append(f.contacts, line.Contacts...)
		f.custom[line.ContactID.String()] = append(f.custom[line.ContactID.String()], line.One...)
		for _, it := range line.Bulk {
			id := it["contactId"].(json.Number).String()
			f.custom[id] = append(f.custom[id], map[string]any{"name": it["name"], "value": it["value"]})
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		cxJSON(w, 200, map[string]any{"issuer": f.srv.URL, "token_endpoint": f.srv.URL + "/auth/token",
			"grant_types_supported": []string{"password", "refresh_token"}})
	})
	mux.HandleFunc("GET /.well-known/cxone-configuration", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("tenantId") != cxTenant {
			cxJSON(w, 404, map[string]any{"error": "unknown tenant"})
			return
		}
		cxJSON(w, 200, map[string]any{"area": "na1", "api_endpoint": f.srv.URL, "auth_endpoint": f.srv.URL})
	})
	mux.HandleFunc("POST /auth/token", f.token)
	mux.HandleFunc("GET "+cxPath+"completed", f.api(f.completedPage))
	mux.HandleFunc("GET "+cxPath+"{id}/custom-data", f.api(f.customData))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func cxJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *cxFake) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil || !ok || id != cxClientID || secret != cxClientSecret ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		cxJSON(w, 401, map[string]any{"error": "invalid_client"})
		return
	}
	if r.PostForm.Get("grant_type") != "password" || r.PostForm.Get("username") != cxAccessKeyID || r.PostForm.Get("password") != cxAccessSecret {
		cxJSON(w, 400, map[string]any{"error": "invalid_grant"})
		return
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	f.mu.Lock()
	tok := fmt.Sprintf("token-%d", len(f.tokens)+1)
	f.tokens[tok] = true
	f.mu.Unlock()
	cxJSON(w, 200, map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 3600, "refresh_token": "r-" + tok,
		"id_token": enc(map[string]any{"alg": "RS256"}) + "." + enc(map[string]any{"tenantId": cxTenant, "iss": f.srv.URL}) + ".c2ln"})
}

func (f *cxFake) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		valid := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if !valid {
			cxJSON(w, 401, map[string]any{"error": "invalid_token"})
			return
		}
		h(w, r)
	}
}

// completedPage answers GET …/contacts/completed: the contacts that started in
// [startDate, endDate), ordered by contactId, top and skip, only the fields asked for.
func (f *cxFake) completedPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	top, _ := strconv.Atoi(q.Get("top"))
	skip, _ := strconv.Atoi(q.Get("skip"))
	from, err1 := time.Parse(time.RFC3339, q.Get("startDate"))
	to, err2 := time.Parse(time.RFC3339, q.Get("endDate"))
	fields := strings.Split(q.Get("fields"), ",")
	if q.Get("orderBy") != "contactId asc" || top < 1 || err1 != nil || err2 != nil || q.Get("fields") == "" {
		cxJSON(w, 400, map[string]any{"error": "bad query"})
		return
	}
	for _, never := range []string{"firstName", "lastName", "dispositionNotes"} {
		if slices.Contains(fields, never) {
			f.t.Errorf("the adapter asked for %s (minimum necessary)", never)
		}
	}
	f.mu.Lock()
	f.completed = append(f.completed, q)
	var sel []map[string]any
	for _, c := range f.contacts {
		st, _ := time.Parse(time.RFC3339, c["contactStartDate"].(string))
		if !st.Before(from) && st.Before(to) {
			sel = append(sel, c)
		}
	}
	bu := f.bu
	f.mu.Unlock()
	if len(sel) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	sort.Slice(sel, func(i, j int) bool {
		a, _ := sel[i]["contactId"].(json.Number).Int64()
		b, _ := sel[j]["contactId"].(json.Number).Int64()
		return a < b
	})
	var page []map[string]any
	for _, c := range sel[min(skip, len(sel)):min(skip+top, len(sel))] {
		p := map[string]any{}
		for _, k := range fields {
			if v, ok := c[k]; ok {
				p[k] = v
			}
		}
		page = append(page, p)
	}
	links := map[string]any{"self": f.srv.URL + r.URL.RequestURI(), "next": nil, "previous": nil}
	if skip+top < len(sel) {
		nq := r.URL.Query()
		nq.Set("skip", strconv.Itoa(skip+top))
		links["next"] = f.srv.URL + r.URL.Path + "?" + nq.Encode()
	}
	cxJSON(w, 200, map[string]any{"_links": links, "businessUnitId": bu, "lastPollTime": "2026-05-03T12:00:00.000Z",
		"totalRecords": len(sel), "completedContacts": page})
}

func (f *cxFake) customData(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	items := f.custom[r.PathValue("id")]
	f.mu.Unlock()
	if len(items) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	cxJSON(w, 200, map[string]any{"contactCustomData": items})
}

func (f *cxFake) calls() ([]string, []url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests), slices.Clone(f.completed)
}

// TestIngestCXoneAPI runs `custody ingest cxone --api` against a local CXone tenant
// (--issuer accepts http for a loopback host): discovery, the access-key grant, the
// completed contacts and their custom data. A second run resumes from the watermark in
// DATA/ingest/cxone.json and asks CXone for nothing; a third, with a later --until,
// reads only the new window; the export of the same contacts is then all duplicates.
func TestIngestCXoneAPI(t *testing.T) {
	t.Parallel()
	f := newCXFake(t, cxExport)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	api := []string{"cxone", "--api", "--data", data, "--issuer", f.srv.URL,
		"--client-id", cxClientID, "--client-secret-file", writeEdgeFile(t, dir, "client-secret", cxClientSecret+"\n"),
		"--access-key-id", cxAccessKeyID, "--access-key-secret-file", writeEdgeFile(t, dir, "access-key", cxAccessSecret+"\n"),
		"--since", "2026-05-01T00:00:00Z"}

	errs := ingestRun(t, 0, ingestCounts{stored: cxWantCount}, append(api, "--until", "2026-05-02T00:00:00Z")...)
	for _, secret := range []string{cxClientSecret, cxAccessSecret, "token-1"} {
		if strings.Contains(errs, secret) {
			t.Errorf("stderr carries a secret or token: %s", errs)
		}
	}
	checkCXoneLog(t, data)
	reqs, completed := f.calls()
	if !slices.Contains(reqs, "GET /.well-known/cxone-configuration") || !slices.Contains(reqs, "POST /auth/token") {
		t.Errorf("the adapter did not discover the tenant's API and sign in: %v", reqs)
	}
	if len(completed) != 1 || completed[0].Get("startDate") != "2026-05-01T00:00:00.000Z" || completed[0].Get("endDate") != "2026-05-02T00:00:00.000Z" {
		t.Errorf("completed-contacts queries %v, want the one window", completed)
	}
	wm, err := os.ReadFile(filepath.Join(data, "ingest", "cxone.json"))
	if err != nil || !strings.Contains(string(wm), `"window":"2026-05-02T00:00:00Z"`) {
		t.Fatalf("watermark %s, %v", wm, err)
	}
	size := logSize(t, data)

	t.Run("SecondRunResumesAndStoresNothing", func(t *testing.T) {
		before, _ := f.calls()
		ingestRun(t, 0, ingestCounts{}, append(api, "--until", "2026-05-02T00:00:00Z")...)
		if after, _ := f.calls(); len(after) != len(before) {
			t.Errorf("a run at the watermark sent %v", after[len(before):])
		}
		if got := logSize(t, data); got != size {
			t.Fatalf("the log grew from %d to %d", size, got)
		}
	})

	t.Run("LaterUntilReadsOnlyTheNewWindow", func(t *testing.T) {
		f.mu.Lock()
		f.contacts = append(f.contacts, map[string]any{"contactId": json.Number("200001"), "masterContactId": json.Number("200001"),
			"contactStartDate": "2026-05-02T10:00:00.000Z", "mediaTypeName": "Chat", "isOutbound": false, "skillId": json.Number("1234"),
			"agentId": json.Number("77777"), "preQueueSeconds": 5, "inQueueSeconds": 30, "totalDurationSeconds": 600,
			"abandoned": false, "primaryDispositionId": 0})
		f.mu.Unlock()
		_, before := f.calls()
		ingestRun(t, 0, ingestCounts{stored: 3}, append(api, "--until", "2026-05-03T00:00:00Z")...)
		_, after := f.calls()
		for _, q := range after[len(before):] {
			if q.Get("startDate") != "2026-05-02T00:00:00.000Z" {
				t.Errorf("resumed run queried from %s, want the watermark 2026-05-02", q.Get("startDate"))
			}
		}
		if evs, _ := ingestReplay(t, data, "cx-200001"); len(evs) != 3 {
			t.Errorf("cx-200001: %d events, want started, assigned, ended", len(evs))
		}
	})

	t.Run("FileOfTheSameContactsIsDuplicates", func(t *testing.T) {
		ingestRun(t, 0, ingestCounts{duplicates: cxWantCount}, "cxone", "--data", data, "--from", cxExport)
	})
}

// ingestPost posts body to path on serve's API with the given headers.
func ingestPost(t *testing.T, base, path string, hdr map[string]string, body []byte) edgeReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := edgeReply{status: resp.StatusCode, raw: raw}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("POST %s: %d, body is not JSON: %v: %.300s", path, resp.StatusCode, err, raw)
	}
	return r
}

// startIngestServe runs serve with the HTTP API, platform ingest on, an ingest and an
// auditor token.
func startIngestServe(t *testing.T) (*edgeServe, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	tokens := writeEdgeFile(t, dir, "tokens", "ingest eventbridge "+ingestToken+"\nauditor edge-auditor "+edgeToken+"\n")
	key := writeEdgeFile(t, dir, "webhook.key", edgeWebhookKey+"\n")
	s := startEdgeServe(t, data, "--http", "127.0.0.1:0", "--tokens", tokens, "--webhook-key", key,
		"--genesys-mapping", gcMapping, "--genesys-source", ingestSource)
	if s.base == "" {
		t.Fatalf("serve logged no API address: %s", edgeTail(s.stderr.String()))
	}
	return s, data
}

var bearerIngest = map[string]string{"Authorization": "Bearer " + ingestToken}

// TestIngestGenesysWebhook posts Genesys notifications to POST /v1/ingest/genesys: with
// an ingest token (stored), the same body signed (a duplicate), with an auditor token or
// a wrong signature (401), an unknown topic (400 naming the rule), an unknown platform
// (404); and an ingest token may not read reports (403).
func TestIngestGenesysWebhook(t *testing.T) {
	t.Parallel()
	s, data := startIngestServe(t)
	body := mustMarshal(t, gcDetail(gcConvD, "customer.start", gcDay.Add(14*time.Hour), map[string]any{
		"mediaType": "VOICE", "direction": "INBOUND", "divisionId": gcDivision, "ani": "tel:+15558675309"}))
	wantID := genesys.EventID(domain.InteractionStartedType, gcConvD)

	r := ingestPost(t, s.base, "/v1/ingest/genesys", bearerIngest, body)
	if r.status != http.StatusOK || r.Stored != 1 || len(r.Results) != 1 || r.Results[0].ID != wantID || r.Results[0].Status != "stored" || r.Results[0].Seq == 0 {
		t.Fatalf("ingest token: %d %s", r.status, r.raw)
	}
	evs, _ := ingestReplay(t, data, gcConvD)
	if len(evs) != 1 || evs[0].ID != wantID || evs[0].Source != ingestSource || !evs[0].Time.Equal(gcDay.Add(14*time.Hour)) {
		t.Fatalf("replay %s: %+v", gcConvD, evs)
	}
	before := streamMsgs(t, s.js, streams.EventsStream)

	t.Run("SignedSameBodyIsDuplicate", func(t *testing.T) {
		r := ingestPost(t, s.base, "/v1/ingest/genesys", map[string]string{edgeSigHeader: edgeSign(edgeWebhookKey, time.Now(), body)}, body)
		if r.status != http.StatusOK || r.Duplicates != 1 || r.Stored != 0 || r.Results[0].ID != wantID {
			t.Fatalf("signed: %d %s", r.status, r.raw)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			hdr    map[string]string
			status int
			want   string
		}{
			{"AuditorToken", map[string]string{"Authorization": "Bearer " + edgeToken}, http.StatusForbidden, "only a token of role ingest"},
			{"NoCredentials", nil, http.StatusUnauthorized, "bearer token of role ingest"},
			// A signature header is checked even next to a valid ingest token.
			{"WrongSignature", map[string]string{"Authorization": "Bearer " + ingestToken,
				edgeSigHeader: edgeSign("another-key-0123456789abcdef0123456789abcdef", time.Now(), body)}, http.StatusUnauthorized, edgeSigHeader},
		} {
			if r := ingestPost(t, s.base, "/v1/ingest/genesys", c.hdr, body); r.status != c.status || !strings.Contains(r.Error, c.want) || len(r.Results) != 0 {
				t.Errorf("%s: %d %s, want %d naming %q", c.name, r.status, r.raw, c.status, c.want)
			}
		}
		if r := ingestPost(t, s.base, "/v1/ingest/cxone", bearerIngest, body); r.status != http.StatusNotFound || !strings.Contains(r.Error, "genesys") {
			t.Errorf("unknown platform: %d %s, want 404 naming the platforms", r.status, r.raw)
		}
	})

	t.Run("UnknownTopic", func(t *testing.T) {
		unknown := mustMarshal(t, map[string]any{"topicName": "v2.users." + gcAgentA + ".presence", "version": "2",
			"eventBody": map[string]any{"presenceDefinition": map[string]any{"systemPresence": "AVAILABLE"}}})
		r := ingestPost(t, s.base, "/v1/ingest/genesys", bearerIngest, unknown)
		if r.status != http.StatusBadRequest || !strings.Contains(r.Error, "topicName: is not a topic this adapter maps") {
			t.Fatalf("unknown topic: %d %s, want 400 naming the topic rule", r.status, r.raw)
		}
	})

	t.Run("IngestTokenReadsNoReport", func(t *testing.T) {
		status, _, b := edgeGet(t, s.base+"/v1/reports/unauthorized", ingestToken)
		if status != http.StatusForbidden {
			t.Fatalf("GET /v1/reports/unauthorized with an ingest token: %d %s, want 403", status, b)
		}
	})

	if after := streamMsgs(t, s.js, streams.EventsStream); after != before {
		t.Fatalf("duplicates and refused posts grew the log from %d to %d", before, after)
	}
}

// TestIngestGenesysReingestEquivalence feeds conversation A in real time (notifications
// posted to serve, one of them as an EventBridge event) and then through the export's
// detail job results page: every fact of the page that a notification already gave has
// the same id and is a duplicate, and the first copy is kept (the classification at the
// attributes notification's time, not at the IVR's end the detail job approximates).
func TestIngestGenesysReingestEquivalence(t *testing.T) {
	t.Parallel()
	s, data := startIngestServe(t)
	nine := gcDay.Add(9 * time.Hour)
	posts := []map[string]any{
		gcDetail(gcConvA, "customer.start", nine, map[string]any{"mediaType": "VOICE", "direction": "INBOUND", "divisionId": gcDivision}),
		gcDetail(gcConvA, "attributes", nine.Add(75*time.Second), map[string]any{"attributes": map[string]string{
			"hipaa_phi_class": "protected_health_information", "hipaa_interaction_type": "claims_inquiry",
			"hipaa_consent_captured": "true", "hipaa_consent_ts": "2026-05-01T09:01:10.000Z", "member_ssn": "123-45-6789"}}),
		gcEventBridge(gcDetail(gcConvA, "user.start", nine.Add(104*time.Second), map[string]any{"userId": gcAgentA, "queueId": gcQueue, "mediaType": "VOICE"})),
		gcDetail(gcConvA, "acd.start", nine.Add(80*time.Second), map[string]any{"queueId": gcQueue, "mediaType": "VOICE"}), // no fact
		gcDetail(gcConvA, "customer.end", nine.Add(7*time.Minute), map[string]any{"disconnectType": "ENDPOINT", "interactingDurationMs": 420000}),
	}
	want := gcWant()[gcConvA]
	realtime := map[string]bool{}
	for i, n := range posts {
		r := ingestPost(t, s.base, "/v1/ingest/genesys", bearerIngest, mustMarshal(t, n))
		if r.status != http.StatusOK || r.Stored != len(r.Results) {
			t.Fatalf("post %d: %d %s", i, r.status, r.raw)
		}
		for _, res := range r.Results {
			realtime[res.ID] = true
		}
	}
	for _, typ := range []domain.Type{domain.InteractionStartedType, domain.InteractionClassifiedType, domain.ConsentCapturedType,
		domain.AgentAssignedType, domain.InteractionEndedType} {
		if !realtime[want[typ]] {
			t.Errorf("the notifications gave no %s with the documented id %s", typ, want[typ])
		}
	}
	if len(realtime) != 5 {
		t.Fatalf("the notifications gave %d events, want 5", len(realtime))
	}

	// The export while serve holds the data directory: the five facts are duplicates;
	// the audit read and the retention entry of A, and B and C, are new.
	ingestRun(t, 0, ingestCounts{stored: gcWantCount() - 5, duplicates: 5},
		"genesys", "--data", data, "--from", gcExport, "--mapping", gcMapping, "--source", ingestSource)
	evs, _ := ingestReplay(t, data, gcConvA)
	if got := idsByType(t, evs); !maps.Equal(got, want) {
		t.Fatalf("conversation A:\n got %v\nwant %v", got, want)
	}
	for _, e := range evs {
		if e.Type == domain.InteractionClassifiedType && !e.Time.Equal(nine.Add(75*time.Second)) {
			t.Errorf("classified at %s: the notification's copy (09:01:15) came first and must be kept", e.Time)
		}
	}
	if n := streamMsgs(t, s.js, streams.EventsStream); n != uint64(gcWantCount()) {
		t.Fatalf("the log holds %d events, want %d (each fact once)", n, gcWantCount())
	}
}
