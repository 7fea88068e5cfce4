package genesys_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/custody/custody/integration/genesys"
)

// TestLogsCarryNoPHI runs every phase through re-authentication, rate limiting and server
// errors with payloads full of planted identifiers (phone numbers, names, SSN, date of
// birth, MRN, e-mail), logging at debug level, and checks that no log line carries any of
// them, nor the client secret or a token.
func TestLogsCarryNoPHI(t *testing.T) {
	f := newFake(t)
	seed(f)
	f.conversations = append(f.conversations, emailConversation(20, t0.Add(20*3600e9)))
	var once, once2, once3 sync.Once
	f.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		hit := false
		switch {
		case strings.HasSuffix(r.URL.Path, "/results") && r.URL.Query().Get("cursor") == cursorOf(2):
			once.Do(func() {
				w.Header().Set("Retry-After", "1")
				writeJSON(w, 429, map[string]any{"code": "too.many.requests", "message": "Member Alpha +15558675309"})
				hit = true
			})
		case strings.HasSuffix(r.URL.Path, "/recordingmetadata"):
			once2.Do(func() {
				writeJSON(w, 502, map[string]any{"code": "bad.gateway", "message": "123-45-6789"})
				hit = true
			})
		case strings.HasPrefix(r.URL.Path, "/api/v2/audits/query/") && strings.HasSuffix(r.URL.Path, "/results"):
			once3.Do(func() {
				f.expireToken()
				writeJSON(w, 401, map[string]any{"code": "authentication.required"})
				hit = true
			})
		}
		return hit
	}
	logger, buf := captureLogs()
	cfg := f.config(t, newMapper(t, false))
	cfg.Logger = logger
	rec := &recorder{}
	b, err := genesys.NewBackfill(cfg, &memStore{}, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkContract(t, rec.events)
	logs := buf.String()
	for _, want := range []string{"rate limited", "server error", "signing in again", "caught up", "retention sweep complete"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q record in the logs", want)
		}
	}
	for _, bad := range append(planted, clientSecret, "token-1", "token-2", "Bearer", "claims@payer.example") {
		if strings.Contains(logs, bad) {
			t.Fatalf("log carries %q:\n%s", bad, logs)
		}
	}
	if f.tokens != 2 || len(rec.events) == 0 {
		t.Fatalf("%d tokens, %d events", f.tokens, len(rec.events))
	}
}
