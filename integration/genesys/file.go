package genesys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/custody/custody/domain"
	"github.com/go-json-experiment/json/jsontext"
)

// LineError is a problem of one document of an export file, at the line where the
// document starts.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the document's problem.
func (e *LineError) Unwrap() error { return e.Err }

// maxFileErrors bounds how many rejected documents ReadFile reports.
const maxFileErrors = 100

// ReadFile reads an export file and maps every document in it. The file is a sequence
// of JSON documents: JSON Lines (one per line; blank lines are skipped but counted) or
// pretty-printed documents one after another. Each document is recognized by its
// members:
//
//   - an EventBridge event ("detail-type", "detail") or a notification ("topicName");
//   - a conversation detail page ("conversations"): a detail job's results page, or the
//     synchronous query's response;
//   - one conversation record ("conversationId" and "participants");
//   - an audit result page ("entities" of audit messages, with "cursor", "pageNumber", ...);
//   - a recording retention page ("entities" with "nextUri"/"selfUri", or entities with
//     "recordingId"), which needs Mapping.DefaultRecordingKind.
//
// It returns every event of the documents it could map, without duplicate ids, and an
// error listing every rejected document (*LineError, at most 100), each naming the line,
// the field and the rule. A caller that wants all or nothing checks the error first.
func (m *Mapper) ReadFile(r io.Reader) ([]domain.Event, error) {
	var out []domain.Event
	seen := map[string]bool{}
	var errs []error
	err := m.ScanFile(r, func(line int, evs []domain.Event, err error) error {
		if err != nil {
			if len(errs) < maxFileErrors {
				errs = append(errs, err)
			} else if len(errs) == maxFileErrors {
				errs = append(errs, errors.New("more rejected documents not listed"))
			}
			return nil
		}
		for _, e := range evs {
			if !seen[e.ID] {
				seen[e.ID] = true
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// ScanFile reads an export file as ReadFile does and calls fn once per document, in
// order, with the line where the document starts and either its events or its problem
// (a *LineError). fn returning an error stops the scan with that error. A file that is
// not a sequence of JSON values stops the scan with a *LineError.
func (m *Mapper) ScanFile(r io.Reader, fn func(line int, events []domain.Event, err error) error) error {
	lr := &lineReader{r: r, line: 1}
	// The stream decoder only splits the documents; duplicate keys and invalid UTF-8 are
	// reported per document, by the strict decoding of each, with their paths.
	dec := jsontext.NewDecoder(lr, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	for {
		// The document starts at the first byte after the whitespace before it.
		dec.PeekKind()
		ub := dec.UnreadBuffer()
		start := dec.InputOffset() + int64(len(ub)-len(bytes.TrimLeft(ub, " \t\r\n")))
		raw, err := dec.ReadValue()
		if err == io.EOF {
			return nil
		}
		line := lr.lineAt(start)
		if err != nil {
			return &LineError{Line: line, Err: &PayloadError{What: "document", Problems: []error{
				&FieldError{Field: "(document)", Rule: "invalid JSON: " + syntaxMessage(err)}}}}
		}
		evs, derr := m.document(raw)
		if derr != nil {
			derr = &LineError{Line: line, Err: derr}
		}
		if err := fn(line, evs, derr); err != nil {
			return err
		}
	}
}

func syntaxMessage(err error) string {
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return syntaxRule(syn)
	}
	return err.Error()
}

// document recognizes and maps one document.
func (m *Mapper) document(raw jsontext.Value) ([]domain.Event, error) {
	if raw.Kind() != '{' {
		return nil, &PayloadError{What: "document", Problems: []error{&FieldError{Field: "(document)",
			Rule: "must be a JSON object: a notification, an EventBridge event, a conversation detail page, " +
				"a conversation record, an audit result page or a recording retention page"}}}
	}
	ns := memberNames(raw)
	has := func(n ...string) bool {
		for _, x := range n {
			if slices.Contains(ns, x) {
				return true
			}
		}
		return false
	}
	switch {
	case has("detail-type", "detail", "topicName"):
		return m.Notification(raw)
	case has("conversations"):
		evs, _, err := m.conversationPage(raw)
		return evs, err
	case has("conversationId") && has("participants"):
		return m.Conversation(raw)
	case has("entities"):
		if has("nextUri", "selfUri", "previousUri") || (!has("id", "cursor", "pageNumber", "pageCount", "total", "downloadUrl") && firstEntityHas(raw, "recordingId")) {
			evs, _, err := m.retentionPage(raw, func(string, string) string { return "" })
			return evs, err
		}
		evs, _, err := m.auditPage(raw)
		return evs, err
	}
	return nil, &PayloadError{What: "document", Problems: []error{&FieldError{Field: "(document)",
		Rule: "is not a document this adapter reads: expected topicName or detail-type (notification), conversations " +
			"(detail page), conversationId and participants (conversation record) or entities (audit or retention page)"}}}
}

// firstEntityHas reports whether the first element of "entities" has member name.
func firstEntityHas(raw jsontext.Value, name string) bool {
	var pg struct {
		Entities []jsontext.Value `json:"entities"`
		Rest     jsontext.Value   `json:",embed"`
	}
	if decodeJSON(raw, &pg) != nil || len(pg.Entities) == 0 {
		return false
	}
	return slices.Contains(memberNames(pg.Entities[0]), name)
}

// lineReader counts lines of the bytes it passes on. It remembers the offsets of the
// newlines not yet asked about, so that lineAt works on a stream of any size.
type lineReader struct {
	r        io.Reader
	off      int64   // bytes read so far
	newlines []int64 // offsets of newlines at or after the last lineAt query
	line     int     // line of the last lineAt query
}

func (l *lineReader) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	for i := 0; i < n; {
		j := bytes.IndexByte(b[i:n], '\n')
		if j < 0 {
			break
		}
		l.newlines = append(l.newlines, l.off+int64(i+j))
		i += j + 1
	}
	l.off += int64(n)
	return n, err
}

// lineAt is the 1-based line of byte offset off; offsets must not decrease.
func (l *lineReader) lineAt(off int64) int {
	k := 0
	for k < len(l.newlines) && l.newlines[k] < off {
		k++
	}
	l.line += k
	l.newlines = l.newlines[k:]
	return l.line
}
