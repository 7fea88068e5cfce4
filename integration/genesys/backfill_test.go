package genesys_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/genesys"
)

// seed fills the fake with 7 conversations (4 pages of 2), 5 recording audits (3 pages)
// and 5 recordings (3 pages of retention) in the first day.
func seed(f *fake) {
	for i := range 7 {
		f.conversations = append(f.conversations, voiceConversation(i+1, t0.Add(time.Duration(i+1)*time.Hour)))
	}
	for i, a := range []struct{ id, action, level string }{
		{"a-1", "Read", "USER"}, {"a-2", "Download", "USER"}, {"a-3", "Update", "USER"}, {"a-4", "Read", "USER"}, {"a-5", "Delete", "USER"},
	} {
		e := auditEntry(a.id, "Recording", a.action, a.level, "SUCCESS", t0.Add(time.Duration(i+1)*time.Hour))
		e["context"] = map[string]string{"conversationId": convID(i + 1)}
		f.audits = append(f.audits, e)
	}
	for i := range 5 {
		rec := "rec-" + string(rune('a'+i))
		f.retention = append(f.retention, retentionEntry(i+1, rec, t0.Add(time.Duration(i+1)*time.Hour), t0.Add(time.Duration(i+1)*time.Hour).AddDate(0, 0, 2190)))
		media := "audio"
		if i == 4 {
			media = "screen"
		}
		f.metadata[convID(i+1)] = []map[string]any{{
			"id": rec, "conversationId": convID(i + 1), "media": media, "fileState": "AVAILABLE",
			"archiveDate": ts(t0.AddDate(0, 1, 0)), "deleteDate": ts(t0.AddDate(6, 0, 0)), "sessionId": "s-1",
			"selfUri": "/api/v2/conversations/" + convID(i+1) + "/recordings/" + rec,
		}}
	}
}

