package genesys_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/genesys"
)

// Identifiers of the fixtures. The conversation, user and queue ids have the shape of
// Genesys ids (UUIDs).
const (
	clientID     = "0d5c7f37-6b4c-4d8f-9a51-2f0f4c7f1a11"
	clientSecret = "s3cret-never-logged-Zq9"
	queueClaims  = "8f1b2c3d-0000-4000-8000-00000000c1a1"
	queuePharma  = "8f1b2c3d-0000-4000-8000-00000000f4a2"
	divisionID   = "b1d9e0f1-0000-4000-8000-0000000000d1"
	agentA       = "7a2c0000-0000-4000-8000-00000000a9e1"
	agentB       = "7a2c0000-0000-4000-8000-00000000a9e2"
	wrapUpCodeID = "c0de0000-0000-4000-8000-000000000001"
)

// Planted raw identifiers: none of them may ever appear in an event or a log line.
var planted = []string{
	"+15558675309", "555-867-5309", "Mobile +1 555 867 5309", "Member Alpha", "123-45-6789",
	"01/02/1960", "MRN 12345678", "member.alpha@example.org", "Agent Bravo", "member_ssn",
}

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func convID(n int) string { return fmt.Sprintf("5773eca4-0874-4617-a6e8-%012d", n) }

// voiceConversation is an AnalyticsConversation of an async detail job: an inbound call
// through the IVR (which sets the HIPAA attributes) to the claims queue, answered by an
// agent. It carries PHI in the fields the adapter must never copy.
func voiceConversation(n int, start time.Time) map[string]any {
	id := convID(n)
	return map[string]any{
		"conversationId":               id,
		"conversationStart":            ts(start),
		"conversationEnd":              ts(start.Add(7 * time.Minute)),
		"originatingDirection":         "inbound",
		"divisionIds":                  []string{divisionID},
		"mediaStatsMinConversationMos": 4.41,
		"participants": []any{
			map[string]any{
				"participantId":   "p-cust-" + strconv.Itoa(n),
				"participantName": "Mobile +1 555 867 5309",
				"purpose":         "customer",
				"attributes": map[string]string{
					"hipaa_phi_class":        "protected_health_information",
					"hipaa_interaction_type": "claims_inquiry",
					"hipaa_consent_captured": "true",
					"hipaa_consent_ts":       ts(start.Add(70 * time.Second)),
					"member_ssn":             "123-45-6789",
					"member_name":            "Member Alpha",
				},
				"sessions": []any{map[string]any{
					"sessionId": "s-cust-" + strconv.Itoa(n), "mediaType": "voice", "direction": "inbound",
					"ani": "tel:+15558675309", "dnis": "tel:+18005550000", "recording": true, "provider": "Edge",
					"segments": []any{map[string]any{
						"segmentStart": ts(start), "segmentEnd": ts(start.Add(7 * time.Minute)),
						"segmentType": "interact", "disconnectType": "endpoint",
					}},
					"metrics": []any{map[string]any{"name": "nConnected", "value": 1, "emitDate": ts(start)}},
				}},
			},
			map[string]any{
				"participantId": "p-ivr-" + strconv.Itoa(n), "purpose": "ivr", "participantName": "HIPAA Main IVR",
				"sessions": []any{map[string]any{
					"mediaType": "voice", "direction": "inbound",
					"flow": map[string]any{"flowId": "f-1", "flowName": "HIPAA Main IVR", "flowType": "INBOUNDCALL",
						"exitReason": "TRANSFER", "transferType": "ACD"},
					"segments": []any{map[string]any{"segmentStart": ts(start), "segmentEnd": ts(start.Add(80 * time.Second)), "segmentType": "ivr"}},
				}},
			},
			map[string]any{
				"participantId": "p-acd-" + strconv.Itoa(n), "purpose": "acd", "participantName": "Claims",
				"sessions": []any{map[string]any{"mediaType": "voice", "segments": []any{map[string]any{
					"segmentStart": ts(start.Add(80 * time.Second)), "segmentEnd": ts(start.Add(100 * time.Second)),
					"segmentType": "interact", "queueId": queueClaims,
				}}}},
			},
			map[string]any{
				"participantId": "p-agent-" + strconv.Itoa(n), "purpose": "agent", "userId": agentA, "participantName": "Agent Bravo",
				"sessions": []any{map[string]any{"mediaType": "voice", "segments": []any{
					map[string]any{"segmentStart": ts(start.Add(100 * time.Second)), "segmentEnd": ts(start.Add(104 * time.Second)), "segmentType": "alert", "queueId": queueClaims},
					map[string]any{"segmentStart": ts(start.Add(104 * time.Second)), "segmentEnd": ts(start.Add(6 * time.Minute)), "segmentType": "interact", "queueId": queueClaims, "disconnectType": "client"},
					map[string]any{"segmentStart": ts(start.Add(6 * time.Minute)), "segmentEnd": ts(start.Add(7 * time.Minute)), "segmentType": "wrapup",
						"wrapUpCode": wrapUpCodeID, "wrapUpNote": "Member Alpha DOB 01/02/1960 SSN 123-45-6789 MRN 12345678"},
				}}},
			},
		},
	}
}

