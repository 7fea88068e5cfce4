package main

// End-to-end tests of custody's edges as `custody serve` runs them: signed webhook ingest
// (POST /v1/events), GET /metrics, SIEM delivery to a mutual-TLS receiver, delivery
// across SIGKILLs, and serve's logs. Everything is real: the embedded JetStream on a
// temporary directory, SQLite, HTTPS receivers that require and verify a client
// certificate. Signatures are computed and checked here with crypto/hmac, independently
// of the siem package, so that the tests check the scheme and not only its round trip.
//
//	go test -race -short ./cmd/custody -run 'Webhook|Metrics|Siem|SIEM'

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/streams"
)

const (
	edgeToken      = "edge-auditor-token-0123456789abcdef0123456789"
	edgeWebhookKey = "edge-webhook-key-0123456789abcdef0123456789abcdef"
	edgeSIEMKey    = "edge-siem-hmac-key-fedcba9876543210fedcba98765432"
	edgeSigHeader  = "X-Compliance-Signature"
	edgeIdemHeader = "Idempotency-Key"
	edgeSkew       = 5 * time.Minute
)

// edgeAPIAddr finds the API's address in serve's log.
var edgeAPIAddr = regexp.MustCompile(`msg="HTTP API" addr="?http://([^/\s"]+)/v1/reports/\{name\}`)

// edgeBuffer is a bytes.Buffer safe for concurrent writers and readers.
type edgeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *edgeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *edgeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func edgeTail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

func writeEdgeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// edgeSign is the X-Compliance-Signature of body at instant at under key:
// t=<unix seconds>,v1=<hex HMAC-SHA256(key, t + "." + body)>.
func edgeSign(key string, at time.Time, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// edgeVerify checks a signature header over the raw body as received.
func edgeVerify(key string, header string, body []byte, now time.Time) error {
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("malformed signature header %q", header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > edgeSkew || d < -edgeSkew {
		return fmt.Errorf("signature time %s off", d)
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("signature mismatch")
}

// edgeEvent is one CloudEvent with a fresh UUIDv7 id.
func edgeEvent(typ, subject string, at time.Time, data string) (id, line string) {
	id = uuid.Must(uuid.NewV7()).String()
	return id, edgeEventWithID(id, typ, subject, at.UTC().Format(time.RFC3339Nano), data)
}

func edgeEventWithID(id, typ, subject, at, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"edge-test/org-1","type":%q,"time":%q,"subject":%q,"data":%s}`,
		id, typ, at, subject, data)
}

// edgeInsecureEmail starts an e-mail interaction without TLS: one insecure_email_transport alert.
func edgeInsecureEmail(interaction string, at time.Time) (string, string) {
	return edgeEvent("interaction.started", interaction, at,
		`{"channel":"email","direction":"inbound","email":{"to":"claims@payer.example","fromMasked":"m***@example.org","tls":"none"}}`)
}

// edgeUnauthorized is four ePHI interactions touched by agent without authorization
// within an hour: one unauthorized_access_threshold alert naming the agent.
func edgeUnauthorized(agent, interactionPrefix string, at time.Time) []string {
	var lines []string
	for i := range 4 {
		in := fmt.Sprintf("%s-%d", interactionPrefix, i+1)
		_, c := edgeEvent("interaction.classified", in, at.Add(time.Duration(i)*time.Minute),
			`{"interactionType":"claims_inquiry","dataClassification":"protected_health_information"}`)
		_, a := edgeEvent("agent.assigned", in, at.Add(time.Duration(i)*time.Minute+time.Second),
			fmt.Sprintf(`{"agentId":%q,"authorized":false}`, agent))
		lines = append(lines, c, a)
	}
	return lines
}

// runEdge runs custody in-process.
func runEdge(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := Run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// replayIDs returns the ids replay prints for an interaction (none when it has no events).
func replayIDs(t *testing.T, data, interaction string) []string {
	t.Helper()
	code, out, errs := runEdge(t, "", "replay", "--data", data, "--interaction", interaction, "--format", "jsonl")
	if code == 1 && strings.Contains(errs, "no events for") {
		return nil
	}
	if code != 0 {
		t.Fatalf("replay %s: exit %d: %s", interaction, code, errs)
	}
	var ids []string
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		e, err := domain.Parse([]byte(line))
		if err != nil {
			t.Fatalf("replay %s: %v", interaction, err)
		}
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	return ids
}

// edgeServe is a `custody serve` running in this process.
type edgeServe struct {
	t      *testing.T
	data   string
	base   string // http://host:port, when --http was given
	stderr *edgeBuffer
	nc     *nats.Conn
	js     jetstream.JetStream
	cancel context.CancelFunc
	done   chan int
	once   sync.Once
}

// startEdgeServe runs serve on data with args until the test ends (or stop).
func startEdgeServe(t *testing.T, data string, args ...string) *edgeServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &edgeServe{t: t, data: data, stderr: &edgeBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- Run(ctx, append([]string{"serve", "--data", data}, args...), bytes.NewReader(nil), io.Discard, s.stderr)
	}()
	t.Cleanup(s.stop)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(s.stderr.String(), "custody serve: running"); {
		select {
		case c := <-s.done:
			s.done <- c
			t.Fatalf("serve exited %d before running: %s", c, edgeTail(s.stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", edgeTail(s.stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := edgeAPIAddr.FindStringSubmatch(s.stderr.String()); m != nil {
		s.base = "http://" + m[1]
	}
	u, err := os.ReadFile(filepath.Join(data, "nats.url"))
	if err != nil {
		t.Fatalf("serve wrote no nats.url: %v", err)
	}
	s.nc, s.js = edgeConnect(t, strings.TrimSpace(string(u)))
	return s
}

// stop cancels serve and checks that it stopped cleanly.
func (s *edgeServe) stop() {
	s.once.Do(func() {
		if s.nc != nil {
			s.nc.Close()
		}
		s.cancel()
		select {
		case c := <-s.done:
			if c != 0 {
				s.t.Errorf("serve exited %d: %s", c, edgeTail(s.stderr.String()))
			}
		case <-time.After(45 * time.Second):
			s.t.Errorf("serve did not stop on cancellation")
		}
	})
}

func edgeConnect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// waitConsumer waits until a durable consumer exists on a stream.
func waitConsumer(t *testing.T, js jetstream.JetStream, stream, durable string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := js.Consumer(context.Background(), stream, durable); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s on %s was not created", durable, stream)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamMsgs is the number of messages in a stream.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// streamAlerts reads every alert of CUSTODY_ALERTS by id, and the number of messages.
func streamAlerts(t *testing.T, js jetstream.JetStream) (map[string]domain.Event, int) {
	t.Helper()
	ctx := context.Background()
	n := streamMsgs(t, js, streams.AlertsStream)
	out := map[string]domain.Event{}
	if n == 0 {
		return out, 0
	}
	s, err := js.Stream(ctx, streams.AlertsStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read alerts: %v", err)
		}
		e, err := domain.Parse(m.Data())
		if err != nil {
			t.Fatalf("alert: %v", err)
		}
		out[e.ID] = e
	}
	return out, int(n)
}

type edgeResult struct {
	Index  int    `json:"index"`
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
	Seq    uint64 `json:"seq"`
}

type edgeReply struct {
	status int
	raw    []byte
	// The JSON answer of POST /v1/events.
	Results    []edgeResult `json:"results"`
	Stored     int          `json:"stored"`
	Duplicates int          `json:"duplicates"`
	Rejected   int          `json:"rejected"`
	Failed     int          `json:"failed"`
	Error      string       `json:"error"`
}

// post sends body to POST /v1/events with the signature header sig ("" for none).
func edgePost(t *testing.T, base, sig string, body []byte) edgeReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(edgeSigHeader, sig)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("POST /v1/events: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := edgeReply{status: resp.StatusCode, raw: raw}
	if err := json.Unmarshal(raw, &r); err != nil && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/events: %d, body is not JSON: %v: %.300s", resp.StatusCode, err, raw)
	}
	return r
}

func edgeGet(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// metricValue is the value of one sample line of a Prometheus text exposition.
func metricValue(body, series string) (float64, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func jsonArray(lines []string) []byte { return []byte("[" + strings.Join(lines, ",") + "]") }

// TestWebhookIngest posts signed CloudEvents to a running serve: single events and
// batches are stored with per-event results, a repeated batch is all duplicates, a mixed
// batch stores the valid events and names the field and rule of each invalid one, and
// bad signatures, non-JSON bodies and oversized batches store nothing.
func TestWebhookIngest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	tokens := writeEdgeFile(t, dir, "tokens", "auditor edge-auditor "+edgeToken+"\n")
	keyFile := writeEdgeFile(t, dir, "webhook.key", edgeWebhookKey+"\n")
	s := startEdgeServe(t, data, "--http", "127.0.0.1:0", "--tokens", tokens, "--webhook-key", keyFile)
	if s.base == "" {
		t.Fatalf("serve logged no API address: %s", edgeTail(s.stderr.String()))
	}
	now := time.Now().UTC().Add(-time.Minute)
	post := func(body []byte) edgeReply {
		t.Helper()
		return edgePost(t, s.base, edgeSign(edgeWebhookKey, time.Now(), body), body)
	}

	t.Run("Single", func(t *testing.T) {
		id, ev := edgeEvent("consent.captured", "wh-single-1", now, `{"method":"ivr_verbal"}`)
		r := post([]byte(ev))
		if r.status != http.StatusOK || len(r.Results) != 1 || r.Stored != 1 {
			t.Fatalf("single: %d %s", r.status, r.raw)
		}
		if res := r.Results[0]; res.Index != 0 || res.ID != id || res.Status != "stored" || res.Seq == 0 {
			t.Fatalf("single: result %+v", res)
		}
		if got := replayIDs(t, data, "wh-single-1"); !slices.Equal(got, []string{id}) {
			t.Fatalf("replay: %v, want [%s]", got, id)
		}
	})

	var batch, batchIDs []string
	for i, typ := range []string{"interaction.started", "agent.assigned", "interaction.ended"} {
		payload := map[string]string{
			"interaction.started": `{"channel":"voice","direction":"inbound"}`,
			"agent.assigned":      `{"agentId":"wh-agent-1","authorized":true}`,
			"interaction.ended":   `{"disposition":"resolved"}`,
		}[typ]
		id, ev := edgeEvent(typ, "wh-batch-1", now.Add(time.Duration(i)*time.Second), payload)
		batch, batchIDs = append(batch, ev), append(batchIDs, id)
	}
	t.Run("Batch", func(t *testing.T) {
		r := post(jsonArray(batch))
		if r.status != http.StatusOK || len(r.Results) != len(batch) || r.Stored != len(batch) {
			t.Fatalf("batch: %d %s", r.status, r.raw)
		}
		seqs := map[uint64]bool{}
		for i, res := range r.Results {
			if res.Index != i || res.ID != batchIDs[i] || res.Status != "stored" || res.Seq == 0 || seqs[res.Seq] {
				t.Fatalf("batch: result %d %+v", i, res)
			}
			seqs[res.Seq] = true
		}
		want := slices.Sorted(slices.Values(batchIDs))
		if got := replayIDs(t, data, "wh-batch-1"); !slices.Equal(got, want) {
			t.Fatalf("replay: %v, want %v", got, want)
		}
	})

	t.Run("BatchAgainIsDuplicates", func(t *testing.T) {
		before := streamMsgs(t, s.js, streams.EventsStream)
		r := post(jsonArray(batch))
		if r.status != http.StatusOK || r.Duplicates != len(batch) || r.Stored != 0 {
			t.Fatalf("batch again: %d %s", r.status, r.raw)
		}
		for i, res := range r.Results {
			if res.Index != i || res.ID != batchIDs[i] || res.Status != "duplicate" {
				t.Fatalf("batch again: result %d %+v", i, res)
			}
		}
		if after := streamMsgs(t, s.js, streams.EventsStream); after != before {
			t.Fatalf("a repeated batch grew the log from %d to %d", before, after)
		}
	})

	t.Run("MixedBatch", func(t *testing.T) {
		subj := "wh-mixed-1"
		ok1, good1 := edgeEvent("consent.captured", subj, now, `{"method":"ivr_menu"}`)
		_, noOffset := edgeEvent("consent.captured", subj, now, `{"method":"written"}`)
		noOffset = strings.Replace(noOffset, now.Format(time.RFC3339Nano), now.Format("2006-01-02T15:04:05"), 1)
		_, rawSSN := edgeEvent("agent.assigned", subj, now, `{"agentId":"SSN:123456789","authorized":"yes"}`)
		_, badEnum := edgeEvent("consent.declined", subj, now, `{"method":"carrier_pigeon"}`)
		ok2, good2 := edgeEvent("interaction.ended", subj, now.Add(time.Second), `{}`)
		r := post(jsonArray([]string{good1, noOffset, rawSSN, badEnum, good2, good1}))
		if r.status != http.StatusOK || len(r.Results) != 6 || r.Stored != 2 || r.Rejected != 3 || r.Duplicates != 1 {
			t.Fatalf("mixed: %d %s", r.status, r.raw)
		}
		want := []struct {
			status string
			reason []string
		}{
			{"stored", nil},
			{"rejected", []string{"time: must have an explicit offset"}},
			{"rejected", []string{"data.agentId: contains a raw identifier shaped like a Social Security number", "data.authorized: must be a boolean"}},
			{"rejected", []string{"data.method: "}},
			{"stored", nil},
			{"duplicate", nil}, // the same id twice in one batch
		}
		for i, w := range want {
			res := r.Results[i]
			if res.Index != i || res.Status != w.status {
				t.Errorf("mixed: result %d %+v, want %s", i, res, w.status)
			}
			for _, reason := range w.reason {
				if !strings.Contains(res.Reason, reason) {
					t.Errorf("mixed: result %d reason %q lacks %q", i, res.Reason, reason)
				}
			}
		}
		if bytes.Contains(r.raw, []byte("123456789")) || bytes.Contains(r.raw, []byte("carrier_pigeon")) {
			t.Errorf("a rejection echoed the value: %s", r.raw)
		}
		if got, w := replayIDs(t, data, subj), slices.Sorted(slices.Values([]string{ok1, ok2})); !slices.Equal(got, w) {
			t.Fatalf("replay: %v, want only the valid events %v", got, w)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		subj := "wh-refused-1"
		_, ev := edgeEvent("consent.captured", subj, now, `{"method":"ivr_verbal"}`)
		body := []byte(ev)
		tampered := bytes.Replace(body, []byte("ivr_verbal"), []byte("ivr_menu__"), 1)
		before := streamMsgs(t, s.js, streams.EventsStream)
		for _, c := range []struct {
			name string
			sig  string
			body []byte
		}{
			{"WrongKey", edgeSign("another-key-0123456789abcdef0123456789abcdef", time.Now(), body), body},
			{"TamperedBody", edgeSign(edgeWebhookKey, time.Now(), body), tampered},
			{"MissingHeader", "", body},
			{"SixMinutesOld", edgeSign(edgeWebhookKey, time.Now().Add(-6*time.Minute), body), body},
			{"SixMinutesAhead", edgeSign(edgeWebhookKey, time.Now().Add(6*time.Minute), body), body},
			{"Malformed", "t=" + strconv.FormatInt(time.Now().Unix(), 10) + ",v1=zz", body},
			{"BatchWrongKey", edgeSign("another-key-0123456789abcdef0123456789abcdef", time.Now(), jsonArray([]string{ev})), jsonArray([]string{ev})},
		} {
			r := edgePost(t, s.base, c.sig, c.body)
			if r.status != http.StatusUnauthorized || !strings.Contains(r.Error, edgeSigHeader) || len(r.Results) != 0 {
				t.Errorf("%s: %d %s, want 401 naming %s", c.name, r.status, r.raw, edgeSigHeader)
			}
		}
		if after := streamMsgs(t, s.js, streams.EventsStream); after != before {
			t.Errorf("refused posts grew the log from %d to %d", before, after)
		}
		if got := replayIDs(t, data, subj); len(got) != 0 {
			t.Errorf("refused events are in the log: %v", got)
		}
	})

	t.Run("NotJSON", func(t *testing.T) {
		before := streamMsgs(t, s.js, streams.EventsStream)
		for _, body := range []string{"not json", "", `[{"specversion":"1.0"`, `"a string"`, "42"} {
			if r := post([]byte(body)); r.status != http.StatusBadRequest || r.Error == "" {
				t.Errorf("body %q: %d %s, want 400", body, r.status, r.raw)
			}
		}
		// A body that opens like an object but is not JSON.
		if r := post([]byte(`{"specversion":"1.0",`)); r.status != http.StatusBadRequest {
			t.Errorf("truncated object: %d %s, want 400", r.status, r.raw)
		}
		if after := streamMsgs(t, s.js, streams.EventsStream); after != before {
			t.Errorf("bodies that are not JSON grew the log from %d to %d", before, after)
		}
	})

	t.Run("BatchLimit", func(t *testing.T) {
		id, ev := edgeEvent("consent.captured", "wh-limit-1", now, `{"method":"ivr_verbal"}`)
		before := streamMsgs(t, s.js, streams.EventsStream)
		over := make([]string, 1001)
		for i := range over {
			_, over[i] = edgeEvent("consent.captured", "wh-limit-1", now, `{"method":"ivr_verbal"}`)
		}
		if r := post(jsonArray(over)); r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.Error, "1000") {
			t.Errorf("1001 events: %d %.300s, want 413", r.status, r.raw)
		}
		if after := streamMsgs(t, s.js, streams.EventsStream); after != before {
			t.Errorf("an oversized batch grew the log from %d to %d", before, after)
		}
		// 1000 is within the limit: one stored, the same id 999 times a duplicate.
		same := slices.Repeat([]string{ev}, 1000)
		r := post(jsonArray(same))
		if r.status != http.StatusOK || r.Stored != 1 || r.Duplicates != 999 || len(r.Results) != 1000 {
			t.Errorf("1000 events: %d stored %d duplicates %d results %d", r.status, r.Stored, r.Duplicates, len(r.Results))
		}
		if got := replayIDs(t, data, "wh-limit-1"); !slices.Equal(got, []string{id}) {
			t.Errorf("replay: %v, want [%s]", got, id)
		}
	})
}

// TestWebhookIngestOffWithoutKey checks that POST /v1/events does not exist unless
// --webhook-key is given.
func TestWebhookIngestOffWithoutKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokens := writeEdgeFile(t, dir, "tokens", "auditor edge-auditor "+edgeToken+"\n")
	s := startEdgeServe(t, filepath.Join(dir, "data"), "--http", "127.0.0.1:0", "--tokens", tokens)
	_, ev := edgeEvent("consent.captured", "wh-off-1", time.Now(), `{"method":"ivr_verbal"}`)
	before := streamMsgs(t, s.js, streams.EventsStream)
	r := edgePost(t, s.base, edgeSign(edgeWebhookKey, time.Now(), []byte(ev)), []byte(ev))
	if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/events without --webhook-key: %d %s, want 404 or 405", r.status, r.raw)
	}
	if after := streamMsgs(t, s.js, streams.EventsStream); after != before {
		t.Fatalf("the log grew from %d to %d", before, after)
	}
}

// edgePKI is a test CA with a receiver certificate for 127.0.0.1 and a client
// certificate for custody, written as PEM files.
type edgePKI struct {
	caFile, certFile, keyFile string
	serverCert                tls.Certificate
	pool                      *x509.CertPool
	pin                       string // base64 SHA-256 of the receiver's SubjectPublicKeyInfo
}

func newEdgePKI(t *testing.T, dir string) *edgePKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		return writeEdgeFile(t, dir, name, string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})))
	}
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &edgePKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM("ca.pem", "CERTIFICATE", caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, server bool) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	sDER, sKey := issue(2, "edge receiver", x509.ExtKeyUsageServerAuth, true)
	leaf, err := x509.ParseCertificate(sDER)
	if err != nil {
		t.Fatal(err)
	}
	p.serverCert = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey, Leaf: leaf}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	p.pin = base64.StdEncoding.EncodeToString(sum[:])
	cDER, cKey := issue(3, "custody-edge-client", x509.ExtKeyUsageClientAuth, false)
	p.certFile = writePEM("client.pem", "CERTIFICATE", cDER)
	kDER, err := x509.MarshalECPrivateKey(cKey)
	if err != nil {
		t.Fatal(err)
	}
	p.keyFile = writePEM("client-key.pem", "EC PRIVATE KEY", kDER)
	return p
}

// edgeAnswer is how the receiver answers one request.
type edgeAnswer struct {
	status int
	delay  time.Duration // before answering; a 2xx event is stored before the delay
}

// edgeDelivery is one request the receiver saw.
type edgeDelivery struct {
	id, eventID, contentType, clientCN string
	body                               []byte
	sigErr                             error
	status                             int
}

// edgeReceiver is a SIEM/GRC webhook receiver over HTTPS that requires and verifies a
// client certificate from the test CA. It verifies the signature over the raw body
// before parsing, answers with script then final, and stores each Idempotency-Key once
// (deliveries of a stored key are counted as duplicates).
type edgeReceiver struct {
	srv *httptest.Server

	mu         sync.Mutex
	script     []edgeAnswer
	final      edgeAnswer
	seen       []edgeDelivery
	accepted   map[string]int // Idempotency-Key -> 2xx answers
	entered    chan string    // the Idempotency-Key of every request, when it arrives
	bodyByID   map[string][]byte
	badRequest []string // what was wrong with a request, beyond its status
}

func newEdgeReceiver(t *testing.T, p *edgePKI, final edgeAnswer, script ...edgeAnswer) *edgeReceiver {
	r := &edgeReceiver{script: script, final: final, accepted: map[string]int{}, bodyByID: map[string][]byte{},
		entered: make(chan string, 1000)}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		MinVersion:   tls.VersionTLS12,
	}
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // connections cut by SIGKILL are expected
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *edgeReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	d := edgeDelivery{id: req.Header.Get(edgeIdemHeader), contentType: req.Header.Get("Content-Type"), body: body}
	if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
		d.clientCN = req.TLS.PeerCertificates[0].Subject.CommonName
	}
	d.sigErr = edgeVerify(edgeSIEMKey, req.Header.Get(edgeSigHeader), body, time.Now())
	var p struct {
		EventID string `json:"eventId"`
	}
	if err := json.Unmarshal(body, &p); err == nil {
		d.eventID = p.EventID
	}
	r.mu.Lock()
	a := r.final
	if len(r.script) > 0 {
		a, r.script = r.script[0], r.script[1:]
	}
	switch {
	case d.sigErr != nil:
		a = edgeAnswer{status: http.StatusUnauthorized}
		r.badRequest = append(r.badRequest, fmt.Sprintf("%s: %v", d.id, d.sigErr))
	case d.id == "" || d.id != d.eventID:
		a = edgeAnswer{status: http.StatusBadRequest}
		r.badRequest = append(r.badRequest, fmt.Sprintf("Idempotency-Key %q, body eventId %q", d.id, d.eventID))
	case d.clientCN != "custody-edge-client" || !strings.HasPrefix(d.contentType, "application/json"):
		a = edgeAnswer{status: http.StatusBadRequest}
		r.badRequest = append(r.badRequest, fmt.Sprintf("client %q, content type %q", d.clientCN, d.contentType))
	}
	if a.status/100 == 2 {
		r.accepted[d.id]++
		if _, ok := r.bodyByID[d.id]; !ok {
			r.bodyByID[d.id] = body
		}
	}
	d.status = a.status
	r.seen = append(r.seen, d)
	r.mu.Unlock()
	select {
	case r.entered <- d.id:
	default:
	}
	time.Sleep(a.delay)
	w.WriteHeader(a.status)
}

func (r *edgeReceiver) setFinal(a edgeAnswer) {
	r.mu.Lock()
	r.final = a
	r.mu.Unlock()
}

// stored is the set of accepted Idempotency-Keys with their 2xx answers.
func (r *edgeReceiver) stored() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.accepted))
	for k, v := range r.accepted {
		out[k] = v
	}
	return out
}

func (r *edgeReceiver) requests() []edgeDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func (r *edgeReceiver) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.badRequest)
}

// drainEntered forgets the arrivals seen so far.
func (r *edgeReceiver) drainEntered() {
	for {
		select {
		case <-r.entered:
		default:
			return
		}
	}
}

// writeSIEMConfig writes a configuration with one webhook sink on the receiver, in the
// form of integration/siem/testdata/siem.example.json.
func writeSIEMConfig(t *testing.T, dir string, p *edgePKI, r *edgeReceiver) string {
	t.Helper()
	keyFile := writeEdgeFile(t, dir, "grc-hmac-key", edgeSIEMKey+"\n")
	cfg := map[string]any{
		"maxRetries":      2,
		"retryInterval":   "100ms",
		"redeliveryDelay": "1s",
		"sinks": []any{map[string]any{
			"name": "grc",
			"kind": "webhook",
			"url":  r.srv.URL + "/v1/custody/events",
			"tls": map[string]any{
				"caFile": p.caFile, "certFile": p.certFile, "keyFile": p.keyFile,
				"pins": []string{p.pin},
			},
			"signingKey": map[string]string{"file": keyFile},
			"timeout":    "5s",
		}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return writeEdgeFile(t, dir, "siem.json", string(b))
}

// waitDelivered waits until the alerts stream holds want alerts and the receiver has
// stored every one of them; it returns the alerts.
func waitDelivered(t *testing.T, js jetstream.JetStream, r *edgeReceiver, want int, timeout time.Duration, extra func() bool, diag func() string) map[string]domain.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		alerts, n := streamAlerts(t, js)
		got := r.stored()
		missing := 0
		for id := range alerts {
			if got[id] == 0 {
				missing++
			}
		}
		if n >= want && missing == 0 && (extra == nil || extra()) {
			return alerts
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d alerts in the stream (want %d), %d of them not at the receiver; receiver problems %v\n%s",
				timeout, n, want, missing, r.problems(), diag())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkDelivered checks that the receiver holds exactly the alerts of the stream, each
// body the webhook rendering of the stored alert, and that no request was malformed.
func checkDelivered(t *testing.T, r *edgeReceiver, alerts map[string]domain.Event) {
	t.Helper()
	if p := r.problems(); len(p) > 0 {
		t.Errorf("malformed deliveries: %v", p)
	}
	stored := r.stored()
	for id := range stored {
		if _, ok := alerts[id]; !ok {
			t.Errorf("the receiver stored %s, which is no alert of the stream", id)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range alerts {
		if stored[id] == 0 {
			t.Errorf("alert %s (%s) never reached the receiver", id, e.Data.(*domain.AlertRaised).Rule)
			continue
		}
		var p struct {
			EventID, Type, Subject string
			Rule                   *string
			Data                   json.RawMessage
		}
		if err := json.Unmarshal(r.bodyByID[id], &p); err != nil {
			t.Fatalf("body of %s: %v", id, err)
		}
		raw, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var stored struct{ Data json.RawMessage }
		json.Unmarshal(raw, &stored)
		var a, b bytes.Buffer
		json.Compact(&a, p.Data)
		json.Compact(&b, stored.Data)
		rule := e.Data.(*domain.AlertRaised).Rule
		if p.EventID != id || p.Type != "alert.raised" || p.Subject != e.Subject || p.Rule == nil || *p.Rule != rule || a.String() != b.String() {
			t.Errorf("delivery of %s does not carry the stored alert: %s", id, r.bodyByID[id])
		}
	}
}

func countRules(alerts map[string]domain.Event) map[string]int {
	out := map[string]int{}
	for _, e := range alerts {
		out[e.Data.(*domain.AlertRaised).Rule]++
	}
	return out
}

// TestMetricsEndpoint checks GET /metrics: refused without a valid token, served with
// one, and exposing the custody_siem_ metrics only when SIEM delivery runs.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokens := writeEdgeFile(t, dir, "tokens", "auditor edge-auditor "+edgeToken+"\n")
	check := func(t *testing.T, s *edgeServe, siem bool) string {
		t.Helper()
		for _, tok := range []string{"", strings.Repeat("x", 44)} {
			status, h, body := edgeGet(t, s.base+"/metrics", tok)
			if status != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" || strings.Contains(body, "go_goroutines") || strings.Contains(body, "custody_") {
				t.Errorf("GET /metrics with token %q: %d %.200s, want 401 and no metrics", tok, status, body)
			}
		}
		status, _, body := edgeGet(t, s.base+"/metrics", edgeToken)
		if status != http.StatusOK || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
			t.Fatalf("GET /metrics with a token: %d %.300s", status, body)
		}
		if got := strings.Contains(body, "custody_siem_"); got != siem {
			t.Errorf("custody_siem_ metrics exposed: %v, want %v", got, siem)
		}
		if !strings.Contains(body, "\ncustody_deadletters 0\n") {
			t.Errorf("custody_deadletters is not 0 on a fresh store:\n%.2000s", body)
		}
		return body
	}
	t.Run("WithoutSIEM", func(t *testing.T) {
		s := startEdgeServe(t, filepath.Join(dir, "plain"), "--http", "127.0.0.1:0", "--tokens", tokens)
		check(t, s, false)
		s.stop()
	})
	t.Run("WithSIEM", func(t *testing.T) {
		p := newEdgePKI(t, t.TempDir())
		r := newEdgeReceiver(t, p, edgeAnswer{status: http.StatusOK})
		cfg := writeSIEMConfig(t, t.TempDir(), p, r)
		s := startEdgeServe(t, filepath.Join(dir, "siem"), "--http", "127.0.0.1:0", "--tokens", tokens, "--siem-config", cfg)
		body := check(t, s, true)
		// Stop only once the router runs: a stop while it starts makes serve fail.
		waitConsumer(t, s.js, streams.AlertsStream, "siem-grc")
		for _, name := range []string{"delivered_total", "retried_total", "undelivered_total", "deadlettered_total", "skipped_total", "undelivered"} {
			if v, ok := metricValue(body, `custody_siem_`+name+`{sink="grc"}`); !ok || v != 0 {
				t.Errorf("custody_siem_%s{sink=\"grc\"}: %v (present %v), want 0 before any alert", name, v, ok)
			}
		}
		s.stop()
	})
}

// TestSIEMDeliveryFromServe runs serve with --siem-config and one webhook sink on a
// mutual-TLS receiver, publishes traffic that raises alerts, and checks that every
// alert of CUSTODY_ALERTS reaches the receiver with a valid signature over the raw body
// and its id as Idempotency-Key, and that /metrics counts the deliveries.
func TestSIEMDeliveryFromServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	emails := 6
	if testing.Short() {
		emails = 4
	}
	p := newEdgePKI(t, t.TempDir())
	// The first attempt fails: every delivery below follows a retry or comes after it.
	r := newEdgeReceiver(t, p, edgeAnswer{status: http.StatusOK}, edgeAnswer{status: http.StatusServiceUnavailable})
	cfg := writeSIEMConfig(t, dir, p, r)
	tokens := writeEdgeFile(t, dir, "tokens", "auditor edge-auditor "+edgeToken+"\n")
	data := filepath.Join(dir, "data")
	s := startEdgeServe(t, data, "--http", "127.0.0.1:0", "--tokens", tokens, "--siem-config", cfg)

	now := time.Now().UTC().Add(-time.Hour)
	var lines []string
	for i := range emails {
		_, ev := edgeInsecureEmail(fmt.Sprintf("siem-mail-%d", i), now.Add(time.Duration(i)*time.Second))
		lines = append(lines, ev)
		_, ok := edgeEvent("interaction.started", fmt.Sprintf("siem-voice-%d", i), now.Add(time.Duration(i)*time.Second),
			`{"channel":"voice","direction":"outbound"}`)
		lines = append(lines, ok)
	}
	lines = append(lines, edgeUnauthorized("siem-agent-1", "siem-phi", now)...)
	if code, _, errs := runEdge(t, strings.Join(lines, "\n")+"\n", "publish", "--data", data, "-"); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, edgeTail(errs))
	}

	alerts := waitDelivered(t, s.js, r, emails+1, 45*time.Second, nil, func() string { return edgeTail(s.stderr.String()) })
	time.Sleep(500 * time.Millisecond) // anything more the router would send
	alerts, _ = streamAlerts(t, s.js)
	rules := countRules(alerts)
	if rules[domain.RuleInsecureEmailTransport] != emails || rules[domain.RuleUnauthorizedAccessThreshold] != 1 {
		t.Errorf("alerts by rule %v, want %d insecure_email_transport and 1 unauthorized_access_threshold", rules, emails)
	}
	checkDelivered(t, r, alerts)
	reqs := r.requests()
	for _, d := range reqs {
		if d.sigErr != nil {
			t.Errorf("delivery of %s: %v", d.id, d.sigErr)
		}
	}
	if reqs[0].status != http.StatusServiceUnavailable || r.stored()[reqs[0].id] == 0 {
		t.Errorf("the alert refused at the first attempt was not delivered on a retry")
	}

	// /metrics counts what the receiver accepted and the retry.
	accepted := 0
	for _, n := range r.stored() {
		accepted += n
	}
	_, _, body := edgeGet(t, s.base+"/metrics", edgeToken)
	if v, _ := metricValue(body, `custody_siem_delivered_total{sink="grc"}`); int(v) != accepted {
		t.Errorf("custody_siem_delivered_total %v, the receiver accepted %d", v, accepted)
	}
	if v, _ := metricValue(body, `custody_siem_retried_total{sink="grc"}`); v < 1 {
		t.Errorf("custody_siem_retried_total %v after a 503", v)
	}
	t.Logf("%d alerts delivered in %d requests", len(alerts), len(reqs))
}

// edgeChild is custody run in a child process (TestMain in crash_test.go runs the
// arguments of CUSTODY_TEST_MAIN_ARGS), so that it can be killed with SIGKILL.
type edgeChild struct {
	cmd    *exec.Cmd
	stderr *edgeBuffer
	done   chan error
}

func startEdgeChild(t *testing.T, args ...string) *edgeChild {
	t.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	c := &edgeChild{cmd: exec.Command(os.Args[0], "-test.run=^$"), stderr: &edgeBuffer{}, done: make(chan error, 1)}
	c.cmd.Env = append(os.Environ(), "CUSTODY_TEST_MAIN_ARGS="+string(b))
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
		c.done <- nil
	})
	return c
}

// waitRunning waits until the child's serve runs (its SIEM router included).
func (c *edgeChild) waitRunning(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(c.stderr.String(), "custody serve: running") {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("serve exited before running (%v): %s", err, edgeTail(c.stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", edgeTail(c.stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *edgeChild) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-c.done
	c.done <- err
}

// stop sends SIGTERM and checks that serve stopped cleanly.
func (c *edgeChild) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			t.Fatalf("serve did not stop cleanly: %v: %s", err, edgeTail(c.stderr.String()))
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM")
	}
}

func childJS(t *testing.T, data string) jetstream.JetStream {
	t.Helper()
	u, err := os.ReadFile(filepath.Join(data, "nats.url"))
	if err != nil {
		t.Fatal(err)
	}
	_, js := edgeConnect(t, strings.TrimSpace(string(u)))
	return js
}

// TestSIEMCrashMidDelivery kills serve with SIEM delivery while requests to the receiver
// are in flight (refused slowly, and accepted with the response never reaching custody),
// restarts it each time, then lets the receiver accept. After deduplication by
// Idempotency-Key the receiver has every alert of CUSTODY_ALERTS exactly once, none
// missing; the duplicate deliveries (at least once: the cut acceptance) are counted.
func TestSIEMCrashMidDelivery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	emails := 5
	p := newEdgePKI(t, t.TempDir())
	slow503 := edgeAnswer{status: http.StatusServiceUnavailable, delay: 2 * time.Second}
	r := newEdgeReceiver(t, p, slow503)
	cfg := writeSIEMConfig(t, dir, p, r)
	args := []string{"serve", "--data", data, "--siem-config", cfg}

	now := time.Now().UTC().Add(-time.Hour)
	var lines []string
	for i := range emails {
		_, ev := edgeInsecureEmail(fmt.Sprintf("crash-mail-%d", i), now.Add(time.Duration(i)*time.Second))
		lines = append(lines, ev)
	}

	// Each phase runs a serve until a request is in flight at the receiver answering as
	// the phase says, then kills it in the middle of that request.
	phases := []struct {
		name   string
		answer edgeAnswer
	}{
		{"refused slowly", slow503},
		{"accepted, response cut", edgeAnswer{status: http.StatusOK, delay: 3 * time.Second}},
		{"refused slowly again", slow503},
	}
	var cut []string // ids whose acceptance the kill cut off
	var logs []string
	for k, ph := range phases {
		r.setFinal(ph.answer)
		r.drainEntered()
		c := startEdgeChild(t, args...)
		c.waitRunning(t)
		if k == 0 {
			if code, _, errs := runEdge(t, strings.Join(lines, "\n")+"\n", "publish", "--data", data, "-"); code != 0 {
				t.Fatalf("publish: exit %d: %s", code, edgeTail(errs))
			}
		}
		var id string
		select {
		case id = <-r.entered:
		case <-time.After(60 * time.Second):
			t.Fatalf("phase %q: no delivery reached the receiver: %s", ph.name, edgeTail(c.stderr.String()))
		}
		time.Sleep(time.Duration(200+100*k) * time.Millisecond) // inside the receiver's delay
		c.kill(t)
		if ph.answer.status == http.StatusOK {
			cut = append(cut, id)
		}
		logs = append(logs, c.stderr.String())
		t.Logf("kill %d (%s) during the delivery of %s", k+1, ph.name, id)
	}

	r.setFinal(edgeAnswer{status: http.StatusOK})
	c := startEdgeChild(t, args...)
	c.waitRunning(t)
	js := childJS(t, data)
	// The deliveries cut by a kill are redelivered once the consumer's acknowledgement
	// wait (30 s) has passed since they were handed out.
	redelivered := func() bool {
		got := r.stored()
		for _, id := range cut {
			if got[id] < 2 {
				return false
			}
		}
		return true
	}
	alerts := waitDelivered(t, js, r, emails, 90*time.Second, redelivered, func() string { return edgeTail(c.stderr.String()) })
	if n := streamMsgs(t, js, streams.AlertsStream); int(n) != emails || len(alerts) != emails {
		t.Errorf("alerts stream: %d messages, %d distinct alerts, want %d", n, len(alerts), emails)
	}
	c.stop(t)
	checkDelivered(t, r, alerts)
	stored := r.stored()
	dups, attempts := 0, len(r.requests())
	var dupIDs []string
	for id, n := range stored {
		if n > 1 {
			dups += n - 1
			dupIDs = append(dupIDs, fmt.Sprintf("%s×%d", id, n))
		}
	}
	slices.Sort(dupIDs)
	if len(cut) == 0 || dups == 0 {
		t.Errorf("no duplicate delivery after a kill cut an acceptance: the crash did not hit a delivery in flight")
	}
	t.Logf("%d alerts, %d kills, %d requests, %d distinct alerts stored, %d duplicate deliveries dropped by the receiver: %v",
		len(alerts), len(phases), attempts, len(stored), dups, dupIDs)
}

// TestSIEMLogsCarryNoEPHI runs a full serve (child process: all of its stderr) with
// signed webhook ingest and SIEM delivery, including a retried and a redelivered
// alert, and searches its stderr for the planted agent and interaction ids, a raw
// identifier of a rejected event, and the secrets.
func TestSIEMLogsCarryNoEPHI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := newEdgePKI(t, t.TempDir())
	// Three refusals exhaust the first alert's attempts (maxRetries 2): it is left in
	// the stream and redelivered a second later; then everything is accepted.
	refuse := edgeAnswer{status: http.StatusServiceUnavailable}
	r := newEdgeReceiver(t, p, edgeAnswer{status: http.StatusOK}, refuse, refuse, refuse)
	cfg := writeSIEMConfig(t, dir, p, r)
	tokens := writeEdgeFile(t, dir, "tokens", "auditor edge-auditor "+edgeToken+"\n")
	keyFile := writeEdgeFile(t, dir, "webhook.key", edgeWebhookKey+"\n")

	const (
		agent     = "agent-plant-q7x4z9"
		phiPrefix = "int-plant-k2m8v5"
		mail      = "mail-plant-r3w6y1"
		rawSSN    = "987-65-4329"
	)
	planted := []string{agent, mail, rawSSN}
	for i := range 4 {
		planted = append(planted, fmt.Sprintf("%s-%d", phiPrefix, i+1))
	}

	c := startEdgeChild(t, "serve", "--data", data, "--http", "127.0.0.1:0", "--tokens", tokens,
		"--webhook-key", keyFile, "--siem-config", cfg)
	c.waitRunning(t)
	m := edgeAPIAddr.FindStringSubmatch(c.stderr.String())
	if m == nil {
		t.Fatalf("serve logged no API address: %s", edgeTail(c.stderr.String()))
	}
	base := "http://" + m[1]
	now := time.Now().UTC().Add(-time.Hour)
	events := edgeUnauthorized(agent, phiPrefix, now)
	_, ev := edgeInsecureEmail(mail, now)
	events = append(events, ev)
	_, bad := edgeEvent("agent.assigned", mail, now, fmt.Sprintf(`{"agentId":"%s","authorized":true}`, rawSSN))
	events = append(events, bad)
	body := jsonArray(events)
	reply := edgePost(t, base, edgeSign(edgeWebhookKey, time.Now(), body), body)
	if reply.status != http.StatusOK || reply.Stored != len(events)-1 || reply.Rejected != 1 {
		t.Fatalf("ingest: %d %s", reply.status, reply.raw)
	}

	js := childJS(t, data)
	alerts := waitDelivered(t, js, r, 2, 45*time.Second, nil, func() string { return edgeTail(c.stderr.String()) })
	c.stop(t)
	checkDelivered(t, r, alerts)
	if rules := countRules(alerts); rules[domain.RuleInsecureEmailTransport] != 1 || rules[domain.RuleUnauthorizedAccessThreshold] != 1 {
		t.Errorf("alerts by rule %v", rules)
	}

	logs := c.stderr.String()
	// The logs are the right ones: they saw the retry, the redelivery and event ids.
	for _, want := range []string{"SIEM/GRC delivery running", "retrying", "undelivered after retries", "shutting down"} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve's stderr lacks %q: the search below would prove little\n%s", want, edgeTail(logs))
		}
	}
	ids := 0
	for id := range alerts {
		if strings.Contains(logs, id) {
			ids++
		}
	}
	if ids == 0 {
		t.Errorf("no alert id in serve's logs: they did not log the deliveries")
	}
	for _, s := range append(planted, edgeWebhookKey, edgeSIEMKey, edgeToken) {
		if i := strings.Index(logs, s); i >= 0 {
			t.Errorf("serve's stderr carries %q: ...%s...", s, logs[max(0, i-200):min(len(logs), i+len(s)+50)])
		}
	}
	t.Logf("searched %d bytes of serve's stderr (%d lines) for %d planted values", len(logs), strings.Count(logs, "\n"), len(planted)+3)
}

// Serve stopped at any moment of its start, before its projectors have opened what they
// need, ends cleanly: a shutdown is not a failure (exit 0).
func TestServeStoppedWhileStarting(t *testing.T) {
	for _, after := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stderr edgeBuffer
			done := make(chan int, 1)
			go func() {
				done <- Run(ctx, []string{"serve", "--data", filepath.Join(t.TempDir(), "data")}, bytes.NewReader(nil), io.Discard, &stderr)
			}()
			time.Sleep(after)
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("serve stopped %s after its start exited %d: %s", after, code, edgeTail(stderr.String()))
				}
			case <-time.After(45 * time.Second):
				t.Fatal("serve did not stop on cancellation")
			}
		})
	}
}
