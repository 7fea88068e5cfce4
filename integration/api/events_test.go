package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/integration/api"
)

var webhookKey = []byte("webhook-key-0123456789abcdef0123456789")

// sign computes X-Compliance-Signature as the scheme defines it, independently of the
// code under test.
func sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "." + string(body)))
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// verifyWith is a reference verifier for these tests: the exact scheme, ±5 minutes.
func verifyWith(key []byte) func(string, []byte) error {
	return func(header string, body []byte) error {
		var ts, mac string
		for _, part := range strings.Split(header, ",") {
			k, v, _ := strings.Cut(part, "=")
			switch k {
			case "t":
				ts = v
			case "v1":
				mac = v
			}
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || mac == "" {
			return errors.New("missing t or v1")
		}
		if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
			return errors.New("outside the allowed skew")
		}
		if !hmac.Equal([]byte(sign(key, time.Unix(sec, 0), body)), []byte("t="+ts+",v1="+mac)) {
			return errors.New("mismatch")
		}
		return nil
	}
}

// recordingIngester stores what it was given and answers stored for objects with an
// "id", rejected otherwise.
type recordingIngester struct {
	mu    sync.Mutex
	calls [][]json.RawMessage
	fail  bool
}

func (r *recordingIngester) Ingest(_ context.Context, evs []json.RawMessage) []api.IngestResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, evs)
	out := make([]api.IngestResult, len(evs))
	for i, e := range evs {
		var v struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(e, &v)
		switch {
		case r.fail:
			out[i] = api.IngestResult{Index: i, ID: v.ID, Status: api.StatusFailed, Reason: "not acknowledged"}
		case v.ID == "":
			out[i] = api.IngestResult{Index: i, Status: api.StatusRejected, Reason: "id: required"}
		default:
			out[i] = api.IngestResult{Index: i, ID: v.ID, Status: api.StatusStored, Seq: uint64(i + 1)}
		}
	}
	return out
}

func (r *recordingIngester) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func startIngest(t *testing.T, in api.Ingester, metrics http.Handler) string {
	t.Helper()
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0", TokensFile: goodTokens(t), Runner: &fakeRunner{},
		Ingester: in, VerifySignature: verifyWith(webhookKey), MaxBody: 64 << 10, MaxEvents: 10, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + srv.Addr()
}

func post(t *testing.T, url string, body []byte, sig string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	if sig != "" {
		req.Header.Set(api.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("status %d, body %q: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

func TestEventsSignatureAndShape(t *testing.T) {
	in := &recordingIngester{}
	url := startIngest(t, in, nil)
	one := []byte(`{"id":"a"}`)
	batch := []byte(`[{"id":"a"},{"x":1},{"id":"c"}]`)
	now := time.Now()
	tests := []struct {
		name   string
		body   []byte
		sig    string
		status int
		calls  int // ingester calls expected after this request, cumulative
	}{
		{"single signed", one, sign(webhookKey, now, one), 200, 1},
		{"batch signed", batch, sign(webhookKey, now, batch), 200, 2},
		{"no signature", one, "", 401, 2},
		{"wrong key", one, sign([]byte("another-key-0123456789abcdef012345"), now, one), 401, 2},
		{"body changed after signing", []byte(`{"id":"b"}`), sign(webhookKey, now, one), 401, 2},
		{"six minutes old", one, sign(webhookKey, now.Add(-6*time.Minute), one), 401, 2},
		{"six minutes ahead", one, sign(webhookKey, now.Add(6*time.Minute), one), 401, 2},
		{"not json", []byte(`hello`), sign(webhookKey, now, []byte(`hello`)), 400, 2},
		{"broken array", []byte(`[{"id":"a"},`), sign(webhookKey, now, []byte(`[{"id":"a"},`)), 400, 2},
		{"empty array", []byte(`[]`), sign(webhookKey, now, []byte(`[]`)), 400, 2},
		{"truncated object", []byte(`{"id":"a",`), sign(webhookKey, now, []byte(`{"id":"a",`)), 400, 2},
		{"too many events", tooMany(11), sign(webhookKey, now, tooMany(11)), 413, 2},
		{"body too large", big(), sign(webhookKey, now, big()), 413, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, url, tc.body, tc.sig)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%v)", status, tc.status, out)
			}
			if got := in.count(); got != tc.calls {
				t.Fatalf("ingester called %d times, want %d", got, tc.calls)
			}
			if status == 200 && tc.name == "batch signed" {
				res := out["results"].([]any)
				if len(res) != 3 || out["stored"].(float64) != 2 || out["rejected"].(float64) != 1 {
					t.Fatalf("results %v", out)
				}
				if r := res[1].(map[string]any); r["status"] != api.StatusRejected || r["reason"] != "id: required" || r["index"].(float64) != 1 {
					t.Fatalf("second result %v", r)
				}
			}
		})
	}
}

