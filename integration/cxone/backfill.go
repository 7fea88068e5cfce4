package cxone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/custody/custody/domain"
)

// Adapter ingests completed contacts and their custom data from one CXone tenant. Its
// methods may be called from several goroutines; passes run one at a time.
type Adapter struct {
	cfg Config
	c   *client
	mp  mapper
	log *slog.Logger

	mu  sync.Mutex // one pass at a time; guards pos
	pos *Position  // nil until loaded
}

// Stats counts what one call did.
type Stats struct {
	// Windows counts the backfill windows completed.
	Windows int
	// Pages counts the completed-contacts pages emitted.
	Pages int
	// Contacts counts the completed contacts read.
	Contacts int
	// Skipped counts the contacts of a media type the mapping skips.
	Skipped int
	// Unclassified counts the contacts that neither custom data, nor their skill, nor
	// the default classified (no interaction.classified: not ePHI).
	Unclassified int
	// Events counts the events handed to Emit.
	Events int
}

func (s *Stats) add(o Stats) {
	s.Windows += o.Windows
	s.Pages += o.Pages
	s.Contacts += o.Contacts
	s.Skipped += o.Skipped
	s.Unclassified += o.Unclassified
	s.Events += o.Events
}

// New checks the configuration, reads the secrets and returns an adapter. It does not
// contact CXone yet.
func New(cfg Config) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Adapter{cfg: cfg, log: cfg.Logger}
	a.mp = mapper{m: a.cfg.Mapping}
	c, err := newClient(&a.cfg)
	if err != nil {
		return nil, err
	}
	a.c = c
	return a, nil
}

const apiPrefix = "/inContactAPI/services/" + APIVersion

