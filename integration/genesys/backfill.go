package genesys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custody/custody/domain"
	"golang.org/x/sync/errgroup"
)

// Emit delivers a batch of events, typically by publishing them to the log. The backfill
// moves its watermark past a page only after Emit returned nil for it, so an event is
// never skipped; after a crash between Emit and the watermark's save, the page is emitted
// again with the same deterministic ids, which the log drops as duplicates. Calls are
// serialized.
type Emit func(ctx context.Context, events []domain.Event) error

// WatermarkStore persists the backfill's progress. Load returns the zero Watermark when
// nothing was saved yet.
type WatermarkStore interface {
	Load(ctx context.Context) (Watermark, error)
	Save(ctx context.Context, w Watermark) error
}

// Watermark is the backfill's progress: per phase, the instant before which everything
// was emitted, and the job and cursor of the page to fetch next.
type Watermark struct {
	Conversations Progress            `json:"conversations"`
	Audits        map[string]Progress `json:"audits,omitempty"` // by entity type
	Retention     RetentionProgress   `json:"retention"`
}

// Progress is the progress of an interval-based phase (detail jobs, audit queries).
type Progress struct {
	// Done: every record of the interval up to here was emitted.
	Done time.Time `json:"done,omitzero"`
	// JobID is the detail job or audit transaction of the window [Done, JobEnd) being
	// paged; empty between windows.
	JobID  string    `json:"jobId,omitempty"`
	JobEnd time.Time `json:"jobEnd,omitzero"`
	// Cursor is the cursor of the next page of JobID; empty for its first page.
	Cursor string `json:"cursor,omitempty"`
	// Pages counts the pages of JobID emitted so far.
	Pages int `json:"pages,omitempty"`
}

// RetentionProgress is the progress of the retention sweep.
type RetentionProgress struct {
	// Next is the nextUri of the page to fetch; empty with InSweep for the first page.
	Next    string `json:"next,omitempty"`
	InSweep bool   `json:"inSweep,omitempty"`
	// SweptAt is when the last complete sweep started.
	SweptAt time.Time `json:"sweptAt,omitzero"`
	// Started is when the current sweep started.
	Started time.Time `json:"started,omitzero"`
}

// FileWatermark keeps the watermark in a JSON file, replaced atomically (written to a
// temporary file, synced, renamed over the old one, directory synced).
type FileWatermark struct {
	Path string
}

// Load reads the file; a missing file is the zero Watermark.
func (f FileWatermark) Load(context.Context) (Watermark, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Watermark{}, nil
	}
	if err != nil {
		return Watermark{}, fmt.Errorf("genesys: watermark: %w", err)
	}
	var w Watermark
	if err := decodeJSON(b, &w); err != nil {
		return Watermark{}, fmt.Errorf("genesys: watermark %s: %w", f.Path, err)
	}
	return w, nil
}

