package genesys

import (
	"errors"

	"github.com/custody/custody/domain"
)

// Result pages are mapped record by record: every record is checked, every problem of
// every record is reported, and a page with any problem gives no events, so that a
// backfill never moves its watermark past a record it could not map.

func (m *Mapper) conversationPage(raw []byte) ([]domain.Event, *conversationPage, error) {
	var pg conversationPage
	if err := decodeJSON(raw, &pg); err != nil {
		return nil, nil, &PayloadError{What: "conversation detail page", Problems: []error{err}}
	}
	var p problems
	p.unknownFields("", "conversation detail page", pg.Rest, conversationPageKnown, m.allow)
	if err := p.err("conversation detail page"); err != nil {
		return nil, nil, err
	}
	var evs []domain.Event
	var errs []error
	for i := range pg.Conversations {
		e, err := m.conversation(&pg.Conversations[i], index("conversations", i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		evs = append(evs, e...)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return evs, &pg, nil
}

func (m *Mapper) auditPage(raw []byte) ([]domain.Event, *auditPage, error) {
	var pg auditPage
	if err := decodeJSON(raw, &pg); err != nil {
		return nil, nil, &PayloadError{What: "audit result page", Problems: []error{err}}
	}
	var p problems
	p.unknownFields("", "audit result page", pg.Rest, auditPageKnown, m.allow)
	if pg.DownloadURL != "" && len(pg.Entities) == 0 {
		p.add("downloadUrl", "the results were redirected to a download: fetch that file and ingest it instead")
	}
	if err := p.err("audit result page"); err != nil {
		return nil, nil, err
	}
	var evs []domain.Event
	var errs []error
	for i := range pg.Entities {
		var q problems
		path := index("entities", i)
		ps := m.auditMessage(&pg.Entities[i], path, &q)
		what := "audit message"
		if id := pg.Entities[i].ID; domain.IsIdentifier(id) {
			what += " " + id
		}
		if err := q.err(what); err != nil {
			errs = append(errs, err)
			continue
		}
		e := m.finish(ps, &q)
		if err := q.err(what); err != nil {
			errs = append(errs, err)
			continue
		}
		evs = append(evs, e...)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return evs, &pg, nil
}

// retentionPage maps a retention page; media gives each recording's media type (from
// its recordingmetadata), or "" when unknown.
func (m *Mapper) retentionPage(raw []byte, media func(conv, rec string) string) ([]domain.Event, *retentionPage, error) {
	var pg retentionPage
	if err := decodeJSON(raw, &pg); err != nil {
		return nil, nil, &PayloadError{What: "recording retention page", Problems: []error{err}}
	}
	var p problems
	p.unknownFields("", "recording retention page", pg.Rest, retentionPageKnown, m.allow)
	if err := p.err("recording retention page"); err != nil {
		return nil, nil, err
	}
	var evs []domain.Event
	var errs []error
	for i := range pg.Entities {
		r := &pg.Entities[i]
		var q problems
		path := index("entities", i)
		ps := m.retentionPending(r, media(r.ConversationID, r.RecordingID), path, &q)
		what := "recording"
		if domain.IsIdentifier(r.RecordingID) {
			what += " " + r.RecordingID
		}
		if err := q.err(what); err != nil {
			errs = append(errs, err)
			continue
		}
		e := m.finish(ps, &q)
		if err := q.err(what); err != nil {
			errs = append(errs, err)
			continue
		}
		evs = append(evs, e...)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return evs, &pg, nil
}
