package cxone_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/cxone"
)

// Planted values: identifiers and ePHI-shaped strings a real tenant would serve, which
// must appear in no log line and no error message.
const (
	clientID        = "custody-app"
	clientSecretVal = "client-secret-PLANTED-771"
	accessKeyID     = "AKID-PLANTED-3141"
	accessSecretVal = "akey+secret=PLANTED&2718/=" // characters that need form encoding
	tenant          = "11eb0b9d-7d3e-4a2a-9c3d-PLANTED"
	memberPhone     = "5555550100"
	memberEmail     = "m.planted@example.org"
	agentFirst      = "FirstPLANTED"
	agentLast       = "LastPLANTED"
	memberNote      = "member MRN 12345678 called about claim"
	memberIDValue   = "M-PLANTED-9911"
	dobValue        = "01/02/1960"
)

var base = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// contactRec is one completed contact as API v34.0 serves it (every field of the
// schema, field names from the SDK models), with its custom data.
type contactRec struct {
	fields map[string]any
	custom []map[string]any // contactCustomData items: {name, value}
}

func completed(id, master int64, start time.Time, media string, outbound bool, skill, agent int64) map[string]any {
	from, to := memberPhone, "8005550000"
	if media == "Email" {
		from, to = memberEmail, "claims@bluepayer.example"
	}
	if outbound {
		from, to = to, from
	}
	mediaID := map[string]int{"Call": 4, "Email": 1, "Chat": 3, "SMS": 7, "Work Item": 6}[media]
	return map[string]any{
		"contactId": id, "masterContactId": master,
		"contactStartDate": start.Format("2006-01-02T15:04:05.000Z"), "lastUpdateTime": start.Add(10 * time.Minute).Format("2006-01-02T15:04:05.000Z"),
		"mediaTypeId": mediaID, "mediaTypeName": media, "mediaSubTypeId": 0, "mediaSubTypeName": "Default",
		"isOutbound": outbound, "fromAddress": from, "toAddress": to,
		"pointOfContactId": 3189288, "pointOfContactName": "888-888-9999 Customer Line",
		"skillId": skill, "skillName": "HIPAA Pharmacy", "agentId": agent, "firstName": agentFirst, "lastName": agentLast,
		"teamId": 77, "teamName": "Pharmacy", "campaignId": 5, "campaignName": "Inbound",
		"preQueueSeconds": 80.0, "inQueueSeconds": 13.0, "agentSeconds": 277.0, "postQueueSeconds": 0.0,
		"acwSeconds": 187.0, "holdSeconds": 0.0, "holdCount": 0, "conferenceSeconds": 0.0, "releaseSeconds": 0.0,
		"abandoned": false, "abandonSeconds": 0.0, "isShortAbandon": false, "totalDurationSeconds": 370.0,
		"isRefused": false, "refuseReason": nil, "refuseTime": nil, "isTakeover": false, "isLogged": true,
		"endReason": "Contact Hung Up", "primaryDispositionId": 1, "secondaryDispositionId": 0, "dispositionNotes": memberNote,
		"transferIndicatorId": 0, "transferIndicatorName": "None", "serviceLevelFlag": 1, "routingTime": 0, "routingAttribute": 0,
		"highProficiency": 1, "lowProficiency": 20, "divisionNo": 0,
		"isAnalyticsProcessed": false, "analyticsProcessedDate": nil,
		"dateContactWarehoused": start.Add(9 * time.Minute).Format("2006-01-02T15:04:05.000Z"),
		"dateACWWarehoused":     start.Add(12 * time.Minute).Format("2006-01-02T15:04:05.000Z"),
		"tags":                  []any{map[string]any{"contactId": id, "tagId": 3, "tagName": "PHI"}},
	}
}

func cd(kv ...string) []map[string]any {
	var out []map[string]any
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, map[string]any{"name": kv[i], "value": kv[i+1]})
	}
	return out
}

