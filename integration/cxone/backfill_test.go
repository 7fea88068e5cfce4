package cxone_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/cxone"
)

func TestBackfillPagesToTheEnd(t *testing.T) {
	f := newFake(t)
	c, s := &collector{}, &sleeper{}
	a := newAdapter(t, f.config(t, c, s))
	st, err := a.Backfill(context.Background(), base, base.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Two windows of a day, page size 2: 5 contacts in 3 pages, then 4 in 2 pages (the
	// second is full, but _links.next is null: the end).
	var got []string
	for _, r := range f.requests() {
		got = append(got, fmt.Sprintf("%s/%s skip %d", r.start, r.end, r.skip))
		if r.fields == "" || strings.Contains(r.fields, "firstName") || strings.Contains(r.fields, "dispositionNotes") {
			t.Errorf("fields parameter %q: must name only what the mapping reads", r.fields)
		}
	}
	d0, d1, d2 := "2026-05-01T00:00:00.000Z", "2026-05-02T00:00:00.000Z", "2026-05-03T00:00:00.000Z"
	want := []string{d0 + "/" + d1 + " skip 0", d0 + "/" + d1 + " skip 2", d0 + "/" + d1 + " skip 4", d1 + "/" + d2 + " skip 0", d1 + "/" + d2 + " skip 2"}
	if !slices.Equal(got, want) {
		t.Errorf("requests:\n got %q\nwant %q", got, want)
	}
	if st != (cxone.Stats{Windows: 2, Pages: 5, Contacts: 9, Skipped: 1, Events: 32}) {
		t.Errorf("stats %+v", st)
	}
	evs := c.all()
	checkContract(t, evs)
	if len(c.ids()) != len(evs) {
		t.Errorf("%d events but %d distinct ids", len(evs), len(c.ids()))
	}
	wantTypes := map[domain.Type]int{domain.InteractionStartedType: 7, domain.InteractionClassifiedType: 8, domain.ConsentCapturedType: 2,
		domain.ConsentDeclinedType: 1, domain.AgentAssignedType: 7, domain.InteractionEndedType: 7}
	if got := countTypes(evs); !mapsEqual(got, wantTypes) {
		t.Errorf("types %v, want %v", got, wantTypes)
	}
	f.set(func(f *fake) {
		if len(f.tenants) != 1 || f.tenants[0] != tenant {
			t.Errorf("cxone-configuration asked for tenants %q", f.tenants)
		}
	})
	// A second call does nothing: the watermark is at the end.
	st, err = a.Backfill(context.Background(), base, base.Add(48*time.Hour))
	if err != nil || st != (cxone.Stats{}) || len(f.requests()) != 5 {
		t.Errorf("second backfill: %+v, %v, %d requests", st, err, len(f.requests()))
	}
}

func mapsEqual[K comparable](a, b map[K]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// render prints events one a line: time, subject, type, data.
func render(evs []domain.Event, subjects ...string) string {
	var lines []string
	for _, e := range evs {
		if !slices.Contains(subjects, e.Subject) {
			continue
		}
		d, _ := json.Marshal(e.Data)
		lines = append(lines, fmt.Sprintf("%s %s %s %s %s", domain.FormatTime(e.Time), e.Source, e.Subject, e.Type, d))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// The mapping table of the package documentation, contact by contact.
func TestMappingTable(t *testing.T) {
	f := newFake(t)
	c := &collector{}
	a := newAdapter(t, f.config(t, c, &sleeper{}))
	if _, err := a.Backfill(context.Background(), base, base.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got := render(c.all(), "cx-100001", "cx-100002", "cx-100003", "cx-100004", "cx-200002")
	want := strings.TrimSpace(`
2026-05-01T09:00:00Z nice-cxone/bu-4600000 cx-100001 interaction.started {"channel":"voice","direction":"inbound","queueId":"cx-skill-1234"}
2026-05-01T09:01:02Z nice-cxone/bu-4600000 cx-100001 consent.captured {"method":"ivr_menu"}
2026-05-01T09:01:20Z nice-cxone/bu-4600000 cx-100001 interaction.classified {"interactionType":"claims_inquiry","dataClassification":"protected_health_information"}
2026-05-01T09:01:33Z nice-cxone/bu-4600000 cx-100001 agent.assigned {"agentId":"agent-0001","authorized":true,"queueId":"cx-skill-1234"}
2026-05-01T09:06:10Z nice-cxone/bu-4600000 cx-100001 interaction.ended {"disposition":"cxone-disposition-1"}
2026-05-01T09:07:20Z nice-cxone/bu-4600000 cx-100001 consent.captured {"method":"ivr_verbal"}
2026-05-01T09:07:20Z nice-cxone/bu-4600000 cx-100001 interaction.classified {"interactionType":"claims_inquiry","dataClassification":"protected_health_information"}
2026-05-01T09:07:33Z nice-cxone/bu-4600000 cx-100001 agent.assigned {"agentId":"cx-agent-88888","authorized":false,"queueId":"cx-skill-1235"}
2026-05-01T09:10:00Z nice-cxone/bu-4600000 cx-100002 interaction.started {"channel":"voice","direction":"inbound","queueId":"cx-skill-1236"}
2026-05-01T09:11:20Z nice-cxone/bu-4600000 cx-100002 consent.declined {"method":"ivr_verbal"}
2026-05-01T09:11:20Z nice-cxone/bu-4600000 cx-100002 interaction.classified {"interactionType":"prescription_refill","dataClassification":"restricted","part2":true}
2026-05-01T09:11:33Z nice-cxone/bu-4600000 cx-100002 agent.assigned {"agentId":"cx-agent-55555","authorized":true,"queueId":"cx-skill-1236"}
2026-05-01T09:16:10Z nice-cxone/bu-4600000 cx-100002 interaction.ended {"disposition":"cxone-disposition-1"}
2026-05-01T09:20:00Z nice-cxone/bu-4600000 cx-100003 interaction.started {"channel":"email","direction":"inbound","queueId":"cx-skill-1237","email":{"to":"claims@bluepayer.example","fromMasked":"m***@example.org","tls":"TLSv1.3"}}
2026-05-01T09:21:20Z nice-cxone/bu-4600000 cx-100003 interaction.classified {"interactionType":"other","dataClassification":"protected_health_information"}
2026-05-01T09:21:33Z nice-cxone/bu-4600000 cx-100003 agent.assigned {"agentId":"cx-agent-66666","authorized":false,"queueId":"cx-skill-1237"}
2026-05-01T09:26:10Z nice-cxone/bu-4600000 cx-100003 interaction.ended {"disposition":"cxone-disposition-1"}
2026-05-01T09:40:00Z nice-cxone/bu-4600000 cx-100004 interaction.started {"channel":"voice","direction":"inbound","queueId":"cx-skill-1234"}
2026-05-01T09:41:20Z nice-cxone/bu-4600000 cx-100004 interaction.classified {"interactionType":"claims_inquiry","dataClassification":"protected_health_information"}
2026-05-01T09:46:10Z nice-cxone/bu-4600000 cx-100004 interaction.ended {"disposition":"abandoned"}
2026-05-02T09:05:00Z nice-cxone/bu-4600000 cx-200002 interaction.started {"channel":"message","direction":"outbound","queueId":"cx-skill-1236"}
2026-05-02T09:06:20Z nice-cxone/bu-4600000 cx-200002 interaction.classified {"interactionType":"other","dataClassification":"internal"}
2026-05-02T09:06:33Z nice-cxone/bu-4600000 cx-200002 agent.assigned {"agentId":"cx-agent-55555","authorized":false,"queueId":"cx-skill-1236"}
2026-05-02T09:11:10Z nice-cxone/bu-4600000 cx-200002 interaction.ended {"disposition":"cxone-disposition-1"}`)
	if got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
	}
}

func TestReauthenticatesOn401(t *testing.T) {
	f := newFake(t)
	f.revokeAt[3] = true // the tenant drops every token before the third API call
	c := &collector{}
	a := newAdapter(t, f.config(t, c, &sleeper{}))
	if _, err := a.Backfill(context.Background(), base, base.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if g := f.grantList(); !slices.Equal(g, []string{"password", "password"}) {
		t.Errorf("grants %q, want a second password grant after the 401", g)
	}
	if len(c.ids()) != 32 {
		t.Errorf("%d events, want 32", len(c.ids()))
	}

	t.Run("401 again is an error", func(t *testing.T) {
		f := newFake(t)
		f.unauthorized = true
		a := newAdapter(t, f.config(t, &collector{}, &sleeper{}))
		_, err := a.Backfill(context.Background(), base, base.Add(24*time.Hour))
		if !errors.Is(err, cxone.ErrAuth) || !strings.Contains(err.Error(), "401 again") {
			t.Fatalf("err %v, want ErrAuth", err)
		}
		if g := f.grantList(); len(g) != 2 {
			t.Errorf("grants %q: one re-authentication, not more", g)
		}
	})
	t.Run("wrong access key", func(t *testing.T) {
		f := newFake(t)
		cfg := f.config(t, &collector{}, &sleeper{})
		cfg.AccessKeyID = "AKID-OTHER"
		_, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour))
		if !errors.Is(err, cxone.ErrAuth) || !strings.Contains(err.Error(), "HTTP 400 invalid_grant") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestRefreshesBeforeExpiry(t *testing.T) {
	for _, refused := range []bool{false, true} {
		t.Run(fmt.Sprintf("refresh refused %v", refused), func(t *testing.T) {
			f := newFake(t)
			var mu sync.Mutex
			now := base.Add(30 * 24 * time.Hour)
			c := &collector{onCall: func(n int) {
				if n == 1 { // after the first page, the token is 59.5 minutes old
					mu.Lock()
					now = now.Add(59*time.Minute + 30*time.Second)
					mu.Unlock()
					if refused {
						f.set(func(f *fake) { clear(f.refreshes) })
					}
				}
			}}
			cfg := f.config(t, c, &sleeper{})
			cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			if _, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(48*time.Hour)); err != nil {
				t.Fatal(err)
			}
			want := []string{"password", "refresh_token"}
			if refused {
				want = append(want, "password")
			}
			if g := f.grantList(); !slices.Equal(g, want) {
				t.Errorf("grants %q, want %q", g, want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setup     func(f *fake)
		maxRetry  int
		wantWaits []time.Duration
		wantErr   error
	}{
		{name: "429 waits Retry-After", setup: func(f *fake) { f.throttle[2] = "7" }, wantWaits: []time.Duration{7 * time.Second}},
		{name: "429 with an HTTP date", setup: func(f *fake) {
			f.throttle[1] = base.Add(30*24*time.Hour + 3*time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT")
		}, wantWaits: []time.Duration{3 * time.Second}},
		{name: "429 Retry-After beyond the maximum", setup: func(f *fake) { f.throttle[1] = "600" }, wantErr: cxone.ErrRateLimited},
		{name: "429 beyond MaxRetries", setup: func(f *fake) {
			for i := 1; i <= 3; i++ {
				f.throttle[i] = "1"
			}
		}, maxRetry: 2, wantWaits: []time.Duration{time.Second, time.Second}, wantErr: cxone.ErrRateLimited},
		{name: "5xx backs off", setup: func(f *fake) { f.serverError[1], f.serverError[2] = 503, 502 },
			wantWaits: []time.Duration{time.Second, 2 * time.Second}},
		{name: "5xx beyond MaxRetries", setup: func(f *fake) { f.serverError[1], f.serverError[2] = 500, 500 },
			maxRetry: 1, wantWaits: []time.Duration{time.Second}, wantErr: cxone.ErrUnavailable},
		{name: "4xx is not retried", setup: func(f *fake) { f.serverError[1] = 403 }, wantErr: &cxone.StatusError{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.setup(f)
			c, s := &collector{}, &sleeper{}
			cfg := f.config(t, c, s)
			cfg.MaxRetries = tc.maxRetry
			_, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(48*time.Hour))
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatal(err)
				}
				if len(c.ids()) != 32 {
					t.Errorf("%d events", len(c.ids()))
				}
			case *cxone.StatusError:
				var se *cxone.StatusError
				if !errors.As(err, &se) || se.Status != 403 {
					t.Fatalf("err %v, want a StatusError 403", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("err %v, want %v", err, want)
				}
			}
			if w := s.list(); !slices.Equal(w, tc.wantWaits) {
				t.Errorf("waits %v, want %v", w, tc.wantWaits)
			}
		})
	}
}

// A backfill stopped after page 2 (Emit fails on page 3, or the context is cancelled
// during page 2) resumes from the persisted watermark: together the two runs emit the
// full set, and the second emits nothing the first had emitted.
func TestRestartMidBackfill(t *testing.T) {
	ref := &collector{}
	fr := newFake(t)
	if _, err := newAdapter(t, fr.config(t, ref, &sleeper{})).Backfill(context.Background(), base, base.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	full := ref.ids()

	for _, tc := range []struct {
		name      string
		cancel    bool // cancel during page 2 instead of failing page 3
		omitTotal bool // no totalRecords: the window is read again from its start
		change    bool // a contact is added to the window before the restart
	}{
		{name: "emit fails"},
		{name: "context cancelled", cancel: true},
		{name: "no totalRecords", omitTotal: true},
		{name: "window changed", change: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.omitTotal = tc.omitTotal
			wm := filepath.Join(t.TempDir(), "cxone-watermark.json")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c1 := &collector{failAt: 3}
			if tc.cancel {
				c1 = &collector{onCall: func(n int) {
					if n == 2 {
						cancel()
					}
				}}
			}
			cfg := f.config(t, c1, &sleeper{})
			cfg.Watermark = cxone.NewFileWatermark(wm)
			_, err := newAdapter(t, cfg).Backfill(ctx, base, base.Add(48*time.Hour))
			if err == nil {
				t.Fatal("the first run did not stop")
			}
			pos, err := cxone.NewFileWatermark(wm).Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wantPos := cxone.Position{Window: base, WindowEnd: base.Add(24 * time.Hour), Skip: 4, Total: 5}
			if tc.omitTotal {
				wantPos = cxone.Position{} // nothing to resume within the first window
			}
			if pos != wantPos {
				t.Fatalf("watermark %+v, want %+v", pos, wantPos)
			}
			first := c1.ids()
			want := full
			if tc.change {
				extra := completed(100000, 100000, base.Add(8*time.Hour), "Call", false, 1234, 99999)
				f.set(func(f *fake) { f.contacts = append(f.contacts, contactRec{fields: extra}) })
			}

			before := len(f.requests())
			c2 := &collector{}
			cfg = f.config(t, c2, &sleeper{})
			cfg.Watermark = cxone.NewFileWatermark(wm)
			if _, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(48*time.Hour)); err != nil {
				t.Fatal(err)
			}
			second := c2.ids()
			resumed := f.requests()[before]
			switch {
			case tc.omitTotal && resumed.skip != 0, !tc.omitTotal && resumed.skip != 4:
				t.Errorf("the second run started at skip %d", resumed.skip)
			}
			union := map[string]bool{}
			dups := 0
			for id := range first {
				union[id] = true
			}
			for id := range second {
				if union[id] {
					dups++
				}
				union[id] = true
			}
			for id := range want {
				if !union[id] {
					t.Errorf("event %s lost", id)
				}
			}
			extra := len(union) - len(want)
			switch {
			case tc.change && extra != 4: // the new contact: started, classified, assigned, ended
				t.Errorf("%d events beyond the full set, want the new contact's 4", extra)
			case !tc.change && extra != 0:
				t.Errorf("%d events beyond the full set", extra)
			}
			if !tc.omitTotal && !tc.change && dups != 0 {
				t.Errorf("%d events emitted again", dups)
			}
			if p, _ := cxone.NewFileWatermark(wm).Load(context.Background()); p != (cxone.Position{Window: base.Add(48 * time.Hour)}) {
				t.Errorf("final watermark %+v", p)
			}
		})
	}
}

func TestPollIncremental(t *testing.T) {
	f := newFake(t)
	c, s := &collector{}, &sleeper{}
	cfg := f.config(t, c, s)
	cfg.Now = func() time.Time { return base.Add(48 * time.Hour) }
	cfg.PollLookback = 72 * time.Hour
	a := newAdapter(t, cfg)
	st, err := a.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Contacts != 9 || len(c.ids()) != 32 {
		t.Errorf("first pass: %+v, %d events", st, len(c.ids()))
	}
	st, err = a.Poll(context.Background())
	if err != nil || st.Contacts != 0 {
		t.Fatalf("second pass: %+v, %v", st, err)
	}
	var since []string
	for _, r := range f.requests() {
		since = append(since, fmt.Sprintf("%s@%d", r.updatedSince, r.skip))
	}
	want := []string{"2026-04-30T00:00:00.000Z@0", "2026-04-30T00:00:00.000Z@2", "2026-04-30T00:00:00.000Z@4",
		"2026-04-30T00:00:00.000Z@6", "2026-04-30T00:00:00.000Z@8", "2026-05-03T12:00:00.000Z@0"}
	if !slices.Equal(since, want) {
		t.Errorf("requests %q, want %q", since, want)
	}

	t.Run("Run stops with the context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		passes := 0
		cfg := f.config(t, &collector{}, &sleeper{})
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			if d != cxone.DefaultPollInterval {
				t.Errorf("pause %v", d)
			}
			if passes++; passes == 3 {
				cancel()
			}
			return ctx.Err()
		}
		if err := newAdapter(t, cfg).Run(ctx); err != nil {
			t.Fatal(err)
		}
		if passes != 3 {
			t.Errorf("%d passes", passes)
		}
	})
}

func TestConcurrencyIsBounded(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := newFake(t)
			f.customDelay = 20 * time.Millisecond
			cfg := f.config(t, &collector{}, &sleeper{})
			cfg.PageSize, cfg.Concurrency = 5, n
			if _, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			f.set(func(f *fake) {
				if f.maxInFlight != n {
					t.Errorf("%d custom-data requests in flight at most, want %d", f.maxInFlight, n)
				}
			})
		})
	}
}

// With TokenURL and APIBaseURL configured there is no discovery.
func TestDiscoveryOverrides(t *testing.T) {
	f := newFake(t)
	c := &collector{}
	cfg := f.config(t, c, &sleeper{})
	cfg.Issuer, cfg.TokenURL, cfg.APIBaseURL = "https://cxone.invalid", f.srv.URL+"/auth/token", f.srv.URL+"/"
	if _, err := newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fake) {
		if len(f.tenants) != 0 {
			t.Errorf("cxone-configuration was asked")
		}
	})
	if len(c.ids()) != 20 {
		t.Errorf("%d events", len(c.ids()))
	}
}