// fullSet is what an uninterrupted backfill of the seeded data emits.
func fullSet(t *testing.T) []string {
	f := newFake(t)
	seed(f)
	rec := &recorder{}
	b, err := genesys.NewBackfill(f.config(t, newMapper(t, false)), &memStore{}, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ids(rec.events)
}

func TestBackfillPagesToTheEnd(t *testing.T) {
	f := newFake(t)
	seed(f)
	f.pollsPending = 3
	rec := &recorder{}
	store := &memStore{}
	cfg := f.config(t, newMapper(t, false))
	cfg.Concurrency = 2
	b, err := genesys.NewBackfill(cfg, store, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkContract(t, rec.events)
	count := map[domain.Type]int{}
	for _, e := range rec.events {
		count[e.Type]++
	}
	// 7 conversations × 5 events; reads a-1, a-2, a-4; deletion a-5; 5 recordings.
	want := map[domain.Type]int{
		domain.InteractionStartedType: 7, domain.InteractionClassifiedType: 7, domain.ConsentCapturedType: 7,
		domain.AgentAssignedType: 7, domain.InteractionEndedType: 7, domain.PHIAccessedType: 3,
		domain.RecordPurgedType: 1, domain.RecordingStoredType: 5,
	}
	for typ, n := range want {
		if count[typ] != n {
			t.Errorf("%s: got %d, want %d", typ, count[typ], n)
		}
	}
	if got := countRequests(f, "GET /api/v2/analytics/conversations/details/jobs/job-"); got < 4+4 {
		t.Errorf("detail job: %d polls and pages, want at least 4 polls and 4 pages", got)
	}
	for _, e := range rec.events {
		if e.Type == domain.RecordingStoredType {
			d := e.Data.(*domain.RecordingStored)
			if d.Retention.String() != "P2190D" || (d.RecordingID == "rec-e") != (d.Kind == "screen") {
				t.Errorf("recording %+v", d)
			}
		}
	}
	w := store.w
	if !w.Conversations.Done.Equal(t0.Add(24*time.Hour)) || w.Conversations.JobID != "" || w.Audits["Recording"].Done.IsZero() ||
		w.Retention.InSweep || w.Retention.SweptAt.IsZero() {
		t.Fatalf("watermark after the run: %+v", w)
	}
	if f.maxInFlight > cfg.Concurrency {
		t.Fatalf("%d requests in flight, concurrency %d", f.maxInFlight, cfg.Concurrency)
	}

	t.Run("a second run emits nothing new", func(t *testing.T) {
		before := len(rec.events)
		b, err := genesys.NewBackfill(cfg, store, rec.emit)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(rec.events) != before {
			t.Fatalf("emitted %d more events", len(rec.events)-before)
		}
	})
}

// TestBackfillStopsAtDataAvailability: windows past the data lake's availability date are
// left for a later run, so that no conversation is skipped.
func TestBackfillStopsAtDataAvailability(t *testing.T) {
	f := newFake(t)
	seed(f)
	f.availability = t0.Add(4*time.Hour + 30*time.Minute)
	store := &memStore{}
	rec := &recorder{}
	cfg := f.config(t, newMapper(t, false))
	cfg.Window = time.Hour
	cfg.SkipAudits, cfg.SkipRetention = true, true
	b, err := genesys.NewBackfill(cfg, store, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.events) / 5; got != 4 || !store.w.Conversations.Done.Equal(f.availability) {
		t.Fatalf("%d conversations up to %s, want 4 up to %s", got, store.w.Conversations.Done, f.availability)
	}
	f.availability = t0.Add(24 * time.Hour)
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.events) / 5; got != 7 {
		t.Fatalf("%d conversations after the data arrived, want 7", got)
	}
}

// TestBackfillRestart stops a backfill mid-way (the log refuses a page, the context is
// cancelled, the watermark cannot be saved after a page was emitted) and starts a new one
// from the persisted watermark: every event of the full set is emitted, and an event
// emitted twice has the same id.
func TestBackfillRestart(t *testing.T) {
	full := fullSet(t)
	cases := []struct {
		name  string
		setup func(f *fake, rec *recorder, store *failingStore, cancel context.CancelFunc)
	}{
		{"emit fails after page 2", func(f *fake, rec *recorder, _ *failingStore, _ context.CancelFunc) { rec.failAt = 3 }},
		{"context cancelled during page 3", func(f *fake, _ *recorder, _ *failingStore, cancel context.CancelFunc) {
			f.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
				if strings.HasSuffix(r.URL.Path, "/results") && r.URL.Query().Get("cursor") == cursorOf(4) {
					cancel()
				}
				return false
			}
		}},
		{"crash between emit and watermark", func(_ *fake, _ *recorder, store *failingStore, _ context.CancelFunc) { store.failAfterSaves = 3 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			seed(f)
			store := &failingStore{path: filepath.Join(t.TempDir(), "genesys.watermark.json")}
			rec := &recorder{}
			cfg := f.config(t, newMapper(t, false))
			cfg.SkipAudits, cfg.SkipRetention = true, true
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.setup(f, rec, store, cancel)
			b, err := genesys.NewBackfill(cfg, store, rec.emit)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Run(ctx); err == nil {
				t.Fatal("the first run did not fail")
			}
			first := len(rec.events)
			if first == 0 || first >= 35 {
				t.Fatalf("the first run emitted %d events, want some but not all", first)
			}
			saved, err := store.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if saved.Conversations.JobID == "" || saved.Conversations.Cursor == "" {
				t.Fatalf("the watermark holds no job and cursor: %+v", saved.Conversations)
			}

			// Restart: a new process, the same watermark file.
			f.hook, rec.failAt, store.failAfterSaves = nil, 0, 0
			b2, err := genesys.NewBackfill(cfg, genesys.FileWatermark{Path: store.path}, rec.emit)
			if err != nil {
				t.Fatal(err)
			}
			if err := b2.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := ids(rec.events)
			union := slices.Compact(slices.Clone(got))
			if len(union) != 35 {
				t.Fatalf("union of both runs: %d events, want all 35 of the 7 conversations", len(union))
			}
			for _, id := range union {
				if !slices.Contains(full, id) {
					t.Fatalf("id %s is not in the uninterrupted run's set", id)
				}
			}
			dups := len(got) - len(union)
			t.Logf("first run %d events, second %d, duplicates %d (all with the ids of the full set)", first, len(got)-first, dups)
			if tc.name != "crash between emit and watermark" && dups != 0 {
				t.Fatalf("%d duplicates after resuming from the saved cursor", dups)
			}
			if tc.name == "crash between emit and watermark" && dups == 0 {
				t.Fatal("the page emitted before the crash was not emitted again")
			}
			// The second run went on with the saved job and cursor: no new detail job.
			if n := countRequests(f, "POST /api/v2/analytics/conversations/details/jobs"); n != 1 {
				t.Fatalf("%d detail jobs submitted, want 1 (resumed by cursor)", n)
			}
		})
	}
}

// failingStore is a FileWatermark that can fail once a number of saves succeeded, as a
// crash right after an emitted page would.
type failingStore struct {
	path           string
	mu             sync.Mutex
	saves          int
	failAfterSaves int
}