// dataset is two days of contacts: 5 on the first, 4 on the second.
func dataset() []contactRec {
	d1, d2 := base.Add(9*time.Hour), base.Add(33*time.Hour)
	abandoned := completed(100004, 100004, d1.Add(40*time.Minute), "Call", false, 1234, 0)
	abandoned["abandoned"], abandoned["agentSeconds"] = true, 0.0
	return []contactRec{
		{completed(100001, 100001, d1, "Call", false, 1234, 99999), cd(
			"hipaa_consent_captured", "true", "hipaa_consent_ts", "2026-05-01T09:01:02Z", "hipaa_consent_method", "ivr_menu",
			"member_id", memberIDValue, "caller_dob", dobValue)},
		{completed(100002, 100002, d1.Add(10*time.Minute), "Call", false, 1236, 55555), cd(
			"hipaa_phi_class", "restricted", "hipaa_interaction_type", "prescription_refill", "hipaa_part2", "true",
			"hipaa_consent_captured", "false", "hipaa_agent_authorized", "true")},
		{completed(100003, 100003, d1.Add(20*time.Minute), "Email", false, 1237, 66666), cd(
			"hipaa_phi_class", "protected_health_information", "hipaa_email_tls", "TLSv1.3")},
		{abandoned, nil},
		{completed(100005, 100001, d1.Add(6*time.Minute), "Call", false, 1235, 88888), cd("hipaa_consent_captured", "true")},
		{completed(200001, 200001, d2, "Chat", false, 1234, 77777), nil},
		{completed(200002, 200002, d2.Add(5*time.Minute), "SMS", true, 1236, 55555), cd("hipaa_phi_class", "internal")},
		{completed(200003, 200003, d2.Add(7*time.Minute), "Work Item", false, 1234, 77777), nil},
		{completed(200004, 200004, d2.Add(9*time.Minute), "Call", true, 1234, 99999), cd("member_id", memberIDValue)},
	}
}

func testMapping() *cxone.Mapping {
	yes := true
	return &cxone.Mapping{
		Channels: map[string]string{"Work Item": cxone.SkipChannel},
		Skills: map[string]cxone.SkillRule{
			"1234": {InteractionType: "claims_inquiry", DataClassification: "protected_health_information", Authorized: &yes},
			"1235": {InteractionType: "claims_inquiry", DataClassification: "protected_health_information"},
		},
		Agents: map[string]string{"99999": "agent-0001"},
	}
}

// fake is a CXone tenant on a local HTTP server: discovery, the token endpoint and the
// Reporting API v34.0, with fault injection.
type fake struct {
	t   *testing.T
	srv *httptest.Server

	mu           sync.Mutex
	bu           int64
	contacts     []contactRec
	lastPollTime string
	omitTotal    bool
	ignoreFields bool // serve every field, as if the fields parameter were ignored
	expiresIn    int

	tokens    map[string]bool
	refreshes map[string]bool
	n         int
	grants    []string
	tenants   []string

	apiCalls      int
	revokeAt      map[int]bool   // revoke every token before API call n
	unauthorized  bool           // every API call answers 401
	throttle      map[int]string // API call n answers 429 with this Retry-After
	serverError   map[int]int    // API call n answers this status
	completedReqs []url          // completed-contacts requests
	hook          func(call int) // called at each API call, unlocked
	customDelay   time.Duration
	inFlight      int
	maxInFlight   int
}