func TestEventsFailedIsRetryable(t *testing.T) {
	url := startIngest(t, &recordingIngester{fail: true}, nil)
	body := []byte(`{"id":"a"}`)
	status, out := post(t, url, body, sign(webhookKey, time.Now(), body))
	if status != http.StatusServiceUnavailable || out["failed"].(float64) != 1 {
		t.Fatalf("status %d, %v: want 503 with one failed", status, out)
	}
}

func TestEventsOffWithoutIngester(t *testing.T) {
	url := startServer(t, &fakeRunner{})
	body := []byte(`{"id":"a"}`)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	req.Header.Set(api.SignatureHeader, sign(webhookKey, time.Now(), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("status %d: the endpoint must not exist without an ingester", resp.StatusCode)
	}
	if _, err := api.New(api.Config{Addr: "127.0.0.1:0", TokensFile: goodTokens(t), Runner: &fakeRunner{}, Ingester: &recordingIngester{}}); err == nil {
		t.Fatal("an ingester without a signature check was accepted")
	}
}

func TestMetricsNeedAToken(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "custody_test_metric 1") })
	url := startIngest(t, &recordingIngester{}, metrics)
	for _, tc := range []struct {
		token  string
		status int
	}{{"", 401}, {"not-a-token-0123456789abcdef0123456789", 401}, {auditorToken, 200}, {officerToken, 200}} {
		req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("token %q: status %d, want %d", tc.token, resp.StatusCode, tc.status)
		}
		if has := strings.Contains(string(b), "custody_test_metric"); has != (tc.status == 200) {
			t.Fatalf("token %q: metrics in body %v", tc.token, has)
		}
	}
}

func tooMany(n int) []byte {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"id":"e%d"}`, i)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

func big() []byte {
	return []byte(`{"id":"a","pad":"` + strings.Repeat("x", 70<<10) + `"}`)
}

// platformIngester maps "acme" payloads: one event per payload, or a bad request.
type platformIngester struct{}

func (platformIngester) IngestPlatform(_ context.Context, platform string, body []byte) ([]api.IngestResult, error) {
	if platform != "acme" {
		return nil, fmt.Errorf("platform %q: %w", platform, api.ErrNotFound)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("body: not JSON: %w", api.ErrBadRequest)
	}
	return []api.IngestResult{{Index: 0, ID: "x", Status: api.StatusStored, Seq: 1}}, nil
}

func TestPlatformIngestAuth(t *testing.T) {
	tokens := writeFile(t, "auditor auditor-1 "+auditorToken+"\ningest eventbridge "+ingestToken+"\n")
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0", TokensFile: tokens, Runner: &fakeRunner{},
		Platforms: platformIngester{}, VerifySignature: verifyWith(webhookKey)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "http://" + srv.Addr()
	body := []byte(`{"topicName":"v2.detail.events.conversation.x.customer.start"}`)
	do := func(method, path, token, sig string, b []byte) int {
		req, _ := http.NewRequest(method, url+path, bytes.NewReader(b))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if sig != "" {
			req.Header.Set(api.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, method, path, token, sig string
		body                           []byte
		status                         int
	}{
		{"ingest token", "POST", "/v1/ingest/acme", ingestToken, "", body, 200},
		{"signature", "POST", "/v1/ingest/acme", "", sign(webhookKey, time.Now(), body), body, 200},
		{"bad signature wins over a good token", "POST", "/v1/ingest/acme", ingestToken, sign([]byte("another-key-0123456789abcdef012345"), time.Now(), body), body, 401},
		{"auditor token may not ingest", "POST", "/v1/ingest/acme", auditorToken, "", body, 403},
		{"nothing", "POST", "/v1/ingest/acme", "", "", body, 401},
		{"unknown platform", "POST", "/v1/ingest/other", ingestToken, "", body, 404},
		{"not JSON", "POST", "/v1/ingest/acme", ingestToken, "", []byte("{"), 400},
		{"ingest token may not read reports", "GET", "/v1/reports/unauthorized", ingestToken, "", nil, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := do(tc.method, tc.path, tc.token, tc.sig, tc.body); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
		})
	}
}

const ingestToken = "ingest-token-0123456789abcdef0123456789"

// headerRunner adds a proof header to every report, and fails the report "broken".
type headerRunner struct{}

func (headerRunner) RunReport(_ context.Context, r api.Request) ([]byte, error) {
	r.Headers.Set("X-Custody-Tree-Size", "7")
	if r.Report == "broken" {
		return nil, errors.New("not acknowledged")
	}
	return []byte("a,b\n1,2\n"), nil
}

func TestReportHeadersOnlyWithAReport(t *testing.T) {
	url := startServer(t, headerRunner{})
	for _, tc := range []struct {
		report string
		status int
		header string
	}{{"unauthorized", 200, "7"}, {"broken", 503, ""}} {
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/reports/"+tc.report+"?format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+auditorToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("X-Custody-Tree-Size") != tc.header {
			t.Fatalf("%s: status %d header %q, want %d %q", tc.report, resp.StatusCode, resp.Header.Get("X-Custody-Tree-Size"), tc.status, tc.header)
		}
	}
}