func (s *failingStore) Load(ctx context.Context) (genesys.Watermark, error) {
	return genesys.FileWatermark{Path: s.path}.Load(ctx)
}

func (s *failingStore) Save(ctx context.Context, w genesys.Watermark) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	if s.failAfterSaves > 0 && s.saves > s.failAfterSaves {
		return errors.New("disk gone")
	}
	return genesys.FileWatermark{Path: s.path}.Save(ctx, w)
}

// TestBackfillReauthenticates: the token goes idle mid-run (a HIPAA organization's 15
// minute timeout): the adapter signs in once more and retries the refused request.
func TestBackfillReauthenticates(t *testing.T) {
	f := newFake(t)
	seed(f)
	var once sync.Once
	f.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		hit := false
		if strings.HasSuffix(r.URL.Path, "/results") && r.URL.Query().Get("cursor") == cursorOf(4) {
			once.Do(func() {
				f.expireToken()
				writeJSON(w, 401, map[string]any{"status": 401, "code": "authentication.required"})
				hit = true
			})
		}
		return hit
	}
	rec := &recorder{}
	cfg := f.config(t, newMapper(t, false))
	cfg.SkipAudits, cfg.SkipRetention = true, true
	b, err := genesys.NewBackfill(cfg, &memStore{}, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.tokens != 2 {
		t.Fatalf("%d tokens fetched, want 2 (one sign-in, one re-authentication)", f.tokens)
	}
	if len(rec.events) != 35 {
		t.Fatalf("%d events, want 35", len(rec.events))
	}
	if n := countRequests(f, "GET /api/v2/analytics/conversations/details/jobs/job-1/results"); n != 5 {
		t.Fatalf("%d result requests, want 4 pages + the refused one again", n)
	}

	t.Run("refused again after a fresh token", func(t *testing.T) {
		f := newFake(t)
		seed(f)
		f.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
			writeJSON(w, 401, map[string]any{"code": "authentication.required"})
			return true
		}
		cfg2 := f.config(t, newMapper(t, false))
		cfg2.SkipAudits, cfg2.SkipRetention = true, true
		b2, err := genesys.NewBackfill(cfg2, &memStore{}, rec.emit)
		if err != nil {
			t.Fatal(err)
		}
		err = b2.Run(context.Background())
		if !errors.Is(err, genesys.ErrUnauthorized) || f.tokens != 2 {
			t.Fatalf("err = %v after %d tokens, want ErrUnauthorized after 2", err, f.tokens)
		}
	})

	t.Run("bad client secret", func(t *testing.T) {
		f := newFake(t)
		cfg := f.config(t, newMapper(t, false))
		t.Setenv("GENESYS_TEST_SECRET", "wrong-secret-value")
		b, err := genesys.NewBackfill(cfg, &memStore{}, rec.emit)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Run(context.Background())
		if !errors.Is(err, genesys.ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret-value") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestBackfillRateLimited: a 429 with Retry-After is waited out and the request retried;
// one asking for more than MaxRetryAfter fails.
func TestBackfillRateLimited(t *testing.T) {
	f := newFake(t)
	seed(f)
	var limited sync.Once
	f.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		hit := false
		if strings.HasSuffix(r.URL.Path, "/results") && r.URL.Query().Get("cursor") == cursorOf(2) {
			limited.Do(func() {
				w.Header().Set("Retry-After", "7")
				writeJSON(w, 429, map[string]any{"status": 429, "code": "too.many.requests"})
				hit = true
			})
		}
		return hit
	}
	var mu sync.Mutex
	var slept []time.Duration
	cfg := f.config(t, newMapper(t, false))
	cfg.SkipAudits, cfg.SkipRetention = true, true
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
		return nil
	}
	rec := &recorder{}
	b, err := genesys.NewBackfill(cfg, &memStore{}, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(slept, 7*time.Second) {
		t.Fatalf("waits %v, want the 7 s of Retry-After", slept)
	}
	if len(rec.events) != 35 {
		t.Fatalf("%d events, want 35", len(rec.events))
	}
	if n := countRequests(f, "GET /api/v2/analytics/conversations/details/jobs/job-1/results"); n != 5 {
		t.Fatalf("%d result requests, want 4 pages + 1 retry", n)
	}

	t.Run("too long", func(t *testing.T) {
		f := newFake(t)
		seed(f)
		f.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
			w.Header().Set("Retry-After", "600")
			writeJSON(w, 429, map[string]any{"code": "too.many.requests"})
			return true
		}
		cfg := f.config(t, newMapper(t, false))
		cfg.SkipAudits, cfg.SkipRetention = true, true
		b, err := genesys.NewBackfill(cfg, &memStore{}, rec.emit)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Run(context.Background()); !errors.Is(err, genesys.ErrRateLimited) {
			t.Fatalf("err = %v, want ErrRateLimited", err)
		}
	})

	t.Run("server errors are retried, then reported", func(t *testing.T) {
		f := newFake(t)
		seed(f)
		f.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
			writeJSON(w, 503, map[string]any{"code": "service.unavailable", "message": "Member Alpha"})
			return true
		}
		cfg := f.config(t, newMapper(t, false))
		cfg.SkipAudits, cfg.SkipRetention = true, true
		cfg.MaxRetries = 2
		b, err := genesys.NewBackfill(cfg, &memStore{}, rec.emit)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Run(context.Background())
		var he *genesys.HTTPError
		if !errors.As(err, &he) || he.Status != 503 || he.Code != "service.unavailable" || strings.Contains(err.Error(), "Pat") {
			t.Fatalf("err = %v", err)
		}
		if n := countRequests(f, "GET /api/v2/analytics/conversations/details/jobs/availability"); n != 3 {
			t.Fatalf("%d attempts, want 3", n)
		}
	})
}

