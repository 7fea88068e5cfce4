package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	main "github.com/custody/custody/cmd/custody"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
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

const (
	httpAuditorToken = "e2e-auditor-0123456789abcdef0123456789abcdef"
	httpOfficerToken = "e2e-officer-0123456789abcdef0123456789abcdef"
	httpAsOf         = "2026-03-06T12:00:00Z"
)

var apiAddrLine = regexp.MustCompile(`msg="HTTP API" addr="?http://([^/\s"]+)/v1/reports/\{name\}`)

// reportFields are the REPORTS.md fields of every report, common fields included.
var reportFields = map[string][]string{
	"unauthorized": {"threshold", "windowHours", "agents"},
	"alerts":       {"alerts"},
	"consent":      {"required", "captured", "rate", "violations"},
	"retention":    {"recordings", "purges"},
	"exposure":     {"agents"},
	"access-audit": {"rows", "total"},
}

// rowFields are the REPORTS.md fields of each report's list rows.
var rowFields = map[string]struct {
	list   string
	fields []string
}{
	"unauthorized": {"agents", []string{"agentId", "count", "interactions"}},
	"alerts":       {"alerts", []string{"id", "rule", "interactionIds", "triggeredAt", "raisedAt", "status"}},
	"consent":      {"violations", []string{"interactionId", "reasons"}},
	"retention":    {"recordings", []string{"recordingId", "interactionId", "kind", "storedAt", "dueAt", "legalHold", "status", "redaction"}},
	"exposure":     {"agents", []string{"agentId", "ephiInteractions", "unauthorizedInteractions", "pendingRedactionViews", "byInteractionType", "byChannel"}},
	"access-audit": {"rows", []string{"time", "agentId", "interactionId", "action", "channel", "classification", "authorized", "flagged"}},
}

// e2e is a running `custody serve` with the HTTP API.
type e2e struct {
	t      *testing.T
	data   string
	base   string // http://host:port
	js     jetstream.JetStream
	client *http.Client
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *e2e) get(token, path string) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// reportsCount is the number of report.executed events in CUSTODY_REPORTS.
func (e *e2e) reportsCount() uint64 {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), "CUSTODY_REPORTS")
	if err != nil {
		e.t.Fatalf("CUSTODY_REPORTS: %v", err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

type executed struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Source string `json:"source"`
	Data   struct {
		Report       string            `json:"report"`
		Actor        string            `json:"actor"`
		Role         string            `json:"role"`
		Via          string            `json:"via"`
		Parameters   map[string]string `json:"parameters"`
		AsOf         string            `json:"asOf"`
		LogPosition  uint64            `json:"logPosition"`
		OutputSHA256 string            `json:"outputSha256"`
	} `json:"data"`
}

func (e *e2e) lastExecuted() executed {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), "CUSTODY_REPORTS")
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "custody.report.executed")
	if err != nil {
		e.t.Fatal(err)
	}
	var x executed
	if err := json.Unmarshal(m.Data, &x); err != nil {
		e.t.Fatalf("report.executed: %v: %s", err, m.Data)
	}
	return x
}