// apiTime formats a query time: ISO 8601 in UTC, milliseconds.
func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Backfill emits the completed contacts whose window lies in [from, to), window by
// window (Config.Window), page by page (top and skip), until each window's last page.
// It starts at the later of from and the watermark, and resumes a window interrupted
// mid-way at the contact where it stopped (see Position.Total). The watermark moves
// after each page that Emit accepted. to must not lie in the future; contacts that
// complete after their window was read are found by Poll.
func (a *Adapter) Backfill(ctx context.Context, from, to time.Time) (Stats, error) {
	var st Stats
	from, to = from.UTC(), to.UTC()
	if !from.Before(to) {
		return st, fmt.Errorf("%w: backfill: from must be before to", ErrConfig)
	}
	if to.After(a.cfg.Now()) {
		return st, fmt.Errorf("%w: backfill: to lies in the future; Poll and Run read recent contacts", ErrConfig)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	pos, err := a.position(ctx)
	if err != nil {
		return st, err
	}
	start, resume := from, false
	if !pos.Window.IsZero() && !pos.Window.Before(from) {
		if !pos.Window.Before(to) {
			a.log.Info("cxone: backfill: nothing to do, the watermark is at or after the end", "to", to)
			return st, nil
		}
		start = pos.Window
		resume = pos.Skip > 0 && pos.WindowEnd.After(pos.Window) && !pos.WindowEnd.After(to)
		a.log.Info("cxone: backfill: resuming from the watermark", "window", start, "skip", pos.Skip)
	}
	for ws := start; ws.Before(to); {
		we := minTime(ws.Add(a.cfg.Window), to)
		skip, expect := 0, int64(-1)
		if resume {
			we, skip, expect = pos.WindowEnd, pos.Skip, pos.Total
			resume = false
		}
		var ws1 Stats
		err := a.backfillWindow(ctx, ws, we, skip, expect, &ws1)
		st.add(ws1)
		if err != nil {
			return st, err
		}
		if err := a.save(ctx, func(p *Position) { *p = Position{Window: we, UpdatedSince: p.UpdatedSince} }); err != nil {
			return st, err
		}
		st.Windows++
		lvl := slog.LevelInfo
		if ws1.Unclassified > 0 {
			lvl = slog.LevelWarn
		}
		a.log.Log(ctx, lvl, "cxone: backfill: window done", "window", ws, "windowEnd", we, "contacts", ws1.Contacts,
			"events", ws1.Events, "skipped", ws1.Skipped, "unclassified", ws1.Unclassified)
		ws = we
	}
	return st, nil
}

// backfillWindow pages through one window from skip. expect >= 0 is the totalRecords
// the watermark recorded with skip.
func (a *Adapter) backfillWindow(ctx context.Context, ws, we time.Time, skip int, expect int64, st *Stats) error {
	for {
		q := a.query(skip)
		q.Set("startDate", apiTime(ws))
		q.Set("endDate", apiTime(we))
		where := fmt.Sprintf("contacts/completed window %s/%s skip %d", apiTime(ws), apiTime(we), skip)
		pg, err := a.fetchPage(ctx, q, where)
		if err != nil {
			return err
		}
		if expect >= 0 {
			if pg.total != expect {
				a.log.Warn("cxone: backfill: the window changed since the watermark; reading it again from its start (re-sent events deduplicate)",
					"window", ws, "skip", skip)
				skip, expect = 0, -1
				continue
			}
			expect = -1
		}
		n, err := a.emitPage(ctx, pg, where, st)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		skip += n
		// Without totalRecords a resume could not be checked, so the watermark stays at
		// the window's start and a restart reads the whole window again.
		if pg.total >= 0 {
			if err := a.save(ctx, func(p *Position) {
				*p = Position{Window: ws, WindowEnd: we, Skip: skip, Total: pg.total, UpdatedSince: p.UpdatedSince}
			}); err != nil {
				return err
			}
		}
		if n < a.cfg.PageSize || (pg.links && !pg.next) {
			return nil
		}
	}
}

// Poll runs one incremental pass: the contacts updated since the watermark's
// UpdatedSince (on the first pass, Now - PollLookback), page by page to the end. The
// watermark moves to the first page's lastPollTime after the last page was emitted; a
// pass interrupted half-way is run again whole (re-sent events deduplicate).
func (a *Adapter) Poll(ctx context.Context) (Stats, error) {
	var st Stats
	a.mu.Lock()
	defer a.mu.Unlock()
	pos, err := a.position(ctx)
	if err != nil {
		return st, err
	}
	since := pos.UpdatedSince
	if since.IsZero() {
		since = a.cfg.Now().Add(-a.cfg.PollLookback).UTC()
	}
	var pollTime time.Time
	for skip := 0; ; {
		q := a.query(skip)
		q.Set("updatedSince", apiTime(since))
		where := fmt.Sprintf("contacts/completed updatedSince %s skip %d", apiTime(since), skip)
		pg, err := a.fetchPage(ctx, q, where)
		if err != nil {
			return st, err
		}
		if skip == 0 {
			if pg.lastPoll.IsZero() && len(pg.contacts) > 0 {
				return st, &PayloadError{Where: where, Problems: []*FieldError{{Field: "lastPollTime",
					Rule: "required for an incremental pass (it is the next updatedSince)"}}}
			}
			pollTime = pg.lastPoll
		}
		n, err := a.emitPage(ctx, pg, where, &st)
		if err != nil {
			return st, err
		}
		skip += n
		if n == 0 || n < a.cfg.PageSize || (pg.links && !pg.next) {
			break
		}
	}
	if !pollTime.IsZero() {
		if err := a.save(ctx, func(p *Position) { p.UpdatedSince = pollTime }); err != nil {
			return st, err
		}
	}
	a.log.Info("cxone: incremental pass done", "updatedSince", since, "contacts", st.Contacts, "events", st.Events,
		"skipped", st.Skipped, "unclassified", st.Unclassified)
	return st, nil
}

// Run polls every PollInterval until ctx ends, then returns nil. A pass that fails for
// an invalid payload, refused authentication or configuration stops Run with that
// error (it would fail again until someone acts); other failures are logged and
// retried at the next interval.
func (a *Adapter) Run(ctx context.Context) error {
	for {
		_, err := a.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			for _, fatal := range []error{ErrPayload, ErrAuth, ErrConfig, ErrSecret} {
				if errors.Is(err, fatal) {
					return err
				}
			}
			a.log.Warn("cxone: incremental pass failed; retrying at the next interval", "error", err.Error())
		}
		if err := a.cfg.Sleep(ctx, a.cfg.PollInterval); err != nil {
			return nil
		}
	}
}

func (a *Adapter) query(skip int) url.Values {
	return url.Values{
		"top":     {strconv.Itoa(a.cfg.PageSize)},
		"skip":    {strconv.Itoa(skip)},
		"orderBy": {a.cfg.OrderBy},
		"fields":  {requestedFields},
	}
}