func TestBackfillRejectsBadPage(t *testing.T) {
	f := newFake(t)
	seed(f)
	f.conversations[4]["participants"].([]any)[0].(map[string]any)["sessions"].([]any)[0].(map[string]any)["mediaType"] = "telepathy"
	store := &memStore{}
	rec := &recorder{}
	cfg := f.config(t, newMapper(t, false))
	cfg.SkipAudits, cfg.SkipRetention = true, true
	b, err := genesys.NewBackfill(cfg, store, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Run(context.Background())
	if !errors.Is(err, genesys.ErrInvalid) || !strings.Contains(err.Error(), "conversations[0].participants[0].sessions[0].mediaType") {
		t.Fatalf("err = %v", err)
	}
	// Pages 1 and 2 went out; the watermark points at page 3, which holds the bad record.
	if len(rec.events) != 20 || store.w.Conversations.Cursor != cursorOf(4) {
		t.Fatalf("%d events, cursor %q", len(rec.events), store.w.Conversations.Cursor)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := genesys.NewBackfill(genesys.Config{ClientSecret: genesys.Secret{File: "a", Env: "B"}, Region: "us-east-1!"}, nil, nil)
	for _, want := range []string{"region: must be a Genesys Cloud domain", "clientID: required",
		"clientSecret: set either file or env", "mapper: required", "watermark store: required", "emit: required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if !errors.Is(err, genesys.ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	// A secret file is read, its newline dropped; its value never shows in an error.
	f := newFake(t)
	cfg := f.config(t, newMapper(t, false))
	cfg.ClientSecret = genesys.Secret{File: tempFile(t, "secret", clientSecret+"\n")}
	cfg.SkipAudits, cfg.SkipRetention = true, true
	b, err := genesys.NewBackfill(cfg, &memStore{}, (&recorder{}).emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := genesys.ParseMapping([]byte(`{}`)); err != nil {
		t.Fatal(err)
	}
}

func countRequests(f *fake, prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

// TestBackfillResubmitsExpiredJob: when the saved job's results expired before the
// restart, the window is run again; the pages emitted before come again with their ids.
func TestBackfillResubmitsExpiredJob(t *testing.T) {
	f := newFake(t)
	seed(f)
	store := &memStore{}
	rec := &recorder{failAt: 3}
	cfg := f.config(t, newMapper(t, false))
	cfg.SkipAudits, cfg.SkipRetention = true, true
	b, err := genesys.NewBackfill(cfg, store, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err == nil {
		t.Fatal("the first run did not fail")
	}
	f.mu.Lock()
	clear(f.jobs)
	f.mu.Unlock()
	rec.failAt = 0
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := ids(rec.events)
	if u := slices.Compact(slices.Clone(got)); len(u) != 35 || len(got) != 55 {
		t.Fatalf("%d events, %d distinct; want 20 + 35 with 35 distinct", len(got), len(u))
	}
	if n := countRequests(f, "POST /api/v2/analytics/conversations/details/jobs"); n != 2 {
		t.Fatalf("%d jobs submitted, want 2", n)
	}
}