// report requests one report successfully and checks that exactly one report.executed
// event records it, with the actor, role, parameters, log position and the SHA-256 of
// the exact bytes returned.
func (e *e2e) report(token, name string, q url.Values) []byte {
	e.t.Helper()
	actor, role := "auditor-1", "auditor"
	if token == httpOfficerToken {
		actor, role = "officer-1", "compliance_officer"
	}
	before := e.reportsCount()
	path := "/v1/reports/" + name
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	r := e.get(token, path)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("GET %s: Cache-Control %q", path, cc)
	}
	if after := e.reportsCount(); after != before+1 {
		e.t.Fatalf("GET %s: CUSTODY_REPORTS grew by %d, want 1", path, int64(after)-int64(before))
	}
	x := e.lastExecuted()
	sum := sha256.Sum256(r.body)
	// The recorded parameters include the output format, which the hash depends on.
	wantParams := map[string]string{"format": "json"}
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		wantParams["format"] = "csv"
	}
	for k, v := range q {
		if k != "format" {
			wantParams[k] = v[0]
		}
	}
	d := x.Data
	if x.Type != "report.executed" || d.Report != name || d.Actor != actor || d.Role != role || d.Via != "http" {
		e.t.Errorf("GET %s: report.executed type %q report %q actor %q role %q via %q", path, x.Type, d.Report, d.Actor, d.Role, d.Via)
	}
	if !reflect.DeepEqual(d.Parameters, wantParams) && !(len(d.Parameters) == 0 && len(wantParams) == 0) {
		e.t.Errorf("GET %s: report.executed parameters %v, want %v", path, d.Parameters, wantParams)
	}
	if d.OutputSHA256 != hex.EncodeToString(sum[:]) {
		e.t.Errorf("GET %s: report.executed outputSha256 %s, want the SHA-256 of the body %x", path, d.OutputSHA256, sum)
	}
	if strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		var h struct {
			LogPosition uint64 `json:"logPosition"`
			ExecutionID string `json:"executionId"`
		}
		if err := json.Unmarshal(r.body, &h); err != nil {
			e.t.Fatalf("GET %s: %v", path, err)
		}
		if d.LogPosition != h.LogPosition || x.ID != h.ExecutionID {
			e.t.Errorf("GET %s: report.executed logPosition %d id %s; body logPosition %d executionId %s", path, d.LogPosition, x.ID, h.LogPosition, h.ExecutionID)
		}
	}
	return r.body
}

// refused requests a report that must fail with status, an error naming want, and no new
// report.executed event.
func (e *e2e) refused(token, path string, status int, want string) {
	e.t.Helper()
	before := e.reportsCount()
	r := e.get(token, path)
	if r.status != status {
		e.t.Errorf("GET %s: %d, want %d: %s", path, r.status, status, r.body)
		return
	}
	var msg map[string]string
	if err := json.Unmarshal(r.body, &msg); err != nil || len(msg) != 1 || !strings.Contains(msg["error"], want) {
		e.t.Errorf("GET %s: body %s, want only an error naming %q", path, r.body, want)
	}
	if after := e.reportsCount(); after != before {
		e.t.Errorf("GET %s: a refused request added %d report.executed events", path, after-before)
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("report is not a JSON object: %v\n%s", err, b)
	}
	return m
}

func TestHTTPAPIEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# e2e\nauditor auditor-1 "+httpAuditorToken+"\ncompliance_officer officer-1 "+httpOfficerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var serveErr syncBuffer
	go func() {
		done <- main.Run(ctx, []string{"serve", "--data", data, "--http", "127.0.0.1:0", "--tokens", tokens}, bytes.NewReader(nil), io.Discard, &serveErr)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case c := <-done:
			if c != 0 {
				t.Errorf("serve exited %d: %s", c, tail(serveErr.String()))
			}
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not stop on cancellation")
		}
	}
	defer stop()

	// The API's address, from serve's log.
	var base string
	for deadline := time.Now().Add(15 * time.Second); ; {
		if m := apiAddrLine.FindStringSubmatch(serveErr.String()); m != nil {
			base = "http://" + m[1]
			break
		}
		select {
		case c := <-done:
			stopped = true
			t.Fatalf("serve exited %d before the API started: %s", c, serveErr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log the API address: %s", serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	u, err := os.ReadFile(filepath.Join(data, "nats.url"))
	if err != nil {
		t.Fatalf("serve runs the API but wrote no nats.url: %v", err)
	}
	nc, err := nats.Connect(strings.TrimSpace(string(u)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, data: data, base: base, js: js, client: &http.Client{Timeout: 30 * time.Second}}

	// healthz needs no token.
	if r := e.get("", "/healthz"); r.status != http.StatusOK || string(r.body) != "ok\n" {
		t.Fatalf("healthz: %d %q", r.status, r.body)
	}

	// Traffic, through the running serve.
	in := simulate(t, "--seed", "1", "--interactions", "300")
	code, _, errs := run(t, in, "publish", "--data", data, "-")
	published, _, rejected := lastLine(t, errs)
	if code != 0 || rejected != 0 || published == 0 {
		t.Fatalf("publish: exit %d\n%s", code, tail(errs))
	}

	// Wait until the live views have every event.
	for deadline := time.Now().Add(30 * time.Second); ; {
		r := e.get(httpAuditorToken, "/v1/reports/unauthorized")
		if r.status != http.StatusOK {
			t.Fatalf("unauthorized: %d %s", r.status, r.body)
		}
		var h struct{ LogPosition int }
		json.Unmarshal(r.body, &h)
		if h.LogPosition == published {
			break
		}
		if h.LogPosition > published {
			t.Fatalf("logPosition %d beyond the %d published events", h.LogPosition, published)
		}
		if time.Now().After(deadline) {
			t.Fatalf("logPosition %d, want %d after 30 s", h.LogPosition, published)
		}
		time.Sleep(250 * time.Millisecond)
	}

	asOf := url.Values{"as-of": {httpAsOf}}

	t.Run("JSONFieldsOfEveryReport", func(t *testing.T) {
		e.t = t
		for i, name := range []string{"access-audit", "alerts", "consent", "exposure", "retention", "unauthorized"} {
			tok := httpAuditorToken
			if i%2 == 1 {
				tok = httpOfficerToken
			}
			body := e.report(tok, name, asOf)
			m := decode(t, body)
			for _, f := range append([]string{"report", "asOf", "logPosition", "executionId"}, reportFields[name]...) {
				if _, ok := m[f]; !ok {
					t.Errorf("%s: no field %q", name, f)
				}
			}
			if m["report"] != name || m["asOf"] != httpAsOf || m["logPosition"] != float64(published) {
				t.Errorf("%s: report %v asOf %v logPosition %v", name, m["report"], m["asOf"], m["logPosition"])
			}
			if id, _ := m["executionId"].(string); id == "" {
				t.Errorf("%s: executionId %v", name, m["executionId"])
			}
			rf := rowFields[name]
			rows, ok := m[rf.list].([]any)
			if !ok {
				t.Errorf("%s: %s is not a list", name, rf.list)
				continue
			}
			if len(rows) == 0 && name != "alerts" {
				t.Errorf("%s: %s is empty on 300 simulated interactions", name, rf.list)
			}
			for _, row := range rows {
				obj := row.(map[string]any)
				for _, f := range rf.fields {
					if _, ok := obj[f]; !ok {
						t.Errorf("%s: %s row lacks %q: %v", name, rf.list, f, obj)
					}
				}
			}
		}
	})

	t.Run("CLIEqualsHTTP", func(t *testing.T) {
		e.t = t
		for _, name := range []string{"access-audit", "alerts", "consent", "exposure", "retention", "unauthorized"} {
			var cli, h map[string]any
			// The alerts list is live: the serve's clock may raise an overdue alert
			// between the two requests. Ask again until two consecutive answers agree.
			for attempt := 0; attempt < 5; attempt++ {
				code, out, errs := run(t, nil, "report", name, "--data", data, "--as-of", httpAsOf, "--format", "json")
				if code != 0 {
					t.Fatalf("custody report %s while serve runs: exit %d\n%s", name, code, tail(errs))
				}
				cli = decode(t, []byte(out))
				q := url.Values{"as-of": {httpAsOf}}
				if name == "access-audit" {
					q.Set("limit", "10000") // the CLI does not page
				}
				h = decode(t, e.report(httpAuditorToken, name, q))
				if cli["executionId"] == h["executionId"] {
					t.Errorf("%s: CLI and HTTP share executionId %v", name, h["executionId"])
				}
				delete(cli, "executionId")
				delete(h, "executionId")
				// The parameters differ where HTTP pages (limit); the proof must not.
				for _, m := range []map[string]any{cli, h} {
					if in, ok := m["integrity"].(map[string]any); ok {
						delete(in, "parameters")
					}
				}
				if name != "alerts" || reflect.DeepEqual(cli, h) {
					break
				}
				time.Sleep(time.Second)
			}
			if !reflect.DeepEqual(cli, h) {
				cb, _ := json.Marshal(cli)
				hb, _ := json.Marshal(h)
				t.Errorf("%s: CLI and HTTP differ\nCLI:  %.600s\nHTTP: %.600s", name, cb, hb)
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		e.t = t
		check := func(body []byte, header []string) [][]string {
			t.Helper()
			recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
			if err != nil || len(recs) < 2 {
				t.Fatalf("CSV: %v, %d records\n%.400s", err, len(recs), body)
			}
			for _, f := range header {
				if !slices.Contains(recs[0], f) {
					t.Errorf("CSV header %v lacks %q", recs[0], f)
				}
			}
			return recs
		}
		q := url.Values{"as-of": {httpAsOf}, "format": {"csv"}, "limit": {"7"}}
		r := e.get(httpAuditorToken, "/v1/reports/access-audit?"+q.Encode())
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("access-audit csv: %d %q", r.status, r.header.Get("Content-Type"))
		}
		if recs := check(r.body, rowFields["access-audit"].fields); len(recs) != 8 {
			t.Errorf("access-audit csv limit=7: %d rows", len(recs)-1)
		}
		// The report.executed of a CSV run hashes the CSV bytes.
		body := e.report(httpOfficerToken, "unauthorized", url.Values{"as-of": {httpAsOf}, "format": {"csv"}})
		check(body, rowFields["unauthorized"].fields)

		// Accept: text/csv.
		req, _ := http.NewRequest(http.MethodGet, e.base+"/v1/reports/consent?as-of="+httpAsOf, nil)
		req.Header.Set("Authorization", "Bearer "+httpAuditorToken)
		req.Header.Set("Accept", "text/csv")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("Accept: text/csv: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		check(b, rowFields["consent"].fields)
	})

	t.Run("AccessAuditPaging", func(t *testing.T) {
		e.t = t
		type page struct {
			Total  int               `json:"total"`
			Offset int               `json:"offset"`
			Rows   []json.RawMessage `json:"rows"`
		}
		get := func(q url.Values) page {
			t.Helper()
			q.Set("as-of", httpAsOf)
			var p page
			if err := json.Unmarshal(e.report(httpAuditorToken, "access-audit", q), &p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		all := get(url.Values{"limit": {"10000"}})
		if all.Total != len(all.Rows) || all.Total < 10 {
			t.Fatalf("full page: total %d, %d rows", all.Total, len(all.Rows))
		}
		def := get(url.Values{})
		if def.Total != all.Total || len(def.Rows) != min(all.Total, 1000) {
			t.Errorf("default page: total %d, %d rows; want %d, %d", def.Total, len(def.Rows), all.Total, min(all.Total, 1000))
		}
		p1 := get(url.Values{"limit": {"5"}, "offset": {"0"}})
		p2 := get(url.Values{"limit": {"5"}, "offset": {"5"}})
		for i, p := range []page{p1, p2} {
			if p.Total != all.Total || p.Offset != 5*i || len(p.Rows) != 5 {
				t.Fatalf("page %d: total %d offset %d rows %d; want total %d", i, p.Total, p.Offset, len(p.Rows), all.Total)
			}
			for j, row := range p.Rows {
				if !bytes.Equal(compact(t, row), compact(t, all.Rows[5*i+j])) {
					t.Errorf("page %d row %d: %s, want %s", i, j, row, all.Rows[5*i+j])
				}
			}
		}
		last := get(url.Values{"limit": {"5"}, "offset": {strconv.Itoa(all.Total - 2)}})
		if last.Total != all.Total || len(last.Rows) != 2 {
			t.Errorf("last page: total %d, %d rows, want 2", last.Total, len(last.Rows))
		}
		beyond := get(url.Values{"offset": {strconv.Itoa(all.Total + 10)}})
		if beyond.Total != all.Total || len(beyond.Rows) != 0 {
			t.Errorf("page beyond the end: total %d, %d rows", beyond.Total, len(beyond.Rows))
		}
		for _, c := range []struct{ q, want string }{
			{"limit=0", "limit"},
			{"limit=10001", "limit"},
			{"limit=-1", "limit"},
			{"limit=five", "limit"},
			{"offset=-1", "offset"},
			{"offset=x", "offset"},
		} {
			e.refused(httpAuditorToken, "/v1/reports/access-audit?as-of="+httpAsOf+"&"+c.q, http.StatusBadRequest, c.want)
		}
		// Paging applies to access-audit only.
		e.refused(httpAuditorToken, "/v1/reports/consent?limit=5", http.StatusBadRequest, "access-audit")
	})

	t.Run("Refusals", func(t *testing.T) {
		e.t = t
		for _, c := range []struct {
			token, path string
			status      int
			want        string
		}{
			{httpAuditorToken, "/v1/reports/unauthorized?foo=1", 400, `"foo"`},
			{httpAuditorToken, "/v1/reports/access-audit?agnet=a1", 400, `"agnet"`},
			{httpAuditorToken, "/v1/reports/unauthorized?as-of=yesterday", 400, "as-of"},
			{httpAuditorToken, "/v1/reports/unauthorized?as-of=2026-03-06T12:00:00", 400, "as-of"},
			{httpAuditorToken, "/v1/reports/unauthorized?as-of-seq=-3", 400, "as-of-seq"},
			{httpAuditorToken, "/v1/reports/unauthorized?tz=Mars/Olympus", 400, "tz"},
			{httpAuditorToken, "/v1/reports/access-audit?flagged=maybe", 400, "flagged"},
			{httpAuditorToken, "/v1/reports/access-audit?from=nope", 400, "from"},
			{httpAuditorToken, "/v1/reports/unauthorized?as-of=" + httpAsOf + "&as-of=" + httpAsOf, 400, "as-of"},
			{httpAuditorToken, "/v1/reports/unauthorized?format=xml", 400, "format"},
			{httpOfficerToken, "/v1/reports/nonexistent", 404, `"nonexistent"`},
			{"", "/v1/reports/unauthorized", 401, "token"},
			{strings.Repeat("q", 44), "/v1/reports/unauthorized", 401, "token"},
		} {
			e.refused(c.token, c.path, c.status, c.want)
		}
		r := e.get("", "/v1/reports/unauthorized")
		if r.header.Get("WWW-Authenticate") == "" || bytes.Contains(r.body, []byte("logPosition")) {
			t.Errorf("401: WWW-Authenticate %q, body %s", r.header.Get("WWW-Authenticate"), r.body)
		}
	})

	t.Run("Parameters", func(t *testing.T) {
		e.t = t
		// Filters, as-of-seq and tz reach the report.
		m := decode(t, e.report(httpOfficerToken, "access-audit", url.Values{"as-of": {httpAsOf}, "flagged": {"true"}, "limit": {"10000"}}))
		for _, row := range m["rows"].([]any) {
			if row.(map[string]any)["flagged"] != true {
				t.Fatalf("flagged=true returned an unflagged row: %v", row)
			}
		}
		m = decode(t, e.report(httpAuditorToken, "unauthorized", url.Values{"as-of": {httpAsOf}, "as-of-seq": {"100"}}))
		if m["logPosition"] != float64(100) {
			t.Errorf("as-of-seq=100: logPosition %v", m["logPosition"])
		}
		m = decode(t, e.report(httpAuditorToken, "unauthorized", url.Values{"as-of": {httpAsOf}, "tz": {"America/Chicago"}}))
		if m["asOf"] != "2026-03-06T06:00:00-06:00" {
			t.Errorf("tz=America/Chicago: asOf %v", m["asOf"])
		}
	})

	t.Run("FailClosed", func(t *testing.T) {
		e.t = t
		if err := js.DeleteStream(context.Background(), "CUSTODY_REPORTS"); err != nil {
			t.Fatalf("delete CUSTODY_REPORTS: %v", err)
		}
		r := e.get(httpAuditorToken, "/v1/reports/unauthorized?as-of="+httpAsOf)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("with no reports stream: %d, want 503: %.300s", r.status, r.body)
		}
		var msg map[string]string
		if err := json.Unmarshal(r.body, &msg); err != nil || len(msg) != 1 || msg["error"] == "" {
			t.Errorf("503 body %s, want only an error", r.body)
		}
		for _, leak := range []string{"logPosition", "agents", "executionId", "threshold"} {
			if bytes.Contains(r.body, []byte(leak)) {
				t.Errorf("503 body carries report data (%s): %s", leak, r.body)
			}
		}
	})

	e.t = t
	stop()
}

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