// emailConversation is an inbound e-mail to the claims routing address.
func emailConversation(n int, start time.Time) map[string]any {
	return map[string]any{
		"conversationId":       convID(n),
		"conversationStart":    ts(start),
		"originatingDirection": "inbound",
		"participants": []any{
			map[string]any{
				"participantId": "p-cust", "purpose": "customer", "participantName": "Member Alpha",
				"sessions": []any{map[string]any{
					"mediaType": "email", "direction": "inbound",
					"addressFrom": "Member Alpha <member.alpha@example.org>", "addressTo": "claims@payer.example",
					"segments": []any{map[string]any{"segmentStart": ts(start), "segmentType": "interact",
						"subject": "My claim for SSN 123-45-6789"}},
				}},
			},
		},
	}
}

// testMapping authorizes agent A on the claims queue.
func testMapping() genesys.Mapping {
	return genesys.Mapping{
		EmailTLS: map[string]string{"claims@payer.example": "TLSv1.2"},
		Authorization: genesys.Authorization{
			QueueRoles: map[string][]string{queueClaims: {"claims-phi"}},
			UserRoles:  map[string][]string{agentA: {"claims-phi"}},
		},
		QueueClassification: map[string]genesys.Classification{
			queuePharma: {InteractionType: "prescription_refill", DataClassification: "protected_health_information"},
		},
	}
}