// Save replaces the file atomically.
func (f FileWatermark) Save(_ context.Context, w Watermark) error {
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, filepath.Base(f.Path)+".tmp*")
	if err != nil {
		return fmt.Errorf("genesys: watermark: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("genesys: watermark: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("genesys: watermark: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("genesys: watermark: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("genesys: watermark: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("genesys: watermark: sync %s: %w", dir, err)
		}
	}
	return nil
}

// Backfill reconciles and backfills from the Genesys Cloud API: conversation detail jobs
// (the only analytics source with participant attributes), audit queries for recording
// reads and deletions, and the recording retention sweep. The phases run concurrently
// and each resumes from its part of the watermark.
type Backfill struct {
	cfg    Config
	client *client
	store  WatermarkStore
	emit   Emit
	log    *slog.Logger

	mu sync.Mutex // serializes Emit and the watermark
	wm Watermark
}

// NewBackfill checks the configuration and reads the client secret.
func NewBackfill(cfg Config, store WatermarkStore, emit Emit) (*Backfill, error) {
	cfg.setDefaults()
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if store == nil {
		errs = append(errs, fmt.Errorf("%w: watermark store: required", ErrConfig))
	}
	if emit == nil {
		errs = append(errs, fmt.Errorf("%w: emit: required", ErrConfig))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c, err := newClient(&cfg)
	if err != nil {
		return nil, err
	}
	return &Backfill{cfg: cfg, client: c, store: store, emit: emit, log: cfg.Logger}, nil
}

// Run catches up from the watermark, then returns; with Config.Every it repeats until
// ctx ends. An error leaves the watermark at the last page emitted.
func (b *Backfill) Run(ctx context.Context) error {
	for {
		if err := b.pass(ctx); err != nil {
			return err
		}
		if b.cfg.Every <= 0 {
			return nil
		}
		if err := b.cfg.Sleep(ctx, b.cfg.Every); err != nil {
			return nil
		}
	}
}

func (b *Backfill) pass(ctx context.Context) error {
	wm, err := b.store.Load(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.wm = wm
	b.mu.Unlock()
	g, ctx := errgroup.WithContext(ctx)
	if !b.cfg.SkipConversations {
		g.Go(func() error { return b.conversations(ctx) })
	}
	if !b.cfg.SkipAudits {
		for _, et := range b.cfg.Mapper.m.RecordingEntityTypes {
			g.Go(func() error { return b.audits(ctx, et) })
		}
	}
	if !b.cfg.SkipRetention {
		g.Go(func() error { return b.retention(ctx) })
	}
	return g.Wait()
}

// commit emits a page's events, then records the progress.
func (b *Backfill) commit(ctx context.Context, events []domain.Event, update func(*Watermark)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(events) > 0 {
		if err := b.emit(ctx, events); err != nil {
			return fmt.Errorf("genesys: emit: %w", err)
		}
	}
	next := b.wm
	next.Audits = make(map[string]Progress, len(b.wm.Audits))
	for k, v := range b.wm.Audits {
		next.Audits[k] = v
	}
	update(&next)
	if err := b.store.Save(ctx, next); err != nil {
		return fmt.Errorf("genesys: save watermark: %w", err)
	}
	b.wm = next
	return nil
}

func (b *Backfill) progress(get func(*Watermark) Progress) Progress {
	b.mu.Lock()
	defer b.mu.Unlock()
	return get(&b.wm)
}

func interval(from, to time.Time) string {
	const f = "2006-01-02T15:04:05.000Z"
	return from.UTC().Format(f) + "/" + to.UTC().Format(f)
}

// window is the next window after done, bounded by limit; ok is false when caught up.
func (b *Backfill) window(done, limit time.Time) (time.Time, bool) {
	if !done.Before(limit) {
		return time.Time{}, false
	}
	end := done.Add(b.cfg.Window)
	if end.After(limit) {
		end = limit
	}
	return end, true
}

// phase is an interval-based phase: submit a job for a window, wait for it, page it.
type phase struct {
	name   string
	get    func(*Watermark) Progress
	set    func(*Watermark, Progress)
	limit  time.Time
	submit func(ctx context.Context, from, to time.Time) (string, error)
	// wait returns nil when the job's results can be paged, errExpired when it must be
	// submitted again.
	wait func(ctx context.Context, job string) error
	// page fetches and maps one page; next is "" after the last page.
	page func(ctx context.Context, job, cursor string) (events []domain.Event, next string, err error)
}

var errExpired = errors.New("job results no longer available")

func (b *Backfill) runPhase(ctx context.Context, ph phase) error {
	pr := b.progress(ph.get)
	if pr.Done.IsZero() {
		if b.cfg.From.IsZero() {
			return fmt.Errorf("%w: from: required: the watermark holds no %s progress yet", ErrConfig, ph.name)
		}
		pr.Done = b.cfg.From.UTC()
	}
	pages, events := 0, 0
	for {
		if pr.JobID == "" {
			end, ok := b.window(pr.Done, ph.limit)
			if !ok {
				break
			}
			job, err := ph.submit(ctx, pr.Done, end)
			if err != nil {
				return err
			}
			pr.JobID, pr.JobEnd, pr.Cursor, pr.Pages = job, end, "", 0
			p := pr
			if err := b.commit(ctx, nil, func(w *Watermark) { ph.set(w, p) }); err != nil {
				return err
			}
			b.log.Info("genesys: job submitted", "phase", ph.name, "job", job, "interval", interval(pr.Done, end))
		}
		if err := ph.wait(ctx, pr.JobID); err != nil {
			if !errors.Is(err, errExpired) {
				return err
			}
			// Resuming a job whose results expired: run the window again. Pages already
			// emitted come again with the same ids.
			b.log.Warn("genesys: job results expired, submitting the window again", "phase", ph.name, "job", pr.JobID)
			pr.JobID, pr.Cursor, pr.Pages = "", "", 0
			continue
		}
		for {
			evs, next, err := ph.page(ctx, pr.JobID, pr.Cursor)
			if errors.Is(err, errExpired) {
				pr.JobID, pr.Cursor, pr.Pages = "", "", 0
				break
			}
			if err != nil {
				return err
			}
			pr.Pages++
			pages++
			events += len(evs)
			if next == "" {
				pr.Done, pr.JobID, pr.JobEnd, pr.Cursor, pr.Pages = pr.JobEnd, "", time.Time{}, "", 0
			} else {
				pr.Cursor = next
			}
			p := pr
			if err := b.commit(ctx, evs, func(w *Watermark) { ph.set(w, p) }); err != nil {
				return err
			}
			if next == "" {
				break
			}
		}
	}
	b.log.Info("genesys: caught up", "phase", ph.name, "pages", pages, "events", events, "done", pr.Done)
	return nil
}

func (b *Backfill) limit(l time.Time) time.Time {
	if !b.cfg.To.IsZero() && b.cfg.To.Before(l) {
		return b.cfg.To.UTC()
	}
	return l.UTC()
}

// poll waits until state says done. states maps a state (upper case) to nil (done),
// errExpired, an error, or errPending.
func (b *Backfill) poll(ctx context.Context, what string, state func(ctx context.Context) (string, error), done string) error {
	deadline := b.cfg.Now().Add(b.cfg.PollTimeout)
	for {
		s, err := state(ctx)
		if err != nil {
			var he *HTTPError
			if errors.As(err, &he) && he.Status == 404 {
				return errExpired
			}
			return err
		}
		switch strings.ToUpper(s) {
		case done:
			return nil
		case "EXPIRED":
			return errExpired
		case "FAILED", "CANCELLED":
			return fmt.Errorf("%w: %s ended %s", ErrJob, what, strings.ToUpper(s))
		}
		if b.cfg.Now().After(deadline) {
			return fmt.Errorf("%w: %s still %s after %s", ErrJob, what, s, b.cfg.PollTimeout)
		}
		if err := b.cfg.Sleep(ctx, b.cfg.PollInterval); err != nil {
			return err
		}
	}
}

func notFound(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == 404
}

// conversations runs detail jobs up to the data lake's availability date.
func (b *Backfill) conversations(ctx context.Context) error {
	const base = "/api/v2/analytics/conversations/details/jobs"
	raw, err := b.client.call(ctx, "GET", base+"/availability", nil, nil)
	if err != nil {
		return err
	}
	var av struct {
		DataAvailabilityDate string `json:"dataAvailabilityDate"`
	}
	if err := json.Unmarshal(raw, &av); err != nil {
		return fmt.Errorf("genesys: GET %s/availability: %w", base, err)
	}
	avail, rule := domain.ParseTime(av.DataAvailabilityDate)
	if rule != "" {
		return fmt.Errorf("%w: %s/availability: dataAvailabilityDate: %s", ErrInvalid, base, rule)
	}
	m := b.cfg.Mapper
	return b.runPhase(ctx, phase{
		name:  "conversations",
		get:   func(w *Watermark) Progress { return w.Conversations },
		set:   func(w *Watermark, p Progress) { w.Conversations = p },
		limit: b.limit(avail),
		submit: func(ctx context.Context, from, to time.Time) (string, error) {
			body := map[string]any{"interval": interval(from, to), "order": "asc", "orderBy": "conversationStart"}
			raw, err := b.client.call(ctx, "POST", base, nil, body)
			if err != nil {
				return "", err
			}
			var r struct {
				JobID string `json:"jobId"`
			}
			if err := json.Unmarshal(raw, &r); err != nil || r.JobID == "" {
				return "", fmt.Errorf("%w: POST %s: response has no jobId", ErrInvalid, base)
			}
			return r.JobID, nil
		},
		wait: func(ctx context.Context, job string) error {
			return b.poll(ctx, "detail job "+job, func(ctx context.Context) (string, error) {
				raw, err := b.client.call(ctx, "GET", base+"/"+url.PathEscape(job), nil, nil)
				if err != nil {
					return "", err
				}
				var s struct {
					State string `json:"state"`
				}
				if err := json.Unmarshal(raw, &s); err != nil {
					return "", fmt.Errorf("%w: GET %s/{jobId}: %v", ErrInvalid, base, err)
				}
				return s.State, nil
			}, "FULFILLED")
		},
		page: func(ctx context.Context, job, cursor string) ([]domain.Event, string, error) {
			q := url.Values{"pageSize": {strconv.Itoa(b.cfg.PageSize)}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			raw, err := b.client.call(ctx, "GET", base+"/"+url.PathEscape(job)+"/results", q, nil)
			if notFound(err) {
				return nil, "", errExpired
			}
			if err != nil {
				return nil, "", err
			}
			evs, pg, err := m.conversationPage(raw)
			if err != nil {
				return nil, "", fmt.Errorf("detail job %s: %w", job, err)
			}
			return evs, pg.Cursor, nil
		},
	})
}

// audits runs audit queries for one recording entity type.
func (b *Backfill) audits(ctx context.Context, entityType string) error {
	const base = "/api/v2/audits/query"
	m := b.cfg.Mapper
	return b.runPhase(ctx, phase{
		name: "audits " + entityType,
		get:  func(w *Watermark) Progress { return w.Audits[entityType] },
		set: func(w *Watermark, p Progress) {
			if w.Audits == nil {
				w.Audits = map[string]Progress{}
			}
			w.Audits[entityType] = p
		},
		limit: b.limit(b.cfg.Now().Add(-b.cfg.AuditDelay)),
		submit: func(ctx context.Context, from, to time.Time) (string, error) {
			body := map[string]any{
				"interval":    interval(from, to),
				"serviceName": b.cfg.AuditService,
				"filters":     []map[string]string{{"property": "EntityType", "value": entityType}},
				"sort":        []map[string]string{{"name": "Timestamp", "sortOrder": "ascending"}},
			}
			raw, err := b.client.call(ctx, "POST", base, nil, body)
			if err != nil {
				return "", err
			}
			var r struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
				return "", fmt.Errorf("%w: POST %s: response has no id", ErrInvalid, base)
			}
			return r.ID, nil
		},
		wait: func(ctx context.Context, tx string) error {
			return b.poll(ctx, "audit query "+tx, func(ctx context.Context) (string, error) {
				raw, err := b.client.call(ctx, "GET", base+"/"+url.PathEscape(tx), nil, nil)
				if err != nil {
					return "", err
				}
				var s struct {
					State string `json:"state"`
				}
				if err := json.Unmarshal(raw, &s); err != nil {
					return "", fmt.Errorf("%w: GET %s/{transactionId}: %v", ErrInvalid, base, err)
				}
				return s.State, nil
			}, "SUCCEEDED")
		},
		page: func(ctx context.Context, tx, cursor string) ([]domain.Event, string, error) {
			q := url.Values{"pageSize": {strconv.Itoa(b.cfg.AuditPageSize)}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			raw, err := b.client.call(ctx, "GET", base+"/"+url.PathEscape(tx)+"/results", q, nil)
			if notFound(err) {
				return nil, "", errExpired
			}
			if err != nil {
				return nil, "", err
			}
			evs, pg, err := m.auditPage(raw)
			if err != nil {
				return nil, "", fmt.Errorf("audit query %s: %w", tx, err)
			}
			return evs, pg.Cursor, nil
		},
	})
}

// retention sweeps the retention query, looking up each recording's media type in its
// conversation's recording metadata (never its media).
func (b *Backfill) retention(ctx context.Context) error {
	const base = "/api/v2/recordings/retention/query"
	b.mu.Lock()
	rp := b.wm.Retention
	b.mu.Unlock()
	now := b.cfg.Now().UTC()
	if !rp.InSweep {
		if !rp.SweptAt.IsZero() && now.Sub(rp.SweptAt) < b.cfg.RetentionEvery {
			return nil
		}
		rp = RetentionProgress{InSweep: true, SweptAt: rp.SweptAt, Started: now}
	}
	pages, events := 0, 0
	for {
		path, q := base, url.Values{
			"retentionThresholdDays": {strconv.Itoa(b.cfg.RetentionThresholdDays)},
			"pageSize":               {strconv.Itoa(b.cfg.RetentionPageSize)},
		}
		if rp.Next != "" {
			var err error
			if path, q, err = b.relative(rp.Next); err != nil {
				return err
			}
		}
		raw, err := b.client.call(ctx, "GET", path, q, nil)
		if err != nil {
			return err
		}
		var peek retentionPage
		if err := decodeJSON(raw, &peek); err != nil {
			return &PayloadError{What: "recording retention page", Problems: []error{err}}
		}
		media, err := b.media(ctx, peek.Entities)
		if err != nil {
			return err
		}
		evs, pg, err := b.cfg.Mapper.retentionPage(raw, func(conv, rec string) string { return media[conv+"/"+rec] })
		if err != nil {
			return err
		}
		pages++
		events += len(evs)
		if pg.NextURI == "" || len(pg.Entities) == 0 {
			rp = RetentionProgress{SweptAt: rp.Started}
		} else {
			rp.Next = pg.NextURI
		}
		p := rp
		if err := b.commit(ctx, evs, func(w *Watermark) { w.Retention = p }); err != nil {
			return err
		}
		if !rp.InSweep {
			break
		}
	}
	b.log.Info("genesys: retention sweep complete", "pages", pages, "events", events)
	return nil
}

// relative checks that nextUri stays on the API host (the token is never sent
// elsewhere) and splits it into path and query.
func (b *Backfill) relative(next string) (string, url.Values, error) {
	u, err := url.Parse(next)
	if err != nil {
		return "", nil, fmt.Errorf("%w: nextUri: not a URI", ErrInvalid)
	}
	if u.IsAbs() {
		api, _ := url.Parse(b.cfg.APIURL)
		if u.Host != api.Host || u.Scheme != api.Scheme {
			return "", nil, fmt.Errorf("%w: nextUri: must stay on the API host", ErrInvalid)
		}
	}
	if !strings.HasPrefix(u.Path, "/api/v2/") {
		return "", nil, fmt.Errorf("%w: nextUri: must be an /api/v2/ path", ErrInvalid)
	}
	return u.Path, u.Query(), nil
}

// media looks up the media type of each recording of a page, one conversation at a time,
// Concurrency at once. The key is conversationId/recordingId.
func (b *Backfill) media(ctx context.Context, entities []retention) (map[string]string, error) {
	convs := map[string]bool{}
	var order []string
	for _, r := range entities {
		if domain.IsIdentifier(r.ConversationID) && !convs[r.ConversationID] {
			convs[r.ConversationID] = true
			order = append(order, r.ConversationID)
		}
	}
	var mu sync.Mutex
	out := map[string]string{}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.cfg.Concurrency)
	for _, conv := range order {
		g.Go(func() error {
			route := "/api/v2/conversations/" + url.PathEscape(conv) + "/recordingmetadata"
			raw, err := b.client.call(ctx, "GET", route, nil, nil)
			if notFound(err) {
				return nil // conversation gone: its recordings are reported as of unknown media
			}
			if err != nil {
				return err
			}
			var metas []recordingMeta
			if err := decodeJSON(raw, &metas); err != nil {
				return &PayloadError{What: "recording metadata of conversation " + conv, Problems: []error{err}}
			}
			var p problems
			for i := range metas {
				p.unknownFields(index("", i), "Recordingmetadata", metas[i].Rest, recordingMetaKnown, b.cfg.Mapper.allow)
			}
			if err := p.err("recording metadata of conversation " + conv); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, md := range metas {
				out[conv+"/"+md.ID] = md.Media
			}
			return nil
		})
	}
	return out, g.Wait()
}