type url struct {
	skip         int
	start, end   string
	updatedSince string
	fields       string
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, bu: 4600000, contacts: dataset(), lastPollTime: "2026-05-03T12:00:00.000Z", expiresIn: 3600,
		tokens: map[string]bool{}, refreshes: map[string]bool{}, revokeAt: map[int]bool{}, throttle: map[int]string{}, serverError: map[int]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"issuer": f.srv.URL, "token_endpoint": f.srv.URL + "/auth/token",
			"authorization_endpoint": f.srv.URL + "/auth/authorize", "jwks_uri": f.srv.URL + "/auth/jwks",
			"grant_types_supported": []string{"authorization_code", "password", "refresh_token"}})
	})
	mux.HandleFunc("GET /.well-known/cxone-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.tenants = append(f.tenants, r.URL.Query().Get("tenantId"))
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"private": false, "area": "na1", "cluster": "B32", "domain": "niceincontact.com",
			"acdDomain": "nice-incontact.com", "uiEndpoint": "https://na1.nice-incontact.com", "authEndpoint": f.srv.URL,
			"api_endpoint": f.srv.URL, "ui_endpoint": "https://na1.nice-incontact.com", "auth_endpoint": f.srv.URL})
	})
	mux.HandleFunc("POST /auth/token", f.token)
	mux.HandleFunc("GET /inContactAPI/services/v34.0/contacts/completed", f.api(f.completed))
	mux.HandleFunc("GET /inContactAPI/services/v34.0/contacts/{id}/custom-data", f.api(f.customData))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func jwt(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

func (f *fake) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != clientID || secret != clientSecretVal {
		writeJSON(w, 401, map[string]any{"error": "invalid_client"})
		return
	}
	if err := r.ParseForm(); err != nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		writeJSON(w, 400, map[string]any{"error": "invalid_request"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	grant := r.PostForm.Get("grant_type")
	f.grants = append(f.grants, grant)
	switch grant {
	case "password":
		if r.PostForm.Get("username") != accessKeyID || r.PostForm.Get("password") != accessSecretVal {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "bad access key"})
			return
		}
	case "refresh_token":
		if !f.refreshes[r.PostForm.Get("refresh_token")] {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
			return
		}
	default:
		writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	f.n++
	access, refresh := fmt.Sprintf("tok-PLANTED-%d", f.n), fmt.Sprintf("ref-PLANTED-%d", f.n)
	f.tokens[access], f.refreshes[refresh] = true, true
	writeJSON(w, 200, map[string]any{"access_token": access, "token_type": "bearer", "expires_in": f.expiresIn,
		"refresh_token": refresh, "id_token": jwt(map[string]any{"sub": "user:1", "tenantId": tenant, "iss": f.srv.URL}),
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
}

// api wraps an API handler: bearer check, call counting, fault injection.
func (f *fake) api(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.apiCalls++
		call := f.apiCalls
		if f.revokeAt[call] {
			clear(f.tokens)
		}
		valid := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		ra, throttled := f.throttle[call]
		status := f.serverError[call]
		hook := f.hook
		f.mu.Unlock()
		if hook != nil {
			hook(call)
		}
		switch {
		case !valid || f.unauthorized:
			writeJSON(w, 401, map[string]any{"error": "invalid_token"})
		case throttled:
			w.Header().Set("Retry-After", ra)
			writeJSON(w, 429, map[string]any{"error": "Too Many Requests"})
		case status != 0:
			writeJSON(w, status, map[string]any{"error": "server"})
		default:
			h(w, r)
		}
	}
}

func timeOf(m map[string]any, k string) (time.Time, bool) {
	s, _ := m[k].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

func idOf(m map[string]any) int64 {
	switch v := m["contactId"].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

func parseT(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func (f *fake) completed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	top, _ := strconv.Atoi(q.Get("top"))
	skip, _ := strconv.Atoi(q.Get("skip"))
	if q.Get("orderBy") != "contactId asc" || top < 1 {
		writeJSON(w, 400, map[string]any{"error": "bad orderBy or top"})
		return
	}
	f.mu.Lock()
	f.completedReqs = append(f.completedReqs, url{skip: skip, start: q.Get("startDate"), end: q.Get("endDate"), updatedSince: q.Get("updatedSince"), fields: q.Get("fields")})
	var sel []contactRec
	for _, c := range f.contacts {
		// A record broken on purpose (no or a bad contactStartDate) is served in every
		// window, so the adapter sees it.
		st, ok := timeOf(c.fields, "contactStartDate")
		if s := q.Get("startDate"); ok && s != "" && (st.Before(parseT(s)) || !st.Before(parseT(q.Get("endDate")))) {
			continue
		}
		if u, ok := timeOf(c.fields, "lastUpdateTime"); ok && q.Get("updatedSince") != "" && u.Before(parseT(q.Get("updatedSince"))) {
			continue
		}
		sel = append(sel, c)
	}
	bu, lastPoll, omitTotal, ignoreFields := f.bu, f.lastPollTime, f.omitTotal, f.ignoreFields
	f.mu.Unlock()
	sort.SliceStable(sel, func(i, j int) bool { return idOf(sel[i].fields) < idOf(sel[j].fields) })
	if len(sel) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var fields []string
	if s := q.Get("fields"); s != "" && !ignoreFields {
		fields = strings.Split(s, ",")
	}
	var page []map[string]any
	for i := skip; i < len(sel) && i < skip+top; i++ {
		rec := sel[i].fields
		if fields != nil {
			p := map[string]any{}
			for _, k := range fields {
				if v, ok := rec[k]; ok {
					p[k] = v
				}
			}
			rec = p
		}
		page = append(page, rec)
	}
	self := f.srv.URL + r.URL.Path + "?" + r.URL.RawQuery
	links := map[string]any{"self": self, "next": nil, "previous": nil}
	if skip+top < len(sel) {
		nq := r.URL.Query()
		nq.Set("skip", strconv.Itoa(skip+top))
		links["next"] = f.srv.URL + r.URL.Path + "?" + nq.Encode()
	}
	resp := map[string]any{"_links": links, "businessUnitId": bu, "lastPollTime": lastPoll, "totalRecords": len(sel),
		"completedContacts": page}
	if page == nil {
		resp["completedContacts"] = []any{}
	}
	if omitTotal {
		delete(resp, "totalRecords")
	}
	writeJSON(w, 200, resp)
}

func (f *fake) customData(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, 400, map[string]any{"error": "bad id"})
		return
	}
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	delay := f.customDelay
	var items []map[string]any
	found := false
	for _, c := range f.contacts {
		if idOf(c.fields) == id {
			items, found = c.custom, true
		}
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	time.Sleep(delay)
	switch {
	case !found:
		writeJSON(w, 404, map[string]any{"error": "not found"})
	case len(items) == 0:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, 200, map[string]any{"contactCustomData": items})
	}
}

func (f *fake) set(fn func(f *fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fake) requests() []url {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.completedReqs)
}

func (f *fake) grantList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.grants)
}