// fetchPage reads and checks one completed-contacts page; 204 is an empty page.
func (a *Adapter) fetchPage(ctx context.Context, q url.Values, where string) (*contactsPage, error) {
	status, body, err := a.c.get(ctx, "contacts/completed", apiPrefix+"/contacts/completed", q)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNoContent {
		return &contactsPage{total: -1}, nil
	}
	top, err := parseObject(body)
	if err != nil {
		return nil, &PayloadError{Where: where, Problems: []*FieldError{{Field: "response", Rule: err.Error()}}}
	}
	p := &problems{}
	pg := parseContactsPage(top, a.cfg.AllowUnknownFields, p)
	if err := p.err(where); err != nil {
		return nil, err
	}
	return pg, nil
}

// emitPage reads the custom data of the page's contacts (Concurrency at a time), maps
// them, and hands the events to Emit. It returns the number of contacts of the page.
func (a *Adapter) emitPage(ctx context.Context, pg *contactsPage, where string, st *Stats) (int, error) {
	cs := pg.contacts
	cds := make([]map[string]string, len(cs))
	probs := make([]problems, len(cs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.cfg.Concurrency)
	for i, c := range cs {
		if a.mp.skipped(c) {
			continue
		}
		g.Go(func() error {
			cd, err := a.customData(gctx, c, &probs[i])
			if err != nil {
				return fmt.Errorf("%s, contact %d of the page: %w", where, i, err)
			}
			cds[i] = cd
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	p := &problems{}
	var evs []domain.Event
	var ps Stats
	for i, c := range cs {
		if a.mp.skipped(c) {
			ps.Skipped++
			continue
		}
		p.list = append(p.list, probs[i].list...)
		out := a.mp.events(pg.bu, c, cds[i], p)
		if !hasType(out, domain.InteractionClassifiedType) {
			ps.Unclassified++
		}
		evs = append(evs, out...)
	}
	if err := p.err(where); err != nil {
		return 0, err
	}
	evs = dedupe(evs)
	if len(evs) > 0 {
		if err := a.cfg.Emit(ctx, evs); err != nil {
			return 0, fmt.Errorf("cxone: emit the %d events of %s: %w", len(evs), where, err)
		}
	}
	ps.Pages, ps.Contacts, ps.Events = 1, len(cs), len(evs)
	if len(cs) == 0 {
		ps.Pages = 0
	}
	st.add(ps)
	a.log.Debug("cxone: page emitted", "page", where, "contacts", len(cs), "events", len(evs))
	return len(cs), nil
}

// customData reads one contact's custom data; 204 is none.
func (a *Adapter) customData(ctx context.Context, c *contact, p *problems) (map[string]string, error) {
	path := apiPrefix + "/contacts/" + strconv.FormatInt(c.id, 10) + "/custom-data"
	status, body, err := a.c.get(ctx, "custom-data", path, nil)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNoContent {
		return map[string]string{}, nil
	}
	top, err := parseObject(body)
	if err != nil {
		p.fail(c.field+".customData", err.Error())
		return nil, nil
	}
	o := obj{m: top, path: c.field + ".customData", p: p}
	o.unexpected(customDataFields, nil, a.cfg.AllowUnknownFields, "a custom-data response")
	return customDataMap(parseCustomDataItems(o, "contactCustomData", false, a.cfg.AllowUnknownFields, &a.cfg.Mapping.CustomData), p), nil
}

func hasType(evs []domain.Event, t domain.Type) bool {
	for _, e := range evs {
		if e.Type == t {
			return true
		}
	}
	return false
}

func (a *Adapter) position(ctx context.Context) (Position, error) {
	if a.pos == nil {
		p, err := a.cfg.Watermark.Load(ctx)
		if err != nil {
			return Position{}, err
		}
		a.pos = &p
	}
	return *a.pos, nil
}

func (a *Adapter) save(ctx context.Context, change func(*Position)) error {
	p := *a.pos
	change(&p)
	if err := a.cfg.Watermark.Save(ctx, p); err != nil {
		return fmt.Errorf("cxone: save the watermark: %w", err)
	}
	*a.pos = p
	return nil
}
