package cxone

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/custody/custody/domain"
)

// MaxLineBytes bounds one line of an export file (a page of 10,000 contacts fits).
const MaxLineBytes = 64 << 20

// maxFileProblems bounds the problems ReadFile reports before it stops.
const maxFileProblems = 100

// FileOptions configures ReadFile. The zero value is valid.
type FileOptions struct {
	// Mapping: see Config.Mapping. Optional; nil means DefaultMapping().
	Mapping *Mapping
	// AllowUnknownFields: see Config.AllowUnknownFields.
	AllowUnknownFields bool
}

// ReadFile reads an export of CXone payloads and returns their events, in file order,
// without duplicates: the same events, with the same ids, as a Backfill of the same
// contacts, so a download and the API can fill the log side by side.
//
// The file is JSON Lines: one JSON object per line, as the API answered it (curl -s
// writes one page per line; jq -c compacts a pretty-printed one). A blank line is
// skipped (it still counts for line numbers) and a trailing carriage return is
// ignored. Each line is one of:
//
//   - a completed-contacts page: the answer of GET …/contacts/completed
//     ({"businessUnitId", "completedContacts": [...], "_links", "lastPollTime",
//     "totalRecords"});
//   - a bulk custom-data page: the answer of GET …/contacts/custom-data
//     ({"ContactCustomData": [{"contactId", "name", "value"}], ...});
//   - one contact's custom data: the answer of GET …/contacts/{contactId}/custom-data
//     with the contact id added: {"contactId": 123, "contactCustomData": [{"name",
//     "value"}]}.
//
// Custom data may come before or after its contact. Every line is checked as strictly
// as an API answer; all problems are reported together (up to 100), each as
// "line N: field: rule", and then no event is returned.
func ReadFile(r io.Reader, opt FileOptions) ([]domain.Event, error) {
	m := opt.Mapping
	if m == nil {
		m = DefaultMapping()
	} else {
		cp := *m
		cp.setDefaults()
		m = &cp
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: mapping: %w", ErrConfig, err)
	}
	type located struct {
		c    *contact
		bu   int64
		line int
	}
	var (
		contacts []located
		data     []customDatum // with contactID
		errs     []error
		nprobs   int
	)
	report := func(line int, p *problems) bool {
		if err := p.err("line " + strconv.Itoa(line)); err != nil {
			errs = append(errs, err)
			nprobs += len(p.list)
		}
		return nprobs >= maxFileProblems
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := readLine(br)
		if err == io.EOF && b == nil {
			break
		}
		if err != nil && err != io.EOF {
			if errors.Is(err, errLineTooLong) {
				errs = append(errs, &PayloadError{Where: "line " + strconv.Itoa(line), Problems: []*FieldError{{Field: "line", Rule: fmt.Sprintf("longer than %d MiB", MaxLineBytes>>20)}}})
				break
			}
			return nil, fmt.Errorf("cxone: read line %d: %w", line, err)
		}
		b = bytes.TrimSuffix(b, []byte("\r"))
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		p := &problems{}
		top, perr := parseObject(b)
		switch {
		case perr != nil:
			p.fail("line", perr.Error())
		case top["completedContacts"] != nil:
			pg := parseContactsPage(top, opt.AllowUnknownFields, p)
			for _, c := range pg.contacts {
				contacts = append(contacts, located{c: c, bu: pg.bu, line: line})
			}
		case top["ContactCustomData"] != nil:
			o := obj{m: top, p: p}
			o.unexpected(bulkCustomDataFields, nil, opt.AllowUnknownFields, "a custom-data page")
			for _, d := range parseCustomDataItems(o, "ContactCustomData", true, opt.AllowUnknownFields, &m.CustomData) {
				d.line = line
				data = append(data, d)
			}
		case top["contactCustomData"] != nil:
			o := obj{m: top, p: p}
			o.unexpected(setOf("contactId", "contactCustomData"), nil, opt.AllowUnknownFields, "one contact's custom data")
			id, _ := o.integer("contactId", true, 1)
			for _, d := range parseCustomDataItems(o, "contactCustomData", false, opt.AllowUnknownFields, &m.CustomData) {
				d.contactID, d.line = id, line
				data = append(data, d)
			}
		default:
			p.fail("line", "must be a completed-contacts page (completedContacts), a custom-data page (ContactCustomData) or one contact's custom data (contactId and contactCustomData)")
		}
		if report(line, p) {
			return nil, errors.Join(errs...)
		}
	}
	// Custom data by contact; a field given twice with different values is an error
	// at the later line.
	cds := map[int64]map[string]string{}
	for _, d := range data {
		if d.value == "" {
			continue
		}
		cd := cds[d.contactID]
		if cd == nil {
			cd = map[string]string{}
			cds[d.contactID] = cd
		}
		if v, ok := cd[d.name]; ok && v != d.value {
			errs = append(errs, &PayloadError{Where: "line " + strconv.Itoa(d.line), Problems: []*FieldError{{Field: d.field + ".value",
				Rule: fmt.Sprintf("%s of this contact is given again with a different value", d.name)}}})
			continue
		}
		cd[d.name] = d.value
	}
	mp := mapper{m: m}
	var evs []domain.Event
	for _, l := range contacts {
		if mp.skipped(l.c) {
			continue
		}
		p := &problems{}
		cd := cds[l.c.id]
		if cd == nil {
			cd = map[string]string{}
		}
		evs = append(evs, mp.events(l.bu, l.c, cd, p)...)
		if report(l.line, p) {
			break
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return dedupe(evs), nil
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline; (nil, io.EOF) at the end.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineBytes+1 {
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return buf, nil
		default:
			return nil, err
		}
	}
}