// collector is an Emit that keeps what it was given and can fail on a chosen call.
type collector struct {
	mu     sync.Mutex
	calls  int
	events []domain.Event
	failAt int // 1-based call that fails; 0 never
	onCall func(n int)
}

func (c *collector) emit(_ context.Context, evs []domain.Event) error {
	c.mu.Lock()
	c.calls++
	n := c.calls
	on := c.onCall
	c.mu.Unlock()
	if on != nil {
		on(n)
	}
	if n == c.failAt {
		return fmt.Errorf("publish: log unavailable")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, evs...)
	return nil
}

func (c *collector) ids() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]bool{}
	for _, e := range c.events {
		m[e.ID] = true
	}
	return m
}

func (c *collector) all() []domain.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// sleeper records the waits instead of waiting.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) list() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// config is a valid Config against the fake: discovery from the issuer, secrets in
// files, a recorded sleep, the test mapping, page size 2.
func (f *fake) config(t *testing.T, c *collector, s *sleeper) cxone.Config {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return cxone.Config{
		Issuer:          f.srv.URL,
		ClientID:        clientID,
		ClientSecret:    cxone.Secret{File: write("client", clientSecretVal)},
		AccessKeyID:     accessKeyID,
		AccessKeySecret: cxone.Secret{Env: "CXONE_ACCESS_KEY_SECRET"},
		LookupEnv: func(k string) (string, bool) {
			if k == "CXONE_ACCESS_KEY_SECRET" {
				return accessSecretVal, true
			}
			return "", false
		},
		PageSize: 2,
		Mapping:  testMapping(),
		Emit:     c.emit,
		Sleep:    s.sleep,
		Now:      func() time.Time { return base.Add(30 * 24 * time.Hour) },
	}
}

func newAdapter(t *testing.T, cfg cxone.Config) *cxone.Adapter {
	t.Helper()
	a, err := cxone.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkContract re-parses every event as the log would read it back.
func checkContract(t *testing.T, evs []domain.Event) {
	t.Helper()
	for _, e := range evs {
		b, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := domain.Parse(b)
		if err != nil {
			t.Fatalf("event %s does not pass the contract: %v", b, err)
		}
		if b2, _ := back.MarshalJSON(); !bytes.Equal(b, b2) {
			t.Fatalf("event not canonical: %s", b)
		}
	}
}

func countTypes(evs []domain.Event) map[domain.Type]int {
	m := map[domain.Type]int{}
	for _, e := range evs {
		m[e.Type]++
	}
	return m
}