func newMapper(t testing.TB, allowUnknown bool) *genesys.Mapper {
	t.Helper()
	m, err := genesys.NewMapper(genesys.MapperConfig{
		Source: "genesys-cloud/org-3f1c", Mapping: testMapping(), AllowUnknownFields: allowUnknown,
		Now: func() time.Time { return t0.Add(30 * 24 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkContract re-reads every event through the contract's parser and checks that no
// planted identifier is in it.
func checkContract(t testing.TB, evs []domain.Event) {
	t.Helper()
	for _, e := range evs {
		b, err := e.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal %s: %v", e.ID, err)
		}
		if _, err := domain.Parse(b); err != nil {
			t.Fatalf("event %s does not pass the contract: %v\n%s", e.Type, err, b)
		}
		for _, p := range planted {
			if bytes.Contains(b, []byte(p)) {
				t.Fatalf("event carries planted identifier %q: %s", p, b)
			}
		}
	}
}

func ids(evs []domain.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	slices.Sort(out)
	return out
}

// fake is a local Genesys Cloud: the OAuth token endpoint, async detail jobs, audit
// queries, the retention query and recording metadata, speaking the documented request
// and response shapes.
type fake struct {
	t   testing.TB
	srv *httptest.Server

	mu            sync.Mutex
	conversations []map[string]any
	audits        []map[string]any
	retention     []map[string]any
	metadata      map[string][]map[string]any
	availability  time.Time
	jobs          map[string]job
	tokens        int    // tokens issued
	valid         string // the token currently accepted
	calls         int    // API calls (not token requests)
	pollsPending  int    // polls that answer QUEUED/Running before the job is done
	requests      []string
	inFlight      int
	maxInFlight   int
	// hook may answer a request itself (fault injection); n counts API calls.
	hook func(w http.ResponseWriter, r *http.Request, n int) bool
}

type job struct {
	kind       string // "conversations" or "audits"
	from, to   time.Time
	entityType string
	polls      int
}

func newFake(t testing.TB) *fake {
	f := &fake{t: t, metadata: map[string][]map[string]any{}, jobs: map[string]job{}, availability: t0.Add(48 * time.Hour), pollsPending: 1}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) config(t testing.TB, m *genesys.Mapper) genesys.Config {
	t.Setenv("GENESYS_TEST_SECRET", clientSecret)
	return genesys.Config{
		LoginURL: f.srv.URL, APIURL: f.srv.URL, ClientID: clientID,
		ClientSecret: genesys.Secret{Env: "GENESYS_TEST_SECRET"}, Mapper: m,
		From: t0, To: t0.Add(24 * time.Hour), Window: 24 * time.Hour,
		PageSize: 2, AuditPageSize: 2, RetentionPageSize: 2, PollInterval: time.Millisecond,
		Now:   func() time.Time { return t0.Add(72 * time.Hour) },
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ININ-Correlation-Id", "corr-"+strconv.Itoa(status))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func cursorOf(off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("off:" + strconv.Itoa(off)))
}
func offsetOf(c string) int {
	if c == "" {
		return 0
	}
	b, _ := base64.RawURLEncoding.DecodeString(c)
	n, _ := strconv.Atoi(strings.TrimPrefix(string(b), "off:"))
	return n
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth/token" {
		f.token(w, r)
		return
	}
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	hook := f.hook
	valid := f.valid
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
	if r.Header.Get("Authorization") != "Bearer "+valid || valid == "" {
		writeJSON(w, 401, map[string]any{"status": 401, "code": "bad.credentials", "message": "Invalid login credentials."})
		return
	}
	if hook != nil && hook(w, r, n) {
		return
	}
	time.Sleep(time.Millisecond) // let concurrent requests overlap
	const det = "/api/v2/analytics/conversations/details/jobs"
	p := r.URL.Path
	switch {
	case r.Method == "GET" && p == det+"/availability":
		writeJSON(w, 200, map[string]any{"dataAvailabilityDate": ts(f.availability)})
	case r.Method == "POST" && p == det:
		var q struct {
			Interval string `json:"interval"`
			Order    string `json:"order"`
			OrderBy  string `json:"orderBy"`
		}
		from, to := f.readInterval(r, &q, &q.Interval)
		writeJSON(w, 202, map[string]any{"jobId": f.newJob(job{kind: "conversations", from: from, to: to})})
	case r.Method == "GET" && strings.HasPrefix(p, det+"/") && strings.HasSuffix(p, "/results"):
		j, ok := f.job(strings.TrimSuffix(strings.TrimPrefix(p, det+"/"), "/results"))
		if !ok {
			writeJSON(w, 404, map[string]any{"code": "not.found"})
			return
		}
		var sel []map[string]any
		f.mu.Lock()
		for _, c := range f.conversations {
			st, _ := time.Parse(time.RFC3339, c["conversationStart"].(string))
			if !st.Before(j.from) && st.Before(j.to) {
				sel = append(sel, c)
			}
		}
		f.mu.Unlock()
		items, next := page(r, sel)
		body := map[string]any{"conversations": items, "dataAvailabilityDate": ts(f.availability)}
		if next != "" {
			body["cursor"] = next
		}
		writeJSON(w, 200, body)
	case r.Method == "GET" && strings.HasPrefix(p, det+"/"):
		writeJSON(w, 200, map[string]any{"state": f.poll(strings.TrimPrefix(p, det+"/"), "QUEUED", "FULFILLED"),
			"submissionDate": ts(t0), "expirationDate": ts(t0.Add(48 * time.Hour))})
	case r.Method == "POST" && p == "/api/v2/audits/query":
		var q struct {
			Interval    string `json:"interval"`
			ServiceName string `json:"serviceName"`
			Filters     []struct {
				Property string `json:"property"`
				Value    string `json:"value"`
			} `json:"filters"`
			Sort []struct {
				Name      string `json:"name"`
				SortOrder string `json:"sortOrder"`
			} `json:"sort"`
		}
		from, to := f.readInterval(r, &q, &q.Interval)
		if q.ServiceName == "" || len(q.Filters) != 1 || q.Filters[0].Property != "EntityType" {
			writeJSON(w, 400, map[string]any{"code": "bad.request"})
			return
		}
		id := f.newJob(job{kind: "audits", from: from, to: to, entityType: q.Filters[0].Value})
		writeJSON(w, 200, map[string]any{"id": id, "state": "Queued", "interval": q.Interval, "serviceName": q.ServiceName})
	case r.Method == "GET" && strings.HasPrefix(p, "/api/v2/audits/query/") && strings.HasSuffix(p, "/results"):
		j, ok := f.job(strings.TrimSuffix(strings.TrimPrefix(p, "/api/v2/audits/query/"), "/results"))
		if !ok {
			writeJSON(w, 404, map[string]any{"code": "not.found"})
			return
		}
		var sel []map[string]any
		f.mu.Lock()
		for _, a := range f.audits {
			at, _ := time.Parse(time.RFC3339, a["eventDate"].(string))
			if a["entityType"] == j.entityType && !at.Before(j.from) && at.Before(j.to) {
				sel = append(sel, a)
			}
		}
		f.mu.Unlock()
		items, next := page(r, sel)
		body := map[string]any{"id": "tx", "pageSize": len(items), "entities": items}
		if next != "" {
			body["cursor"] = next
		}
		writeJSON(w, 200, body)
	case r.Method == "GET" && strings.HasPrefix(p, "/api/v2/audits/query/"):
		writeJSON(w, 200, map[string]any{"id": strings.TrimPrefix(p, "/api/v2/audits/query/"),
			"state": f.poll(strings.TrimPrefix(p, "/api/v2/audits/query/"), "Running", "Succeeded")})
	case r.Method == "GET" && p == "/api/v2/recordings/retention/query":
		if r.URL.Query().Get("retentionThresholdDays") == "" {
			writeJSON(w, 400, map[string]any{"code": "bad.request"})
			return
		}
		f.mu.Lock()
		all := slices.Clone(f.retention)
		f.mu.Unlock()
		items, next := page(r, all)
		body := map[string]any{"entities": items, "selfUri": p}
		if next != "" {
			body["nextUri"] = p + "?retentionThresholdDays=0&pageSize=" + r.URL.Query().Get("pageSize") + "&cursor=" + next
		}
		writeJSON(w, 200, body)
	case r.Method == "GET" && strings.HasPrefix(p, "/api/v2/conversations/") && strings.HasSuffix(p, "/recordingmetadata"):
		conv := strings.TrimSuffix(strings.TrimPrefix(p, "/api/v2/conversations/"), "/recordingmetadata")
		f.mu.Lock()
		md, ok := f.metadata[conv]
		f.mu.Unlock()
		if !ok {
			writeJSON(w, 404, map[string]any{"code": "not.found"})
			return
		}
		writeJSON(w, 200, md)
	default:
		writeJSON(w, 404, map[string]any{"code": "not.found"})
	}
}

func page(r *http.Request, all []map[string]any) ([]map[string]any, string) {
	size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
	if size <= 0 {
		size = 25
	}
	off := offsetOf(r.URL.Query().Get("cursor"))
	end := min(off+size, len(all))
	if off > end {
		off = end
	}
	next := ""
	if end < len(all) {
		next = cursorOf(end)
	}
	items := all[off:end]
	if items == nil {
		items = []map[string]any{}
	}
	return items, next
}

func (f *fake) readInterval(r *http.Request, v any, interval *string) (time.Time, time.Time) {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		f.t.Errorf("request body: %v", err)
	}
	a, b, ok := strings.Cut(*interval, "/")
	from, err1 := time.Parse(time.RFC3339, a)
	to, err2 := time.Parse(time.RFC3339, b)
	if !ok || err1 != nil || err2 != nil {
		f.t.Errorf("interval %q is not start/end ISO-8601", *interval)
	}
	return from, to
}

func (f *fake) newJob(j job) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("job-%d", len(f.jobs)+1)
	f.jobs[id] = j
	return id
}

func (f *fake) job(id string) (job, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	return j, ok
}

func (f *fake) poll(id, pending, done string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return "EXPIRED"
	}
	j.polls++
	f.jobs[id] = j
	if j.polls <= f.pollsPending {
		return pending
	}
	return done
}

func (f *fake) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil || !ok || id != clientID || secret != clientSecret ||
		r.PostForm.Get("grant_type") != "client_credentials" ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		writeJSON(w, 401, map[string]any{"error": "invalid_client", "description": "client authentication failed"})
		return
	}
	f.mu.Lock()
	f.tokens++
	f.valid = fmt.Sprintf("token-%d", f.tokens)
	tok := f.valid
	f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 86399})
}

// expireToken makes Genesys forget the current token (HIPAA idle timeout).
func (f *fake) expireToken() {
	f.mu.Lock()
	f.valid = "expired"
	f.mu.Unlock()
}

// recorder is an Emit that keeps what it received; failAt makes the n-th call fail.
type recorder struct {
	mu     sync.Mutex
	events []domain.Event
	calls  int
	failAt int
}

func (r *recorder) emit(ctx context.Context, evs []domain.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failAt > 0 && r.calls == r.failAt {
		return fmt.Errorf("log unavailable")
	}
	r.events = append(r.events, evs...)
	return nil
}

// memStore is an in-memory WatermarkStore.
type memStore struct {
	mu sync.Mutex
	w  genesys.Watermark
}

func (s *memStore) Load(context.Context) (genesys.Watermark, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w, nil
}

func (s *memStore) Save(_ context.Context, w genesys.Watermark) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = w
	return nil
}

// captureLogs returns a JSON slog logger at debug level writing into a buffer.
func captureLogs() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tempFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
